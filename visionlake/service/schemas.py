"""Request and response models shared by several routers (area-specific ones live in their router)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Role = Literal["viewer", "editor", "admin"]
Purpose = Literal["plain", "faces", "fashion"]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    catalog: Literal["ok", "unavailable"]
    areas: dict[str, bool] = Field(description="Which areas (faces, fashion, trends) this server exposes")


class Me(BaseModel):
    key_id: int
    name: str
    role: Role
    collections: list[str] = Field(description="Collections this key may use; empty = all")


class CollectionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    purpose: Purpose = "plain"
    tagger_model: str | None = Field(default=None, max_length=1000,
                                     description="Fashion only: folder (on the server) of the embedding model")


class IndexInfo(BaseModel):
    space: str
    kind: str | None = None
    dim: int | None = None
    count: int | None = None


class CollectionOut(BaseModel):
    name: str
    purpose: str
    images: int
    created_at: str | None = None
    people: int | None = None
    faces: int | None = None
    indexes: list[IndexInfo] = []


class ImageOut(BaseModel):
    id: int
    path: str
    width: int
    height: int
    format: str | None = None
    thumbnail_url: str | None = None
    meta: dict[str, Any] = {}


class ImagePage(BaseModel):
    images: list[ImageOut]
    offset: int
    limit: int


class Deleted(BaseModel):
    deleted: str


class KeyCreate(BaseModel):
    role: Role
    collections: list[str] = Field(default_factory=list, max_length=100)
    name: str | None = Field(default=None, max_length=200)
    rate_per_s: float | None = Field(default=None, gt=0, le=100_000)


class KeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    role: Role
    collections: list[str]
    rate_per_s: float | None = None
    created_at: str | None = None
    last_used_at: str | None = None
    revoked: bool


class KeyCreated(KeyOut):
    key: str = Field(description="The API key. Shown once: only a salted hash is stored.")


class Retention(BaseModel):
    days: int | None = Field(default=None, ge=0, le=36_500,
                             description="Delete probe photos and unmatched face crops after this many days; "
                                         "null keeps them")


class PurgeReport(BaseModel):
    days: int
    cutoff: str
    probe_photos_deleted: int
    face_crops_deleted: int
    trend_tables_deleted: int = 0
    bytes_freed: int


class AuditEntryOut(BaseModel):
    id: int
    at: str | None
    actor: str
    action: str
    collection: str | None
    result_ids: list[Any]
    detail: str | None


class JobFromPath(BaseModel):
    path: str = Field(min_length=1, max_length=4096, description="Folder, file, or list file on the server")
    include: list[str] = Field(default_factory=list, max_length=50)
    exclude: list[str] = Field(default_factory=list, max_length=50)


class JobOut(BaseModel):
    id: int
    collection: str
    source_kind: str
    source: str | None = None
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    total: int | None = None
    done: int
    progress: float | None = None
    cancel_requested: bool
    error: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    report: dict[str, Any] | None = None
