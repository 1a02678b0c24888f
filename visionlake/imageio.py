"""Image input for the whole project: read a file under the limits, decode it to RGB, or say why not.

Core, not an ingestion step: ingestion, face probes and enrollment, fashion queries and service
uploads all decode through here, so a photo gets the same pixels (EXIF orientation, first frame,
alpha on white, 16-bit scaled) and the same rejection reasons whichever way it arrives. Every check
happens before expensive work: size on disk, then the header (format, declared pixel count), then
the full decode. A bad file becomes a :class:`Rejected` with a stable reason code.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import imagehash
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from visionlake.config import MAX_FILE_BYTES, MAX_IMAGE_PIXELS

# We enforce our own pixel limit with a clear reason instead of Pillow's warning/exception.
Image.MAX_IMAGE_PIXELS = None

#: Reason code -> what it means (printed in reports and the README).
REASONS: dict[str, str] = {
    "not_a_file": "the path is a directory or a special file, not a regular file",
    "unreadable": "the file could not be read (permissions, vanished, broken link)",
    "empty_file": "the file has zero bytes",
    "file_too_large": "the file is larger than the byte limit (VISIONLAKE_MAX_FILE_BYTES)",
    "not_an_image": "the content is not an image format Pillow can read",
    "too_many_pixels": "the header declares more pixels than the limit (decompression bomb guard)",
    "truncated": "the image data ends early (incomplete download or copy)",
    "corrupt": "the image data is damaged and cannot be decoded",
}


class Rejected(Exception):
    """A file that cannot be ingested, with a reason code from :data:`REASONS` and a detail."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Decoded:
    """A decoded RGB image plus the facts the catalog stores about it."""

    image: Image.Image
    sha256: str
    nbytes: int
    width: int
    height: int
    format: str | None
    phash: int
    notes: list[str] = field(default_factory=list)


def read_bytes(path: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a file after checking it is a regular, non-empty file under the size limit."""
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise Rejected("unreadable", f"no such file or broken link: {exc.strerror}") from exc
    except OSError as exc:
        raise Rejected("unreadable", exc.strerror or str(exc)) from exc
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise Rejected("not_a_file", f"{path} is {kind}")
    if st.st_size == 0:
        raise Rejected("empty_file", "0 bytes")
    if st.st_size > max_bytes:
        raise Rejected("file_too_large", f"{st.st_size} bytes > limit {max_bytes}")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise Rejected("unreadable", exc.strerror or str(exc)) from exc


def decode(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> Decoded:
    """Decode bytes to RGB (see :func:`decode_rgb`) plus the hashes the catalog stores."""
    img, fmt, notes = decode_rgb(data, max_pixels)
    return Decoded(
        image=img,
        sha256=hashlib.sha256(data).hexdigest(),
        nbytes=len(data),
        width=img.width,
        height=img.height,
        format=fmt,
        phash=perceptual_hash(img),
        notes=notes,
    )


def decode_rgb(data: bytes, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[Image.Image, str | None, list[str]]:
    """Decode bytes to RGB: EXIF orientation applied, first frame of animations, modes converted.

    The one decoder of the project: ingestion, face probes, fashion queries and service uploads all
    use it, so a photo gets the same pixels whichever way it arrives. Returns (image, format, notes);
    raises :class:`Rejected` with a reason code.
    """
    notes: list[str] = []
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as exc:
        raise Rejected("not_an_image", "unrecognised image format") from exc
    except Exception as exc:  # noqa: BLE001 - any decoder error is a corrupt file
        raise Rejected("corrupt", f"cannot open: {exc}") from exc
    width, height = img.size
    if width <= 0 or height <= 0:
        raise Rejected("corrupt", f"invalid size {width}x{height}")
    if width * height > max_pixels:
        raise Rejected("too_many_pixels", f"{width}x{height} = {width * height} pixels > limit {max_pixels}")
    fmt = img.format
    if getattr(img, "is_animated", False) and getattr(img, "n_frames", 1) > 1:
        notes.append(f"animated ({img.n_frames} frames): first frame")
        img.seek(0)
    try:
        with warnings.catch_warnings(), strict_decoding():
            warnings.simplefilter("ignore")
            img.load()
    except OSError as exc:
        msg = str(exc)
        reason = "truncated" if "truncated" in msg or "end of file" in msg.lower() else "corrupt"
        raise Rejected(reason, msg) from exc
    except Exception as exc:  # noqa: BLE001
        raise Rejected("corrupt", str(exc)) from exc
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - broken EXIF is not a reason to reject pixels
        orientation = 1
    if orientation not in (None, 1):
        img = ImageOps.exif_transpose(img)
        notes.append(f"exif orientation {orientation} applied")
    return to_rgb(img, notes), fmt, notes


@contextmanager
def strict_decoding() -> Iterator[None]:
    """Make truncated images fail while decoding, whatever another library set globally.

    ``face_recognition`` (our benchmark peer) sets ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` on
    import, which would silently pad truncated files with grey.
    """
    old = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = old


def to_rgb(img: Image.Image, notes: list[str] | None = None) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; alpha is composited on white, 16-bit is scaled."""
    notes = notes if notes is not None else []
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr8 = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        notes.append(f"{mode} (16-bit) -> 8-bit RGB")
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append(f"{mode} with alpha -> RGB on white")
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "CMYK":
        notes.append("CMYK -> RGB")
    elif mode not in ("L", "1"):
        notes.append(f"{mode} -> RGB")
    return img.convert("RGB")


def perceptual_hash(img: Image.Image) -> int:
    """64-bit DCT perceptual hash (imagehash.phash) as a signed int64, robust to resize/recompression."""
    small = img
    if max(img.size) > 512:
        small = img.copy()
        small.thumbnail((256, 256), Image.Resampling.BILINEAR)
    h = imagehash.phash(small)
    value = int("".join("1" if b else "0" for b in h.hash.flatten()), 2)
    return value - (1 << 64) if value >= (1 << 63) else value
