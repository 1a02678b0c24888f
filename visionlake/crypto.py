"""Encryption at rest for biometric data (face templates).

AES-256-GCM from ``cryptography``. The key comes from ``VISIONLAKE_KEY`` (base64 of 32 bytes) or from
``<lake>/keys/lake.key``, created on first use with mode 0600. Without the key, index files and
stored embeddings are opaque bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

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


def load_or_create_key(lake_root: Path) -> bytes:
    """The lake's key: ``VISIONLAKE_KEY`` if set, else ``keys/lake.key`` (created 0600 if missing)."""
    env = os.environ.get("VISIONLAKE_KEY")
    if env:
        key = base64.b64decode(env)
        if len(key) != 32:
            raise VisionLakeError("VISIONLAKE_KEY must be the base64 encoding of 32 bytes")
        return key
    key_file = lake_root / "keys" / "lake.key"
    if key_file.exists():
        return base64.b64decode(key_file.read_bytes().strip())
    key_file.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(key_file.parent, 0o700)
    key = AESGCM.generate_key(bit_length=256)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(key))
    return key
