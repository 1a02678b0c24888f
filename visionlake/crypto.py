"""Encryption at rest for biometric data (face templates).

AES-256-GCM from ``cryptography``. The key comes from ``VISIONLAKE_KEY`` (base64 of 32 bytes) or from
``<lake>/keys/lake.key`` (mode 0600); :mod:`visionlake.keyring` loads it, checks it against the lake
and creates one only for a lake without encrypted data. Without the key, index files and stored
embeddings are opaque bytes.
"""

from __future__ import annotations

import hashlib
import hmac
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
        # a separate subkey for keyed fingerprints, so a MAC never reuses the encryption key as such
        self._mac_key = hashlib.sha256(b"visionlake:fingerprint-key:v1" + key).digest()

    def fingerprint(self, data: bytes, purpose: bytes) -> str:
        """A keyed, deterministic tag of ``data`` (HMAC-SHA256, hex): equal inputs give equal tags.

        Lets the lake recognise a value later (an erasure journal recognising the name it erased)
        without storing the value; without the key the tag tells nothing about it.
        """
        return hmac.new(self._mac_key, purpose + b"\0" + data, hashlib.sha256).hexdigest()

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
