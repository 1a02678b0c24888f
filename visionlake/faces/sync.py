"""Keep the face vector index in step with the catalog, which is the source of truth.

Writes happen in two places that cannot share one transaction: the catalog (SQL) and the FAISS
file. Every writer commits the catalog first and saves the index second, so the only possible
damage from a crash is an index that lacks committed faces or still holds ids whose rows are gone.
:func:`sync_index` repairs both, and gallery calls run it whenever the two counts disagree.

Templates are encrypted in the catalog with the lake key; :func:`seal` and :func:`unseal` are the
only places that turn floats into bytes and back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from visionlake.catalog.models import Collection
from visionlake.errors import BadInput
from visionlake.faces.models import Face

if TYPE_CHECKING:
    from visionlake.lake import Lake

#: Name of the embedding space of faces inside a collection (``<collection>/index/faces``).
SPACE = "faces"
#: Associated data bound into every sealed template: a blob from another column cannot be swapped in.
_AAD = b"visionlake:face-embedding:v1"
#: lake.json setting that accepts storing face templates unencrypted in a Milvus engine.
MILVUS_PLAINTEXT_OK = "milvus_plaintext_templates"


def seal(cipher: Any, vector: np.ndarray) -> bytes:
    """Encrypt one template (float32) for the catalog."""
    return cipher.encrypt(np.asarray(vector, dtype=np.float32).tobytes(), associated=_AAD)


def unseal(cipher: Any, blob: bytes) -> np.ndarray:
    """Decrypt one template; raises ``DecryptionError`` with a clear message on a wrong key."""
    return np.frombuffer(cipher.decrypt(blob, associated=_AAD), dtype=np.float32)


def index_meta(person_id: int | None) -> dict[str, Any] | None:
    """Index metadata of a face: enrolled faces carry their person so searches can filter on them."""
    return None if person_id is None else {"known": 1, "person_id": int(person_id)}


def collection_dim(lake: Lake, collection_id: int) -> int | None:
    """Dimension of the templates stored in a collection (None when it holds no faces yet)."""
    with lake.session() as s:
        blob = s.scalar(
            select(Face.embedding)
            .where(Face.collection_id == collection_id, Face.embedding.is_not(None))
            .limit(1)
        )
    return None if blob is None else len(unseal(lake.cipher, blob))


def collection_pack(lake: Lake, collection_id: int) -> str | None:
    """The face pack (model family) whose templates a collection holds; packs never mix in one index."""
    with lake.session() as s:
        return s.scalar(select(Face.pack).where(Face.collection_id == collection_id).limit(1))


def pack_mismatch(collection: str, have: str, pack: str) -> str:
    """The message for templates of another pack than the collection's."""
    return (f"collection {collection!r} holds faces embedded with {have!r}, not {pack!r}; "
            "use the same pack or another collection")


def refuse_if_switching(lake: Lake, collection_id: int, collection: str) -> None:
    """While ``faces switch-pack`` re-embeds a collection its faces are in two spaces: refuse to search it."""
    with lake.session() as s:
        settings = s.scalar(select(Collection.settings).where(Collection.id == collection_id)) or {}
    switch = settings.get("faces_switch")
    if switch:
        raise BadInput(
            f"collection {collection!r} is being switched from {switch['from']!r} to {switch['to']!r}; "
            f"finish with `visionlake faces switch-pack -c {collection} --pack {switch['to']}`"
        )


def check_pack(lake: Lake, collection_id: int, collection: str, pack: str) -> None:
    """Refuse to mix templates of two packs (their similarities are not comparable), to put
    templates where the lake key cannot encrypt them (:func:`require_encrypted_engine`), and to touch
    a collection that ``faces switch-pack`` is re-embedding (two spaces coexist then).

    Enroll, identify and the face analyser call this before writing anything.
    """
    require_encrypted_engine(lake)
    refuse_if_switching(lake, collection_id, collection)
    have = collection_pack(lake, collection_id)
    if have is not None and have != pack:
        raise BadInput(pack_mismatch(collection, have, pack))


def face_index(lake: Lake, collection: str, dim: int) -> Any:
    """The encrypted cosine index of a collection's faces (opened once per lake object).

    Refuses an engine that would hold the templates unencrypted unless the lake says so
    (:func:`require_encrypted_engine`). Erasure opens the index without this check
    (:func:`engine_index`): forgetting a person must work whatever the settings.
    """
    require_encrypted_engine(lake)
    return engine_index(lake, collection, dim)


def engine_index(lake: Lake, collection: str, dim: int) -> Any:
    """The face index of a collection with no policy check (for erasure and verification only)."""
    return lake.index(collection, SPACE, dim, "cosine", encrypted=True)


def require_encrypted_engine(lake: Lake) -> None:
    """Refuse to keep face templates where the lake key cannot encrypt them, unless acknowledged.

    FAISS files are sealed with the lake key; Milvus must search raw vectors, so it stores them as
    given (segment and HNSW files). That is acceptable only when the Milvus deployment encrypts at
    rest and the lake owner says so with ``"milvus_plaintext_templates": true`` in ``lake.json``.
    """
    engine = str(lake.settings.get("index", "faiss"))
    if engine != "faiss" and lake.settings.get(MILVUS_PLAINTEXT_OK) is not True:
        raise BadInput(
            f"the index engine {engine!r} stores face templates unencrypted (Milvus cannot search "
            "ciphertext); use the faiss engine, or, if the Milvus deployment encrypts its storage, "
            f'set "{MILVUS_PLAINTEXT_OK}": true in {lake.root / "lake.json"}'
        )


def sync_index(lake: Lake, collection: str, dim: int | None = None, save: bool = True) -> dict[str, int]:
    """Make the index hold exactly the catalog's faces, with the right person metadata.

    Returns counts of what was repaired (``added``, ``removed``, ``relabelled``) and the final
    ``count``. Cheap when nothing is wrong: one id scan of each side.
    """
    col = lake.collection(collection)
    dim = dim or collection_dim(lake, col.id)
    report = {"added": 0, "removed": 0, "relabelled": 0, "count": 0}
    if dim is None:
        # an index without any face rows: every id in it is an orphan (any engine: FAISS or Milvus)
        header = lake.index_header(collection, SPACE)
        if header is None:
            return report
        dim = int(header["dim"])
    index = face_index(lake, collection, dim)
    with lake.session() as s:
        rows = s.execute(
            select(Face.id, Face.person_id).where(Face.collection_id == col.id, Face.embedding.is_not(None))
        ).all()
    catalog = {int(i): p for i, p in rows}
    in_index = set(index.ids().tolist())
    orphans = [i for i in in_index if i not in catalog]
    missing = [i for i in catalog if i not in in_index]
    meta_of = getattr(index, "metadata", None)  # engines without a metadata read skip relabelling
    relabel = [] if meta_of is None else [
        i for i in catalog if i in in_index and (meta_of(i) or {}).get("person_id") != catalog[i]
    ]
    if orphans:
        report["removed"] = index.remove(orphans)
    if missing:
        _add_from_catalog(lake, index, missing, catalog)
        report["added"] = len(missing)
    if relabel:
        vecs = index.reconstruct(relabel)
        index.remove(relabel)
        _add(index, relabel, vecs, catalog)
        report["relabelled"] = len(relabel)
    if save and (orphans or missing or relabel):
        index.save()
    report["count"] = index.count()
    return report


def needs_sync(lake: Lake, collection_id: int, index: Any) -> bool:
    """Quick check (two counts) used before every query: does the index disagree with the catalog?"""
    with lake.session() as s:
        n = s.scalar(
            select(func.count(Face.id))
            .where(Face.collection_id == collection_id, Face.embedding.is_not(None))
        ) or 0
    return int(n) != index.count()


def _add_from_catalog(lake: Lake, index: Any, ids: list[int], catalog: dict[int, int | None]) -> None:
    step = 10_000
    for start in range(0, len(ids), step):
        chunk = ids[start : start + step]
        with lake.session() as s:
            blobs = dict(s.execute(select(Face.id, Face.embedding).where(Face.id.in_(chunk))).all())
        vecs = np.vstack([unseal(lake.cipher, blobs[i]) for i in chunk])
        _add(index, chunk, vecs, catalog)


def _add(index: Any, ids: list[int], vecs: np.ndarray, persons: dict[int, int | None]) -> None:
    """Add known faces with metadata and unknown ones without (keeps ``index.json`` small)."""
    known = [k for k, i in enumerate(ids) if persons.get(i) is not None]
    unknown = [k for k, i in enumerate(ids) if persons.get(i) is None]
    if known:
        index.add([ids[k] for k in known], vecs[known], [index_meta(persons[ids[k]]) for k in known])
    if unknown:
        index.add([ids[k] for k in unknown], vecs[unknown])


# ----------------------------------------------------------------- the faces space of visionlake.resync
def faces_catalog_ids(lake: Any, collection_id: int) -> set[int]:
    """Face ids of a collection that carry a template."""
    from visionlake.faces.models import Face

    with lake.session() as s:
        return set(s.scalars(select(Face.id).where(Face.collection_id == collection_id,
                                                   Face.embedding.is_not(None))).all())


def sync_faces(lake: Any, collection: str, save: bool = True, backfill: bool = True) -> dict[str, int]:
    """The faces space resyncs with :func:`sync_index` (it also relabels person ids); no backfill:
    templates only ever come from the catalog."""
    return sync_index(lake, collection, save=save)
