"""Encryption at rest for biometric data (face templates).

AES-256-GCM from ``cryptography``. The key comes from ``VISIONLAKE_KEY`` (base64 of 32 bytes) or from
``<lake>/keys/lake.key`` (mode 0600); :mod:`visionlake.keyring` loads it, checks it against the lake
and creates one only for a lake without encrypted data. Without the key, index files and stored
embeddings are opaque bytes.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from visionlake.errors import VisionLakeError

NONCE_BYTES = 12
MAGIC = b"VLK1"


class DecryptionError(VisionLakeError):
    """Raised when data cannot be decrypted: wrong key or tampered bytes."""

    code = "decryption_failed"


class LakeCipher:
    """Encrypts and decrypts byte strings with one AES-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the lake key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    def encrypt(self, data: bytes, associated: bytes = b"") -> bytes:
        """Return MAGIC + nonce + ciphertext; a fresh random nonce every call."""
        nonce = os.urandom(NONCE_BYTES)
        return MAGIC + nonce + self._aead.encrypt(nonce, data, associated or None)

    def decrypt(self, blob: bytes, associated: bytes = b"") -> bytes:
        """Inverse of :meth:`encrypt`; raises :class:`DecryptionError` on a wrong key or tampering."""
        if not blob.startswith(MAGIC):
            raise DecryptionError("data is not a visionlake encrypted blob")
        nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, blob[len(MAGIC) + NONCE_BYTES :], associated or None)
        except InvalidTag as exc:
            raise DecryptionError("cannot decrypt: wrong key (VISIONLAKE_KEY / keys/lake.key)") from exc
