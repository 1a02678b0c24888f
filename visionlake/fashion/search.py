"""Look search: photo -> similar photos and words -> photos, through the collection's fashion index.

Metadata filters (``where={"season": "Summer"}``) are applied inside the index query, so a filtered
query still returns the top K of the matching images rather than a post-filtered remainder.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import bindparam, select

from visionlake.catalog.models import Image
from visionlake.errors import BadInput, NotFound

if TYPE_CHECKING:
    from visionlake.lake import Lake

SPACE = "fashion"
#: What a search shows of each hit, read by id (an expanding IN list).
_HIT_ROWS = select(Image.id, Image.path, Image.thumbnail, Image.meta).where(
    Image.id.in_(bindparam("ids", expanding=True)))
_T = Image.__table__
#: :data:`_HIT_ROWS` in plain SQL, up to its ``IN`` list of placeholders (see :func:`hit_rows`).
_HIT_SQL = (f"SELECT {_T.c.id.name}, {_T.c.path.name}, {_T.c.thumbnail.name}, {_T.c.meta.name} "
            f"FROM {_T.name} WHERE {_T.c.id.name} IN")
_PATH_TYPE = _T.c.path.type


@dataclass
class SearchResult:
    """One hit: catalog id, cosine score, original path and thumbnail (absolute path when present)."""

    image_id: int
    score: float
    path: str
    thumbnail: str | None
    meta: dict[str, Any]


def space_dim(lake: Lake, collection: str) -> int | None:
    """Dimension of the collection's fashion index, or None when nothing was embedded yet.

    Search calls this on every query: the lake's header cache (keyed by the file's modification
    time) parses ``index.json`` -- which holds every image's metadata -- once per change, not per query.
    """
    head = lake.index_header(collection, SPACE)  # FAISS header or Milvus collection description
    if head is None:  # never saved (e.g. a crash before the first save): the catalog has the vectors
        from visionlake.fashion.resync import fashion_index_dim

        return fashion_index_dim(lake, lake.collection(collection).id)
    return int(head["dim"])


def no_embeddings_message(collection: str) -> str:
    """What to do about a fashion collection without embeddings. Re-ingesting photos already in the
    catalog skips them as duplicates, so the way to embed them is ``analyse``, once a model is there."""
    return (f"collection {collection!r} has no fashion embeddings yet; embed the photos it holds with "
            f"`visionlake analyse -c {collection}` once a fashion model is available "
            f"(`visionlake models fetch efficientnet-lite0` offline), or ingest photos with one")


def open_space(lake: Lake, collection: str, dim: int | None = None) -> Any:
    """The collection's fashion index (NotFound when it has never been written, or no such collection)."""
    d = space_dim(lake, collection)
    if d is None:
        lake.collection(collection)  # NotFound for an unknown collection (an index implies one exists)
        d = dim
    if d is None:
        raise NotFound(no_embeddings_message(collection))
    return lake.index(collection, SPACE, d, "cosine")


def parse_where(items: list[str] | None) -> dict[str, Any]:
    """``["season=Summer", "year=2012", "year=2013"]`` -> ``{"season": "Summer", "year": ["2012", "2013"]}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise BadInput(f"--where expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        k, v = k.strip(), v.strip()
        if not k:
            raise BadInput(f"--where expects key=value, got {item!r}")
        if k in out:
            out[k] = (out[k] if isinstance(out[k], list) else [out[k]]) + [v]
        else:
            out[k] = v
    return out


def search(lake: Lake, collection: str, image: str | os.PathLike[str] | PILImage.Image | int | None = None,
           text: str | None = None, where: dict[str, Any] | None = None, top: int = 10, model: Any = None,
           vector: np.ndarray | None = None) -> list[SearchResult]:
    """Top ``top`` images of ``collection`` for one query: a photo (path or PIL), an image id already in
    the lake (works without any model), a text, or a raw vector."""
    given = [x is not None for x in (image, text, vector)]
    if sum(given) != 1:
        raise BadInput("give exactly one query: an image, a text or a vector")
    if top <= 0:
        raise BadInput(f"--top must be positive, got {top}")
    index = open_space(lake, collection)
    if vector is not None:
        q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    elif isinstance(image, int) and not isinstance(image, bool):
        if not bool(np.any(index.ids() == image)):
            raise NotFound(f"image {image} has no fashion embedding in {collection!r}")
        q = index.reconstruct([image])
    elif image is not None:
        if model is None:
            raise BadInput("an image query needs a model (or pass an image id already in the lake)")
        q = model.embed_images([_open_image(image)])
    else:
        if not str(text).strip():
            raise BadInput("empty text query")
        if model is None:
            raise BadInput("a text query needs a model")
        q = model.embed_texts([str(text)])
    if q.shape[1] != index.dim:  # a rows-layout embedding: the index holds its pooled part
        from visionlake.fashion.index_vectors import collection_record, index_vectors

        q = index_vectors(q, collection_record(lake, collection))
    if q.shape[1] != index.dim:
        raise BadInput(f"query has dimension {q.shape[1]} but {collection!r} was embedded with {index.dim}: "
                       "use the same model that tagged the collection")
    hits = index.search(q, k=top, where=where or None)[0]
    if not hits:
        return []
    rows = hit_rows(lake, [int(h.id) for h in hits])
    out = []
    for h in hits:
        r = rows.get(h.id)
        if r is None:
            continue
        path, thumbnail, meta = r
        thumb = str(Path(lake.root) / thumbnail) if thumbnail else None
        out.append(SearchResult(h.id, round(float(h.score), 5), path, thumb, dict(meta or {})))
    return out


def hit_rows(lake: Lake, ids: list[int]) -> dict[int, tuple[str, str | None, dict[str, Any] | None]]:
    """``id -> (path, thumbnail, meta)`` of the hits, decoded as the ORM columns decode them.

    This runs on every query: in the driver's own SQL (one ``IN`` list of placeholders) rather than
    through SQLAlchemy's expanding-parameter compilation and result processing, which cost about
    as much Python as the rest of the search. Drivers with other placeholder styles read through Core.
    """
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(lake.engine.dialect.paramstyle)
    if mark is None or not ids:
        with lake.engine.connect() as conn:
            return {r.id: (r.path, r.thumbnail, r.meta) for r in conn.execute(_HIT_ROWS, {"ids": ids})}
    sql = f"{_HIT_SQL} ({', '.join([mark] * len(ids))})"
    dialect = lake.engine.dialect
    decode_path = _PATH_TYPE.process_result_value
    with lake.engine.connect() as conn:
        rows = conn.exec_driver_sql(sql, tuple(ids)).fetchall()
    # JSON arrives as text from SQLite, already decoded from drivers with a JSON type (psycopg)
    return {i: (decode_path(path, dialect), thumb, json.loads(meta) if isinstance(meta, str | bytes) else meta)
            for i, path, thumb, meta in rows}


def results_json(results: list[SearchResult]) -> list[dict[str, Any]]:
    return [asdict(r) for r in results]


def _open_image(image: str | os.PathLike[str] | PILImage.Image) -> PILImage.Image:
    if isinstance(image, PILImage.Image):
        return image.convert("RGB")
    return load_image(image)


def load_image(path: str | os.PathLike[str]) -> PILImage.Image:
    """Open a photo for one-off use with clear errors (missing, not an image, truncated, too big)."""
    from visionlake.config import MAX_FILE_BYTES
    from visionlake.imageio import Rejected, decode_rgb

    p = Path(path)
    if not p.is_file():
        raise NotFound(f"no such image file: {p}")
    if p.stat().st_size > MAX_FILE_BYTES:
        raise BadInput(f"{p} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return decode_rgb(p.read_bytes())[0]
    except Rejected as rej:
        raise BadInput(f"{p} is not a readable image ({rej.reason}: {rej.detail})") from None
