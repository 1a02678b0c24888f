"""Milvus backend: the same :class:`VectorIndex` on Milvus Lite (one local file) or a Milvus cluster.

One pymilvus ``MilvusClient`` code path serves both: ``milvus-lite:/path/file.db`` (or any path ending
in ``.db``) opens an embedded Milvus Lite file, ``milvus://HOST:PORT`` (or ``http(s)://...``) a
Milvus Standalone/Distributed server. A user who outgrows one box keeps the same commands and
changes only the lake setting ``index``.

Schema of a collection: ``id`` INT64 primary key (the catalog id; never auto-generated), ``vector``
FLOAT_VECTOR, ``meta`` JSON (the metadata as given, returned by :meth:`metadata`) and ``mkey`` JSON
(the same metadata with every value turned into a string). Filters run on ``mkey`` so that
``where={"person_id": 5}`` and ``where={"person_id": "5"}`` behave as in the FAISS backend, which
compares string forms (:func:`visionlake.index.base.matches`).

Erasure: Milvus deletes are logical at first (a delete record masks the row in every search, get
and count at once, with the collection's Strong consistency) and physical after compaction.
:meth:`remove` deletes; :meth:`save` flushes and asks for a compaction so the bytes go too.
Replacement on re-add is delete-then-insert, not ``upsert``: Milvus Lite's upsert merged the old
row's dynamic fields into the new one in our tests, which would keep stale metadata alive.

Encryption: FAISS files are sealed with the lake key; Milvus stores what it is given. A Milvus
index opened with a cipher says ``"encrypted": false`` in :meth:`describe` and logs a warning once:
at-rest protection is then the Milvus deployment's (encrypted volumes / object storage).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from visionlake.crypto import LakeCipher
from visionlake.index.base import Hit, Metric, VectorIndex, Where, as_ids

log = logging.getLogger(__name__)

#: Rows per insert/get call (keeps gRPC messages well under Milvus' 64 MB default).
BATCH = 5_000
#: Largest top-k Milvus accepts in one search.
MAX_TOPK = 16_384
#: HNSW build parameters (Milvus' recommended defaults for 128-d face templates).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
_warned_plaintext = False
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def parse_location(location: str) -> tuple[str, bool]:
    """``(uri for MilvusClient, is_lite)`` from a visionlake index location."""
    loc = str(location)
    if loc.startswith("milvus-lite:"):
        path = loc[len("milvus-lite:") :]
        if path.startswith("//"):
            path = path[2:]
        return str(Path(path).expanduser().resolve()), True
    if loc.startswith("milvus://"):
        return "http://" + loc[len("milvus://") :], False
    if loc.startswith(("http://", "https://")):
        return loc, False
    if loc.endswith(".db"):
        return str(Path(loc).expanduser().resolve()), True
    raise ValueError(f"not a Milvus location: {loc!r} (use milvus://HOST:PORT or milvus-lite:/path/file.db)")


def collection_name(name: str) -> str:
    """A valid Milvus collection name (letters, digits, underscores; starts with a letter or _)."""
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not clean or not (clean[0].isalpha() or clean[0] == "_"):
        clean = "vl_" + clean
    return clean[:255]


def _client(uri: str, is_lite: bool) -> Any:
    """One client per URI per process: Milvus Lite serves a file from one embedded server."""
    from pymilvus import MilvusClient

    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            if is_lite:
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
                client = MilvusClient(uri)
            else:
                token = os.environ.get("VISIONLAKE_MILVUS_TOKEN", "")
                client = MilvusClient(uri, token=token)
            _clients[uri] = client
        return client


def where_expression(where: Where | None) -> str:
    """Translate ``{field: value | [values]}`` into a Milvus boolean expression on ``mkey``.

    Values compare as strings (as the FAISS backend does); an empty list matches nothing.
    """
    if not where:
        return ""
    clauses = []
    for key, want in where.items():
        values = list(want) if isinstance(want, list | tuple | set | frozenset) else [want]
        if not values:
            return "id < -9223372036854775807"  # an empty alternative: nothing matches
        ref = f"mkey[{json.dumps(str(key))}]"
        alts = " or ".join(f"{ref} == {json.dumps(str(v))}" for v in values)
        clauses.append(f"({alts})")
    return " and ".join(clauses)


class MilvusIndex(VectorIndex):
    """A :class:`VectorIndex` stored in one Milvus collection."""

    def __init__(
        self,
        location: str,
        dim: int,
        metric: Metric = "cosine",
        collection: str = "default",
        cipher: LakeCipher | None = None,
        index_type: str | None = None,
        ef: int | None = None,
    ) -> None:
        global _warned_plaintext
        if metric not in ("cosine", "l2"):
            raise ValueError(f"unknown metric {metric!r}; choose cosine or l2")
        self.location = str(location)
        self.uri, self.is_lite = parse_location(self.location)
        self.dim = int(dim)
        self.metric = metric
        self.name = collection_name(collection)
        self.index_type = (index_type or os.environ.get("VISIONLAKE_MILVUS_INDEX", "HNSW")).upper()
        self.ef = ef
        self.cipher_requested = cipher is not None
        if cipher is not None and not _warned_plaintext:
            _warned_plaintext = True
            log.warning("Milvus stores vectors as given: the lake key does not encrypt them; rely on the "
                        "deployment's encryption at rest (%s)", self.location)
        try:
            self.client = _client(self.uri, self.is_lite)
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ValueError("the Milvus backend needs pymilvus (pip install 'visionlake[milvus]')") from exc
        self._ensure_collection()

    # ------------------------------------------------------------------ setup
    @property
    def _milvus_metric(self) -> str:
        return "COSINE" if self.metric == "cosine" else "L2"

    def _ensure_collection(self) -> None:
        from pymilvus import DataType, MilvusClient

        c = self.client
        if c.has_collection(self.name):
            desc = c.describe_collection(self.name)
            have = next((f for f in desc["fields"] if f["name"] == "vector"), None)
            have_dim = int((have or {}).get("params", {}).get("dim", -1))
            if have_dim != self.dim:
                raise ValueError(
                    f"Milvus collection {self.name!r} holds vectors of dimension {have_dim}, not {self.dim}"
                )
            try:
                idx = c.describe_index(self.name, "vector")
                have_metric = str(idx.get("metric_type", self._milvus_metric)).upper()
                if have_metric != self._milvus_metric:
                    raise ValueError(f"Milvus collection {self.name!r} uses metric {have_metric}, "
                                     f"not {self._milvus_metric}")
                self.index_type = str(idx.get("index_type", self.index_type)).upper()
            except ValueError:
                raise
            except Exception:  # noqa: BLE001 - describe_index is optional information
                pass
            c.load_collection(self.name)
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        schema.add_field("meta", DataType.JSON, nullable=True)
        schema.add_field("mkey", DataType.JSON, nullable=True)
        params = c.prepare_index_params()
        if self.index_type == "HNSW":
            params.add_index("vector", index_type="HNSW", metric_type=self._milvus_metric,
                             params={"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION})
        else:
            params.add_index("vector", index_type=self.index_type, metric_type=self._milvus_metric)
        c.create_collection(self.name, schema=schema, index_params=params, consistency_level="Strong")
        c.load_collection(self.name)

    # ------------------------------------------------------------------ interface
    def add(
        self,
        ids: Sequence[int] | np.ndarray,
        vectors: np.ndarray,
        metadata: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        ids_arr, vecs = self._batch(ids, vectors, metadata)
        if len(ids_arr) == 0:
            return
        # the last occurrence of a repeated id wins, as in FAISS (remove, then add)
        last = {int(i): k for k, i in enumerate(ids_arr.tolist())}
        keep = sorted(last.values())
        self._delete(list(last))
        for start in range(0, len(keep), BATCH):
            rows = []
            for k in keep[start : start + BATCH]:
                meta = dict(metadata[k]) if metadata is not None and metadata[k] is not None else None
                rows.append({
                    "id": int(ids_arr[k]),
                    "vector": vecs[k].tolist(),
                    "meta": meta,
                    "mkey": None if meta is None else {str(a): str(b) for a, b in meta.items()},
                })
            self.client.insert(self.name, rows)

    def remove(self, ids: Sequence[int] | np.ndarray) -> int:
        ids_list = sorted(set(as_ids(ids).tolist()))
        if not ids_list:
            return 0
        present = self._present(ids_list)
        self._delete(present)
        return len(present)

    def search(self, queries: np.ndarray, k: int = 10, where: Where | None = None) -> list[list[Hit]]:
        q = self._prep(queries)
        if len(q) == 0:
            return []
        if k <= 0 or self.count() == 0:
            return [[] for _ in range(len(q))]
        limit = min(int(k), MAX_TOPK)
        params: dict[str, Any] = {"metric_type": self._milvus_metric}
        if self.index_type == "HNSW":
            params["params"] = {"ef": max(self.ef or 64, limit)}
        res = self.client.search(
            self.name, data=[row.tolist() for row in q], limit=limit, filter=where_expression(where),
            output_fields=["id"], search_params=params, anns_field="vector",
        )
        out = []
        for hits in res:
            row = []
            for h in hits:
                d = float(h["distance"])
                # Milvus L2 returns squared distances; the interface promises Euclidean ones
                score = d if self.metric == "cosine" else float(np.sqrt(max(d, 0.0)))
                row.append(Hit(int(h["id"]), score))
            row.sort(key=(lambda h: -h.score) if self.metric == "cosine" else (lambda h: h.score))
            out.append(row)
        return out

    def count(self) -> int:
        res = self.client.query(self.name, filter="", output_fields=["count(*)"])
        return int(res[0]["count(*)"]) if res else 0

    def ids(self) -> np.ndarray:
        out: list[int] = []
        pym_log = logging.getLogger("pymilvus")
        level = pym_log.level
        pym_log.setLevel(logging.ERROR)  # Milvus Lite has no server MVCC timestamp; harmless warning
        try:
            it = self.client.query_iterator(self.name, batch_size=10_000, filter="", output_fields=["id"])
            try:
                while True:
                    batch = it.next()
                    if not batch:
                        break
                    out.extend(int(r["id"]) for r in batch)
            finally:
                it.close()
        finally:
            pym_log.setLevel(level)
        return np.array(sorted(out), dtype=np.int64)

    def reconstruct(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored vectors for ``ids`` in the given order (normalised for cosine, as FAISS returns them)."""
        ids_arr = as_ids(ids)
        rows = self._get(ids_arr.tolist(), ["vector"])
        missing = [i for i in ids_arr.tolist() if i not in rows]
        if missing:
            raise KeyError(f"ids not in the index: {missing[:10]}")
        if len(ids_arr) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray([rows[i]["vector"] for i in ids_arr.tolist()], dtype=np.float32)

    def metadata(self, id_: int) -> dict[str, Any] | None:
        """Metadata stored with ``id_`` (None when absent or stored without)."""
        row = self._get([int(id_)], ["meta"]).get(int(id_))
        return None if row is None else row.get("meta")

    def save(self) -> None:
        """Seal the growing segments to storage and request a compaction (physical erasure)."""
        self.client.flush(self.name)
        try:
            self.client.compact(self.name)
        except Exception as exc:  # noqa: BLE001 - compaction is best-effort; deletes are already masked
            log.info("Milvus compaction request failed for %s: %s", self.name, exc)

    def compact(self, timeout_s: float = 600.0) -> str:
        """Flush, compact and wait until Milvus reports the compaction finished; returns its state.

        Erasure calls this so deleted vectors leave the segment files, not only the search results.
        Milvus Lite accepts the call but keeps the bytes (measured with milvus-lite 3.2: deleted
        vectors stay in the data and HNSW files after a completed compaction), so erasure on Lite
        uses :meth:`reset` and a rebuild instead.
        """
        import time

        self.client.flush(self.name)
        job = self.client.compact(self.name)
        deadline = time.monotonic() + timeout_s
        state = "unknown"
        while time.monotonic() < deadline:
            state = str(self.client.get_compaction_state(job))
            if state.lower() in ("completed", "compactionstatecompleted"):
                return "completed"
            time.sleep(0.5)
        return state

    def reset(self) -> None:
        """Drop the collection and create it again, empty: the only physical delete Milvus Lite does."""
        self.drop()
        self._ensure_collection()

    def describe(self) -> dict[str, Any]:
        size = 0
        if self.is_lite and Path(self.uri).exists():
            p = Path(self.uri)
            size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        info: dict[str, Any] = {
            "engine": "milvus-lite" if self.is_lite else "milvus",
            "location": self.location if self.is_lite else self.uri,
            "collection": self.name,
            "kind": self.index_type.lower(),
            "dim": self.dim,
            "metric": self.metric,
            "count": self.count(),
            "bytes_on_disk": size,
            "encrypted": False,
        }
        if self.index_type == "HNSW":
            info.update({"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "ef": self.ef or 64})
        if self.cipher_requested:
            info["note"] = "vectors are not encrypted by the lake key; Milvus' own at-rest protection applies"
        return info

    def drop(self) -> None:
        """Delete the whole collection (used by tests and by collection deletion)."""
        if self.client.has_collection(self.name):
            self.client.drop_collection(self.name)

    def close(self) -> None:
        """Milvus clients are shared per URI within the process; nothing to release per index."""

    # ------------------------------------------------------------------ internals
    def _delete(self, ids: list[int]) -> None:
        for start in range(0, len(ids), BATCH):
            part = ids[start : start + BATCH]
            if part:
                self.client.delete(self.name, ids=part)

    def _get(self, ids: list[int], fields: list[str]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH):
            part = ids[start : start + BATCH]
            if part:
                for r in self.client.get(self.name, ids=part, output_fields=["id", *fields]):
                    out[int(r["id"])] = r
        return out

    def _present(self, ids: list[int]) -> list[int]:
        found: list[int] = []
        for start in range(0, len(ids), BATCH):
            part = ids[start : start + BATCH]
            rows = self.client.query(self.name, filter=f"id in {part}", output_fields=["id"])
            found.extend(int(r["id"]) for r in rows)
        return found


__all__ = ["MilvusIndex", "collection_name", "parse_location", "where_expression"]


def existing_dim(location: str, collection: str) -> int | None:
    """Dimension of an existing Milvus collection, or None when it does not exist (no side effects)."""
    uri, is_lite = parse_location(location)
    client = _client(uri, is_lite)
    name = collection_name(collection)
    if not client.has_collection(name):
        return None
    desc = client.describe_collection(name)
    field = next((f for f in desc["fields"] if f["name"] == "vector"), None)
    return int((field or {}).get("params", {}).get("dim", 0)) or None
