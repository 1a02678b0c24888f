"""Named crash points for fault-injection tests: die exactly where a real crash would hurt most.

Every step that writes something durable (a catalog commit, an index save, a file rename) calls
:func:`crash_point` with a stable name. Normally that is one dictionary lookup and nothing happens.
When the environment variable ``VISIONLAKE_CRASH_AT`` names the point, the process kills itself
with ``SIGKILL`` on the spot: no ``finally`` blocks, no atexit handlers, no flushing, exactly like
``kill -9`` or a power cut. Tests then rerun the command and assert that the lake recovers.

Syntax of ``VISIONLAKE_CRASH_AT``: a comma-separated list of ``NAME`` or ``NAME:N``; ``NAME:N``
crashes on the N-th time the point is reached in this process (1-based; ``NAME`` means ``NAME:1``).
Example: ``VISIONLAKE_CRASH_AT=ingest.chunk.committed:3`` dies right after the third chunk commit.

Names in use are listed in :data:`CRASH_POINTS` (a test checks that each is reached in code), so a
renamed point cannot silently stop being tested.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

#: Environment variable read by :func:`crash_point`.
ENV = "VISIONLAKE_CRASH_AT"

#: Every crash point placed in code, with where it sits. Add yours here when you place one.
CRASH_POINTS: dict[str, str] = {
    "ingest.chunk.before_commit": "writer: rows of a chunk added, transaction not yet committed",
    "ingest.chunk.committed": "writer: a chunk's catalog transaction committed, indexes not yet synced",
    "ingest.finalize.before_save": "end of an ingest run: every chunk committed, indexes not yet saved",
    "index.save.data_written": "index save: new index data file written, manifest not yet replaced",
    "index.save.committed": "index save: manifest replaced (the new index is the current one)",
    "enroll.catalog.committed": "enroll: faces/person committed to the catalog, index not yet saved",
    "analyse.chunk.committed": "re-analysis (analyse, switch-pack, fashion upgrade): a chunk's results and done "
                               "markers committed, the next chunk not started",
    "fashion.upgrade.reembedded": "fashion upgrade: every image re-embedded and the stage recorded, old vectors, "
                                  "index, heads and tags not yet dealt with",
    "fashion.upgrade.head_retrained": "fashion upgrade: one trained head retrained on the new vectors, the "
                                      "others and the tags not yet",
    "fashion.train.head_saved": "fashion train (and fashion upgrade's retraining): the head file saved, its "
                                "catalog row not yet written",
    "service.job.chunk": "service ingest job: between two chunks of a running job",
    "forget.before_commit": "forget: journal written and rows deleted in the transaction, not committed",
    "forget.after_catalog": "forget: journal and catalog deletion committed, index and files untouched",
    "forget.after_index": "forget: face ids removed from the index and saved, files not yet deleted",
    "forget.mid_files": "forget: the first of the person's files deleted, the others not",
    "forget.after_files": "forget: all files deleted, engine not yet compacted",
    "forget.after_engine": "forget: engine compacted (Milvus) or nothing to do (FAISS), journal still pending",
    "forget.before_close": "forget: erasure verified, journal row not yet deleted",
    "rotate.new_key_written": "rotate-lake-key: keys/lake.key.new written, nothing re-encrypted yet",
    "rotate.templates_batch": "rotate-lake-key: one batch of templates re-encrypted and committed",
    "rotate.index_file": "rotate-lake-key: one encrypted index saved under the new key",
    "rotate.fingerprint_recorded": "rotate-lake-key: new fingerprint committed, lake.key not yet replaced",
}

_hits: Counter[str] = Counter()
_plan_cache: tuple[str, dict[str, int]] | None = None


def _plan() -> dict[str, int]:
    """Parse ``VISIONLAKE_CRASH_AT`` once per distinct value (tests change it between runs)."""
    global _plan_cache
    raw = os.environ.get(ENV, "")
    if _plan_cache is not None and _plan_cache[0] == raw:
        return _plan_cache[1]
    plan: dict[str, int] = {}
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, count = part.partition(":")
        try:
            plan[name.strip()] = max(1, int(count)) if count else 1
        except ValueError:
            plan[name.strip()] = 1
    _plan_cache = (raw, plan)
    return plan


def crash_point(name: str) -> None:
    """Kill this process with SIGKILL if ``VISIONLAKE_CRASH_AT`` selects ``name`` (no-op otherwise).

    Why SIGKILL and not an exception: an exception runs cleanup code (context managers roll back,
    pools join) and so tests nothing about what a real crash leaves on disk.
    """
    plan = _plan()
    if not plan or name not in plan:
        return
    _hits[name] += 1
    if _hits[name] >= plan[name]:
        os.kill(os.getpid(), signal.SIGKILL)


def armed() -> bool:
    """True when some crash point is selected (lets slow paths skip extra work otherwise)."""
    return bool(_plan())
