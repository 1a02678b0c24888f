"""Keep the garbage collector's full passes off the request path.

A warm service holds ~200,000 objects for its whole life (modules, routes and schemas, and the
indexes' metadata: a set per person for the ``known``/``person_id`` filters of a 100k-face gallery).
Python's full collection walks all of them: ~190 ms of CPU on the bench machine, during which the
event loop answers nothing, so each one delayed every request in flight; ``bench api`` saw three per
15 s, up to ~490 ms each on the busy machine -- a large part of its p99.

:func:`settle` collects what is garbage now and moves everything still alive out of the collector's
view (``gc.freeze``): those objects are still freed normally when their last reference goes, only
never *scanned* again. The service settles once it has started and after each cold query (the one
that loaded or reloaded an index or a gallery's caches), when what is alive is mostly what will
stay. The collection before the freeze walks only what is not frozen yet (what the load added), so
it costs a pause once per load instead of one per full collection, and nothing leaks.

Only a process that serves does this (:func:`enable`: ``visionlake serve``, its worker factory and
``bench api``); a test process that builds hundreds of apps keeps the ordinary collector.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_enabled = False


def enable(on: bool = True) -> None:
    """Let :func:`settle` work (this process is a server: it lives on with what it loaded)."""
    global _enabled
    _enabled = on


def settle() -> bool:
    """Collect, then freeze what is alive (see the module doc); False when not enabled."""
    if not _enabled:
        return False
    with _lock:
        gc.collect()
        gc.freeze()
    return True


__all__ = ["enable", "settle"]
