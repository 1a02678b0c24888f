"""The single writer: turns worker outcomes into catalog rows, one transaction per chunk.

A chunk's images, their paths and every analyser's results commit together, so a crash (even
``kill -9``) leaves each image either fully recorded or absent; the next run redoes the absent
ones. Content hashes are unique per collection, so an image is never stored twice.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select

from visionlake.analysers import Analyser
from visionlake.catalog.models import Collection, Image, SourcePath
from visionlake.catalog.paths import display_path, safe_text
from visionlake.faults import crash_point
from visionlake.ingest.validate import hamming, phash_bands
from visionlake.ingest.worker import Outcome

if TYPE_CHECKING:
    from visionlake.lake import Lake

#: Two images whose perceptual hashes differ in at most this many bits are near duplicates
#: (resizing and recompression measured 0-2 bits on product photos; distinct products rarely <= 2).
NEAR_DUPLICATE_BITS = 2


class CatalogWriter:
    """Writes outcomes for one collection and keeps the run's counters."""

    def __init__(self, lake: Lake, collection: Collection, run_id: int, analysers: list[Analyser],
                 retry_rejected: bool = False) -> None:
        self.retry_rejected = retry_rejected
        self.failed_by_reason: Counter[str] = Counter()
        self.failed_examples: list[dict[str, str]] = []
        self.lake = lake
        self.collection = collection
        self.run_id = run_id
        self.analysers = {a.name: a for a in analysers}
        self.counts: Counter[str] = Counter()
        self.rejected_by_reason: Counter[str] = Counter()
        self.rejected_examples: list[dict[str, str]] = []

    def write(self, outcomes: list[Outcome]) -> None:
        """Commit one chunk of outcomes atomically."""
        cid = self.collection.id
        with self.lake.session() as s:
            # The session's identity map holds objects weakly: without these references every analyser's
            # ``session.get(Image | Collection, id)`` in ``persist`` was a SELECT (plus an autoflush) per
            # image. Held for the transaction, those lookups are answered from the session (same objects,
            # same values, pending changes included).
            s.info["held"] = [s.get(Collection, cid)]
            hashes = [o.sha256 for o in outcomes if o.sha256]
            existing: dict[str, int] = {}
            if hashes:
                existing = dict(
                    s.execute(
                        select(Image.sha256, Image.id).where(Image.collection_id == cid, Image.sha256.in_(hashes))
                    ).all()
                )
            paths = [o.path for o in outcomes]
            recorded = dict(s.execute(select(SourcePath.path, SourcePath.status).where(
                SourcePath.collection_id == cid, SourcePath.path.in_(paths))).all())
            if self.retry_rejected:
                retry = [p for p, st in recorded.items() if st == "rejected"]
                if retry:  # decided again below; the old verdict goes
                    s.execute(delete(SourcePath).where(SourcePath.collection_id == cid, SourcePath.path.in_(retry)))
                    s.flush()
                recorded = {p: st for p, st in recorded.items() if st != "rejected"}
            done = set(recorded)
            for o in outcomes:
                self.counts["seen"] += 1
                if o.path in done:  # already recorded (a rerun racing a previous write)
                    self.counts["already_done"] += 1
                    continue
                if o.status == "failed":  # we failed, not the file: leave it unrecorded, the next run retries
                    self.counts["failed"] += 1
                    self.failed_by_reason[o.reason or "unknown"] += 1
                    if len(self.failed_examples) < 1000:
                        self.failed_examples.append({"path": display_path(o.path), "reason": o.reason or "",
                                                     "detail": safe_text(o.detail or "")[:200]})
                    continue
                done.add(o.path)
                if o.status == "rejected":
                    s.add(SourcePath(collection_id=cid, path=o.path, status="rejected", reason=o.reason,
                                     detail=safe_text(o.detail or "")[:2000], run_id=self.run_id))
                    self.counts["rejected"] += 1
                    self.rejected_by_reason[o.reason or "unknown"] += 1
                    if len(self.rejected_examples) < 1000:
                        self.rejected_examples.append({"path": display_path(o.path), "reason": o.reason or "",
                                                       "detail": safe_text(o.detail or "")[:200]})
                    continue
                assert o.sha256 is not None
                image_id = existing.get(o.sha256)
                if image_id is not None or o.status == "known":
                    if image_id is None:  # analysed elsewhere in this very chunk: look it up
                        image_id = s.scalar(select(Image.id).where(Image.collection_id == cid,
                                                                   Image.sha256 == o.sha256))
                    if image_id is None:
                        # known to the worker but not committed (another run's partial chunk): redo later
                        self.counts["deferred"] += 1
                        done.discard(o.path)
                        continue
                    s.add(SourcePath(collection_id=cid, path=o.path, image_id=image_id, status="duplicate",
                                     run_id=self.run_id))
                    self.counts["duplicates"] += 1
                    continue
                image_id = self._insert_image(s, o)
                existing[o.sha256] = image_id
                s.add(SourcePath(collection_id=cid, path=o.path, image_id=image_id, status="ingested",
                                 run_id=self.run_id))
                self.counts["ingested"] += 1
                for name, result in o.results.items():
                    analyser = self.analysers.get(name)
                    if analyser is not None:
                        analyser.persist(self.lake, s, self.collection, image_id, result)
            crash_point("ingest.chunk.before_commit")
        crash_point("ingest.chunk.committed")

    def _insert_image(self, s: Any, o: Outcome) -> int:
        near_of = None
        bands = phash_bands(o.phash) if o.phash is not None else (None, None, None, None)
        if o.phash is not None:
            cands = s.execute(
                select(Image.id, Image.phash)
                .where(
                    Image.collection_id == self.collection.id,
                    or_(Image.ph0 == bands[0], Image.ph1 == bands[1], Image.ph2 == bands[2], Image.ph3 == bands[3]),
                )
                .limit(64)
            ).all()
            best = min(((hamming(o.phash, ph), cid) for cid, ph in cands if ph is not None), default=None)
            if best is not None and best[0] <= NEAR_DUPLICATE_BITS:
                near_of = best[1]
                self.counts["near_duplicates"] += 1
        img = Image(
            collection_id=self.collection.id, sha256=o.sha256, path=o.path, bytes=o.nbytes, width=o.width,
            height=o.height, format=o.format, notes=o.notes, phash=o.phash, ph0=bands[0], ph1=bands[1],
            ph2=bands[2], ph3=bands[3], near_duplicate_of=near_of, meta=o.meta,
        )
        s.add(img)
        s.flush()
        s.info.setdefault("held", []).append(img)
        return img.id

    def finalize(self) -> None:
        """Let analysers flush (indexes are saved here)."""
        crash_point("ingest.finalize.before_save")
        for a in self.analysers.values():
            a.finalize(self.lake, self.collection)
