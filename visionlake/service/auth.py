"""API keys, roles and per-collection scopes.

A key looks like ``vlk_<prefix>_<secret>``. The prefix is a public id used to find the row; the
secret is checked against a salted scrypt hash (per-key random salt), so the catalog never holds
anything that works as a key. The full key is returned once, at creation.

Roles are ordered: ``viewer`` (read, search, identify, verify) < ``editor`` (also enroll, forget,
ingest, edit groups) < ``admin`` (also collections, keys, audit log, retention). A key may be
limited to some collections; for every other collection it behaves as if that collection did not
exist (404, never 403), so a scoped key cannot even learn which other collections there are.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from visionlake.errors import BadInput, NotFound
from visionlake.service.models import ApiKey

if TYPE_CHECKING:
    from visionlake.lake import Lake

ROLES = ("viewer", "editor", "admin")
_RANK = {r: i for i, r in enumerate(ROLES)}
KEY_PREFIX = "vlk"
#: scrypt cost: about 30-60 ms and 16 MiB per check; verified keys are then cached by digest.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, maxmem=64 * 1024 * 1024, **_SCRYPT)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name, role and collection scope (empty = all collections)."""

    key_id: int
    name: str
    role: str
    collections: tuple[str, ...] = field(default_factory=tuple)
    rate_per_s: float | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"key:{self.name}#{self.key_id}"

    @property
    def unscoped(self) -> bool:
        return not self.collections

    def has_role(self, role: str) -> bool:
        return _RANK[self.role] >= _RANK[role]

    def can_see(self, collection: str) -> bool:
        return self.unscoped or collection in self.collections


def create_key(lake: Lake, role: str, collections: list[str] | None = None, name: str | None = None,
               rate_per_s: float | None = None) -> dict[str, Any]:
    """Create a key and return its row as a dict plus ``key``: the only time the secret is shown."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    cols = sorted({c.strip() for c in (collections or []) if c and c.strip()})
    for c in cols:
        lake.collection(c)  # NotFound for a typo: a key scoped to nothing would be useless
    if rate_per_s is not None and rate_per_s <= 0:
        raise BadInput("rate must be a positive number of requests per second")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    with lake.session() as s:
        row = ApiKey(name=(name or f"{role}-{prefix}")[:200], prefix=prefix, salt=salt,
                     secret_hash=_hash(secret, salt), role=role, collections=cols, rate_per_s=rate_per_s)
        s.add(row)
        s.flush()
        out = key_info(row)
    out["key"] = f"{KEY_PREFIX}_{prefix}_{secret}"
    return out


def key_info(row: ApiKey) -> dict[str, Any]:
    """Public facts about a key (never the hash or the salt)."""
    return {
        "id": row.id, "name": row.name, "prefix": row.prefix, "role": row.role,
        "collections": list(row.collections or []), "rate_per_s": row.rate_per_s,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        "revoked": row.revoked_at is not None,
    }


def list_keys(lake: Lake) -> list[dict[str, Any]]:
    """Every key (revoked ones included, marked)."""
    with lake.session() as s:
        return [key_info(r) for r in s.scalars(select(ApiKey).order_by(ApiKey.id))]


def revoke_key(lake: Lake, key_id: int) -> dict[str, Any]:
    """Revoke a key; it stops working on the next request (rows are kept for the audit trail)."""
    with lake.session() as s:
        row = s.get(ApiKey, int(key_id))
        if row is None:
            raise NotFound(f"no API key with id {key_id} (list them with 'visionlake keys list')")
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
        return key_info(row)


#: Seconds a checked key is trusted without re-reading its row. Revocation through this server applies
#: at once (:meth:`KeyVerifier.invalidate`); through the CLI or another worker within this time.
PRINCIPAL_TTL_S = 2.0


class KeyVerifier:
    """Checks presented keys. scrypt runs once per distinct key; the row is re-read at most every
    :data:`PRINCIPAL_TTL_S` seconds, so revocation, role and scope changes apply almost at once while a
    busy key costs a dictionary lookup per request instead of a catalog read."""

    def __init__(self, lake: Lake, ttl_s: float = PRINCIPAL_TTL_S) -> None:
        self.lake = lake
        self.ttl_s = ttl_s
        self._verified: dict[bytes, int] = {}  # sha256(full key) -> key id, only for keys that matched
        self._principals: dict[bytes, tuple[float, Principal]] = {}  # digest -> (checked at, principal)
        self._lock = threading.Lock()
        self._touched: dict[int, datetime] = {}

    @staticmethod
    def _digest(presented: str) -> bytes:
        return hashlib.sha256(presented.encode()).digest()

    def cached(self, presented: str | None) -> Principal | None:
        """The principal of a key checked less than ``ttl_s`` ago (no catalog access), else None."""
        if not presented or len(presented) > 200:
            return None
        hit = self._principals.get(self._digest(presented))
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        return None

    def invalidate(self, key_id: int | None = None) -> None:
        """Forget cached principals (of one key, or all): the next request re-reads the row."""
        with self._lock:
            if key_id is None:
                self._principals.clear()
            else:
                for d in [d for d, (_t, p) in self._principals.items() if p.key_id == key_id]:
                    del self._principals[d]

    def verify(self, presented: str | None) -> Principal | None:
        """The principal of a valid, unrevoked key, else None."""
        if not presented or len(presented) > 200:
            return None
        digest = self._digest(presented)
        with self._lock:
            key_id = self._verified.get(digest)
        if key_id is None:
            key_id = self._check_secret(presented)
            if key_id is None:
                return None
            with self._lock:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[digest] = key_id
        checked = time.monotonic()
        with self.lake.session() as s:
            row = s.get(ApiKey, key_id)
            if row is None or row.revoked_at is not None:
                self.invalidate(key_id)
                return None
            now = datetime.now(UTC)
            last = self._touched.get(key_id)
            if last is None or now - last > timedelta(minutes=1):  # one write a minute, not per request
                row.last_used_at = now
                self._touched[key_id] = now
            who = Principal(row.id, row.name, row.role, tuple(row.collections or ()), row.rate_per_s)
        with self._lock:
            if len(self._principals) > 10_000:
                self._principals.clear()
            self._principals[digest] = (checked, who)
        return who

    def _check_secret(self, presented: str) -> int | None:
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX:
            return None
        _, prefix, secret = parts
        with self.lake.session() as s:
            row = s.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
            if row is None:
                return None
            salt, want, key_id = row.salt, row.secret_hash, row.id
        return key_id if hmac.compare_digest(_hash(secret, salt), want) else None


__all__ = ["ROLES", "KeyVerifier", "Principal", "create_key", "key_info", "list_keys", "revoke_key"]
