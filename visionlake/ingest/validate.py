"""Ingestion's validation step: one file in, a :class:`Decoded` image or a :class:`Rejected` out.

The reading and decoding themselves live in :mod:`visionlake.imageio` (shared with faces, fashion
and the service); this module adds what only ingestion needs: the one-call check of a path and the
perceptual-hash bands that find near-duplicates in the catalog.
"""

from __future__ import annotations

from visionlake.config import MAX_FILE_BYTES, MAX_IMAGE_PIXELS
from visionlake.imageio import REASONS, Decoded, Rejected, decode, read_bytes

__all__ = ["REASONS", "Decoded", "Rejected", "hamming", "phash_bands", "validate"]


def validate(path: str, max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS) -> Decoded:
    """Read ``path`` under the byte limit and decode it under the pixel limit; raise :class:`Rejected`."""
    return decode(read_bytes(path, max_bytes), max_pixels)


def phash_bands(value: int) -> tuple[int, int, int, int]:
    """Four 16-bit bands: two hashes within Hamming distance 3 share at least one band."""
    u = value & ((1 << 64) - 1)
    return tuple((u >> (16 * i)) & 0xFFFF for i in range(4))  # type: ignore[return-value]


def hamming(a: int, b: int) -> int:
    """Number of differing bits between two 64-bit hashes."""
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()
