"""One :class:`Gallery` per faces collection: the only implementation of 1:N identification.

The CLI (``visionlake faces identify``), the Python API (:func:`visionlake.faces.gallery.identify`,
:func:`visionlake.faces.open_gallery`) and the service (photo and pre-computed templates) all go
through :meth:`Gallery.identify` / :meth:`Gallery.identify_vectors`, so ranking, thresholds, names and
the audit entry are decided in one place.

What it caches, and why it is safe to. Opening a gallery reads what a query needs besides the
vectors -- the pack and dimension of the templates, whether every indexed face is an enrolled one,
the people's names -- once. The catalog keeps a per-collection *generation* counter that database
triggers increase on every change of the collection's faces or people (see
:class:`visionlake.faces.models.FaceGeneration`); each query reads that one integer and reloads only
when it moved. So a steady-state query costs two catalog round trips: that read, and the audit
entry (none at all when the service's audit buffer takes the entry). A reload also compares the
index with the catalog (two counts) and repairs the index when a crash left them apart, which is
the only time that comparison can change.

Databases without the triggers (anything but SQLite and PostgreSQL) reload on every query: correct,
just slower.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, select

from visionlake.errors import BadInput
from visionlake.faces.audit import probe_ref as audit_probe_ref
from visionlake.faces.models import Face, FaceGeneration, Person
from visionlake.faces.sync import SPACE, face_index, refuse_if_switching, sync_index, unseal

if TYPE_CHECKING:
    from visionlake.lake import Lake

#: Galleries with at most this many people keep every name in memory (one query per reload); larger
#: ones read the names of the people a query returns, by primary key.
NAMES_PRELOAD_MAX = 1_000_000

#: The index filter that keeps enrolled faces only (their metadata carries ``known``).
KNOWN: dict[str, Any] = {"known": 1}

#: ``audit(action, collection, result_ids, detail, actor)``: where a gallery's audit entries go.
AuditSink = Callable[[str, str | None, list[str], str | None, str | None], None]


@dataclass(frozen=True)
class _State:
    """What a collection holds, as of one generation of the catalog."""

    generation: int | None
    dim: int | None
    pack: str | None
    people: int
    all_known: bool  # every face in the index belongs to an enrolled person: no filter needed
    names: dict[int, str] | None  # None: too many people to preload


class Gallery:
    """A faces collection opened for identification (thread-safe; cheap to keep for a process).

    ``audit`` receives each entry (default: written to the catalog at once, in its own transaction);
    the service passes its buffered writer. ``reload_index`` lets the gallery reopen the index when
    another process rewrote it; the service turns it off because it reloads indexes itself, under
    its collection locks.
    """

    def __init__(self, lake: Lake, collection: str = "people", pipeline: Any = None,
                 audit: AuditSink | None = None, reload_index: bool = True) -> None:
        self.lake = lake
        self.collection = lake.collection(collection)
        self.name: str = self.collection.name
        self._pipeline = pipeline
        self._given_pipeline = pipeline is not None
        self._pipeline_opts: dict[str, Any] | None = None
        self._audit = audit
        self._reload_index = reload_index
        self._lock = threading.Lock()
        self._state: _State | None = None
        self._index_mtime: int | None = None
        self._thresholds: dict[tuple[str, float], float] = {}
        self._tracked = lake.engine.dialect.name in ("sqlite", "postgresql")
        self._generation_sql = _generation_sql(lake.engine.dialect.paramstyle)
        self.reloads = 0

    # ------------------------------------------------------------------ cached facts
    @property
    def pipeline(self) -> Any:
        """The face pipeline for photos: the collection's own pack (licence checked) unless one was given.

        The recorded pack is read again on every access (one small query; a photo's detection costs
        far more): a long-lived gallery, such as the service's, must follow ``faces use-pack`` on an
        empty collection and ``faces switch-pack`` run by another process, neither of which needs to
        touch a face row that would move the generation counter.
        """
        if self._given_pipeline:
            return self._pipeline
        from visionlake.faces.collection_pack import pack_options, pipeline_for

        opts = pack_options(self.lake.collection(self.name))
        if self._pipeline is None or opts != self._pipeline_opts:
            self._pipeline = pipeline_for(self.lake, self.name)
            self._pipeline_opts = opts
        return self._pipeline

    def detect(self, image: str | os.PathLike[str] | bytes, label: str | None = None) -> dict[str, Any]:
        """Faces of a photo as the collection's own pack finds them (boxes, landmarks, score, quality).

        Nothing is stored or audited: detection says where faces are, not whose they are.
        """
        from visionlake.faces.gallery import read_photo

        photo = read_photo(image, label=label)
        pipe = self.pipeline
        faces = pipe.detect(photo.image)
        return {"width": photo.width, "height": photo.height, "pack": pack_name(pipe), "faces": faces}

    def warm(self) -> bool:
        """The collection's facts are loaded (a query needs no more than the generation read)."""
        return self._state is not None

    def _generation(self) -> int | None:
        """The collection's generation, read on every query: one primary-key lookup as plain driver
        SQL. Through a Core ``select`` the same read cost ~300 us of CPU (statement building, the
        compilation cache key, result objects), a large part of a warm 100k-face query; this way
        ~80 us. Still a read of the committed value through the engine (its events and pool), so a
        change made by another process is seen by the next query exactly as before."""
        if not self._tracked:
            return None
        with self.lake.engine.connect() as conn:
            if self._generation_sql is not None:
                n = conn.exec_driver_sql(self._generation_sql, (self.collection.id,)).scalar()
            else:
                n = conn.execute(select(FaceGeneration.n).where(
                    FaceGeneration.collection_id == self.collection.id)).scalar()
        return int(n or 0)

    def state(self) -> _State:
        """The collection's facts, reloaded when its generation moved (one small query otherwise)."""
        gen = self._generation()
        st = self._state
        if st is not None and gen is not None and st.generation == gen:
            return st
        with self._lock:
            st = self._state
            if st is not None and gen is not None and st.generation == gen:
                return st
            st = self._load(gen)
            self._state = st
            self.reloads += 1
            return st

    def _load(self, generation: int | None) -> _State:
        col_id = self.collection.id
        refuse_if_switching(self.lake, col_id, self.name)  # two embedding spaces until the switch ends
        with self.lake.session() as s:
            first = s.execute(select(Face.embedding, Face.pack).where(
                Face.collection_id == col_id, Face.embedding.is_not(None)).limit(1)).first()
            n_faces, n_known = s.execute(select(
                func.count(Face.id), func.count(Face.person_id)).where(
                Face.collection_id == col_id, Face.embedding.is_not(None))).one()
            n_people = int(s.scalar(select(func.count(Person.id)).where(Person.collection_id == col_id)) or 0)
            names = None
            if n_people <= NAMES_PRELOAD_MAX:
                names = {int(i): str(nm) for i, nm in s.execute(
                    select(Person.id, Person.name).where(Person.collection_id == col_id))}
        dim = pack = None
        if first is not None:
            dim, pack = len(unseal(self.lake.cipher, first[0])), str(first[1])
            index = self._index(dim)
            if index.count() != int(n_faces):  # a crash between a catalog commit and an index save
                sync_index(self.lake, self.name, dim=dim)
        return _State(generation, dim, pack, n_people, int(n_faces) == int(n_known), names)

    def _index(self, dim: int) -> Any:
        if self._reload_index:
            try:
                mtime: int | None = os.stat(self.lake.index_header_path(self.name, SPACE)).st_mtime_ns
            except OSError:
                mtime = None
            if self._index_mtime is not None and mtime != self._index_mtime:
                self.lake.forget_index(self.name, SPACE)  # another process rewrote it
            self._index_mtime = mtime
        return face_index(self.lake, self.name, dim)

    def threshold(self, far: float | None = 1e-3, threshold: float | None = None, pack: str | None = None) -> float:
        """Explicit threshold, else the calibrated one of the collection's pack at ``far`` (cached)."""
        if threshold is not None:
            if not -1.0 <= threshold <= 1.0:
                raise BadInput(f"threshold {threshold} is not a cosine similarity in [-1, 1]")
            return float(threshold)
        far = 1e-3 if far is None else float(far)
        if pack is None:
            pack = self.state().pack or getattr(self.pipeline, "name", None)
        key = (str(pack), far)
        got = self._thresholds.get(key)
        if got is None:
            pipe = self._pipeline
            if pipe is not None and getattr(pipe, "name", None) == pack and hasattr(pipe, "threshold"):
                got = float(pipe.threshold(far))
            else:
                from visionlake.faces.thresholds import calibrated_threshold

                got = float(calibrated_threshold(str(pack), far))
            self._thresholds[key] = got
        return got

    def names(self, st: _State, pids: Sequence[int]) -> dict[int, str]:
        """person id -> name for the ids that exist (from memory unless the gallery is huge)."""
        if st.names is not None:
            return {p: st.names[p] for p in pids if p in st.names}
        if not pids:
            return {}
        # by primary key only (with the collection in the WHERE clause SQLite may scan the collection)
        with self.lake.engine.connect() as conn:
            rows = conn.execute(select(Person.id, Person.name, Person.collection_id).where(
                Person.id.in_(list(pids)))).all()
        return {int(i): str(nm) for i, nm, c in rows if c == self.collection.id}

    # ------------------------------------------------------------------ ranking
    def _owners(self, index: Any) -> Callable[[list[int]], dict[int, int]]:
        """face id -> person id from the index metadata (kept in step with the catalog by every
        writer: it is what the ``known`` filter relies on); the catalog for faces without it."""
        meta_of = getattr(index, "metadata", None)

        def owners(face_ids: list[int]) -> dict[int, int]:
            out: dict[int, int] = {}
            rest = []
            for f in face_ids:
                pid = (meta_of(f) or {}).get("person_id") if meta_of is not None else None
                if pid is None:
                    rest.append(f)
                else:
                    out[int(f)] = int(pid)
            if rest:
                out.update(catalog_owners(self.lake, rest))
            return out

        return owners

    def rank(self, vectors: np.ndarray, top: int, st: _State | None = None) -> list[list[tuple[int, float, int]]]:
        """Top ``top`` people per vector as (person_id, score, face_id), best first."""
        st = st or self.state()
        if not st.people or st.dim is None:
            return [[] for _ in range(len(vectors))]
        index = self._index(st.dim)
        where = None if st.all_known else KNOWN
        return search_people(index, vectors, top, where=where, owners=self._owners(index))

    def _matches(self, st: _State, ranked: list[list[tuple[int, float, int]]], thr: float
                 ) -> tuple[list[dict[str, Any]], list[str]]:
        names = self.names(st, sorted({pid for r in ranked for pid, _s, _f in r}))
        faces, matched = [], []
        for r in ranked:
            matches = [{"person": names[p], "person_id": p, "score": round(sc, 4), "face_id": f}
                       for p, sc, f in r if sc >= thr and p in names]
            faces.append({"identity": matches[0]["person"] if matches else "unknown",
                          "best_score": round(r[0][1], 4) if r else None, "matches": matches})
            matched += [f"person:{m['person_id']}" for m in matches[:1]]
        return faces, matched

    def _record(self, matched: list[str], detail: str, actor: str | None) -> None:
        if self._audit is not None:
            self._audit("identify", self.name, matched, detail, actor)
            return
        from visionlake.faces import audit

        with self.lake.session() as s:
            audit.record(s, "identify", self.name, matched, detail=detail, actor=actor)

    # ------------------------------------------------------------------ queries
    def identify_vectors(self, vectors: Any, top: int = 5, far: float | None = 1e-3,
                         threshold: float | None = None, actor: str | None = None) -> dict[str, Any]:
        """1:N search of pre-computed templates (one per face), audited like a photo."""
        if top < 1:
            raise BadInput("top must be at least 1")
        vecs = np.asarray(vectors, dtype=np.float32)
        if vecs.ndim == 1:
            vecs = vecs.reshape(1, -1)
        st = self.state()
        if st.dim is None:
            raise BadInput(f"collection {self.name!r} holds no faces yet")
        if vecs.ndim != 2 or vecs.shape[1] != st.dim:
            raise BadInput(f"embeddings must have {st.dim} values (pack {st.pack}), got {vecs.shape[-1]}")
        if not np.all(np.isfinite(vecs)) or np.any(np.linalg.norm(vecs, axis=1) == 0):
            raise BadInput("embeddings must be finite and non-zero")
        thr = self.threshold(far, threshold, pack=st.pack)
        ranked = self.rank(vecs, top, st)
        faces, matched = self._matches(st, ranked, thr)
        self._record(matched, f"{len(vecs)} template(s), {len(matched)} identified, threshold {thr:.4f}, "
                     "no photo", actor)
        out: dict[str, Any] = {"collection": self.name, "threshold": round(thr, 4), "faces": faces,
                               "probe_kept": None}
        if not st.people:
            out["warning"] = f"collection {self.name!r} has no enrolled people: every face is unknown"
        return out

    def identify(self, image: str | os.PathLike[str] | bytes, top: int = 5, threshold: float | None = None,
                 far: float | None = 1e-3, keep_probe: bool = False, actor: str | None = None,
                 label: str | None = None) -> dict[str, Any]:
        """Open-set 1:N identification of every face in a photo.

        Per face: ``identity`` (a name, or ``"unknown"`` when no enrolled person passes the
        threshold), ``matches`` (up to ``top`` people at or above the threshold, best first, with
        cosine scores) and ``best_score``. Faces smaller than ``MIN_FACE_SIZE`` get a ``warning``.
        """
        from visionlake.faces.gallery import MIN_FACE_SIZE, box_size, read_photo
        from visionlake.faces.sync import pack_mismatch

        if top < 1:
            raise BadInput("--top must be at least 1")
        photo = read_photo(image, label=label)
        pipe = self.pipeline
        st = self.state()
        thr = self.threshold(far, threshold, pack=pipe.name)
        if st.pack is not None and st.pack != pipe.name:
            raise BadInput(pack_mismatch(self.name, st.pack, pipe.name))
        faces = pipe.detect(photo.image)
        if not faces:
            raise BadInput(f"no face found in {photo.label}")
        vecs = np.asarray(pipe.embed(photo.image, faces), dtype=np.float32).reshape(len(faces), -1)
        ranked = self.rank(vecs, top, st)
        entries, matched = self._matches(st, ranked, thr)
        results = []
        for face, entry in zip(faces, entries, strict=True):
            w, h = box_size(face.box)
            item: dict[str, Any] = {"box": [int(v) for v in face.box],
                                    "quality": round(float(face.quality), 3), **entry}
            if min(w, h) < MIN_FACE_SIZE:
                item["warning"] = (f"face is only {w}x{h} px: identification is unreliable "
                                   f"below {MIN_FACE_SIZE} px")
            results.append(item)
        probe_rel = None
        if keep_probe:
            ext = (photo.format or "bin").lower().replace("jpeg", "jpg")
            probe_rel = f"collections/{self.name}/probes/{photo.sha256[:2]}/{photo.sha256}.{ext}"
            self.lake.write_file(probe_rel, photo.data, skip_existing=True)
        # the kept probe is a typed id (never free text in the chained note): erasure can redact it
        ids = matched + ([audit_probe_ref(probe_rel)] if probe_rel else [])
        self._record(ids, f"{len(faces)} face(s), {len(matched)} identified, threshold {thr:.4f}"
                     + (", probe kept" if probe_rel else ", probe not kept"), actor)
        out: dict[str, Any] = {"image": photo.label, "collection": self.name, "threshold": round(thr, 4),
                               "faces": results, "probe_kept": probe_rel}
        if not st.people:
            out["warning"] = f"collection {self.name!r} has no enrolled people: every face is unknown"
        return out


# ---------------------------------------------------------------------------------------------- helpers
def _generation_sql(paramstyle: str) -> str | None:
    """``SELECT n FROM face_generations WHERE collection_id = <one parameter>`` in the driver's own
    placeholder style (None for styles other than positional ``?`` / ``%s``: read through Core)."""
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(paramstyle)
    if mark is None:
        return None
    table = FaceGeneration.__table__
    return f"SELECT {table.c.n.name} FROM {table.name} WHERE {table.c.collection_id.name} = {mark}"


def pack_name(pipeline: Any) -> str:
    """The pack a pipeline was built for (``dlib``, ``arcface-s``...), else its embedding space name."""
    return str(getattr(pipeline, "pack", None) or getattr(pipeline, "name", "unknown"))


def search_people(index: Any, vectors: np.ndarray, top: int, where: dict[str, Any] | None = KNOWN,
                  owners: Callable[[list[int]], dict[int, int]] | None = None,
                  lake: Lake | None = None) -> list[list[tuple[int, float, int]]]:
    """Top ``top`` people per query as (person_id, score, face_id), score = max over the person's faces.

    Faces come back best first, so the first time a person appears is their best face: the people
    ranking is exact as soon as ``top`` distinct people are seen; ``k`` doubles until then.
    ``owners`` maps face ids to person ids (default: the catalog of ``lake``).
    """
    if owners is None:
        if lake is None:
            raise ValueError("search_people needs owners or a lake")
        owners = lambda ids: catalog_owners(lake, ids)  # noqa: E731
    out = []
    total = index.count()
    for q in np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1):
        k = min(total, max(4 * top, 32))
        ranked: list[tuple[int, float, int]] = []
        while k > 0:
            hits = index.search(q.reshape(1, -1), k=k, where=where)[0]
            by_face = owners([h.id for h in hits])
            ranked = []
            seen: set[int] = set()
            for h in hits:
                pid = by_face.get(h.id)
                if pid is None or pid in seen:
                    continue
                seen.add(pid)
                ranked.append((pid, float(h.score), int(h.id)))
                if len(ranked) == top:
                    break
            if len(ranked) >= top or len(hits) < k or k >= total:
                break
            k = min(total, k * 2)
        out.append(ranked)
    return out


def catalog_owners(lake: Lake, face_ids: list[int]) -> dict[int, int]:
    """face id -> person id, from the catalog (the index metadata is only a filter)."""
    if not face_ids:
        return {}
    with lake.engine.connect() as conn:
        return {int(f): int(p) for f, p in conn.execute(
            select(Face.id, Face.person_id).where(Face.id.in_(face_ids), Face.person_id.is_not(None)))}


__all__ = ["Gallery", "NAMES_PRELOAD_MAX", "catalog_owners", "pack_name", "search_people"]
