"""A deterministic stand-in for FacePipeline, for the pure-logic tests of the gallery.

A "face" is a solid coloured square on a white photo; its colour is the identity. Detection finds
the squares; the template is a fixed random unit vector per colour plus a little noise that depends
on the square's size and position, so two photos of one "person" score about 0.98 and two people
about 0 (32 dimensions). Same interface as ``visionlake.faces.pipeline.FacePipeline``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DIM = 32
PACK = "fake-v1"


@dataclass
class FakeFace:
    box: tuple[int, int, int, int]
    landmarks: list[tuple[float, float]]
    score: float
    quality: float

    @property
    def area(self) -> int:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


def identity_vector(colour: tuple[int, int, int]) -> np.ndarray:
    seed = colour[0] * 65536 + colour[1] * 256 + colour[2]
    v = np.random.default_rng(seed).standard_normal(DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


class FakePipeline:
    dim = DIM
    name = PACK

    def threshold(self, far: float = 1e-3) -> float:
        return 0.6 if far >= 1e-3 else 0.7

    def detect(self, image):
        from scipy import ndimage

        arr = np.asarray(image.convert("RGB"), dtype=np.int16)
        mask = (arr < 240).any(axis=2)
        labels, n = ndimage.label(mask)
        faces = []
        for sl in ndimage.find_objects(labels):
            ys, xs = sl
            box = (xs.start, ys.start, xs.stop, ys.stop)
            w = box[2] - box[0]
            lm = [(box[0] + w * fx, box[1] + w * fy) for fx, fy in
                  ((0.3, 0.35), (0.7, 0.35), (0.5, 0.55), (0.35, 0.75), (0.65, 0.75))]
            faces.append(FakeFace(box, lm, 1.0, min(1.0, w / 100)))
        return sorted(faces, key=lambda f: -f.area)

    def embed(self, image, faces, jitters=None):
        arr = np.asarray(image.convert("RGB"))
        out = []
        for f in faces:
            cx, cy = (f.box[0] + f.box[2]) // 2, (f.box[1] + f.box[3]) // 2
            colour = tuple(int(c) for c in arr[cy, cx])
            base = identity_vector(colour)
            jitter = np.random.default_rng(hash(f.box) % (2**32)).standard_normal(DIM).astype(np.float32)
            v = base + 0.15 * jitter / np.linalg.norm(jitter)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32).reshape(len(faces), DIM)

    def crop(self, image, face, size=160):
        return image.crop(face.box).resize((size, size))

    def analyse(self, image):
        faces = self.detect(image)
        return list(zip(faces, self.embed(image, faces), strict=True))


RED, BLUE, GREEN, ORANGE = (200, 30, 30), (30, 30, 200), (30, 160, 30), (230, 120, 0)


def photo(path: Path, squares: list[tuple[tuple[int, int, int], int, int, int]], size=(320, 240)) -> Path:
    """Write a photo with squares (colour, x, y, side) and return its path."""
    img = Image.new("RGB", size, (255, 255, 255))
    for colour, x, y, side in squares:
        img.paste(Image.new("RGB", (side, side), colour), (x, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "PNG")
    return path


def png_bytes(squares, size=(320, 240)) -> bytes:
    img = Image.new("RGB", size, (255, 255, 255))
    for colour, x, y, side in squares:
        img.paste(Image.new("RGB", (side, side), colour), (x, y))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def huge_png_header(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG whose header declares far more pixels than the limit (a decompression-bomb shape)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    body = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    idat = zlib.compress(b"\x00" * 100)
    c2 = b"IDAT" + idat
    body += struct.pack(">I", len(idat)) + c2 + struct.pack(">I", zlib.crc32(c2) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + body
