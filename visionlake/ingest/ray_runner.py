"""Ray runner: the same :class:`~visionlake.ingest.worker.Worker` in Ray actors, the driver stays the writer.

``visionlake ingest SOURCE --collection C --runner ray [--address ray://HEAD:10001]`` gets exactly the
local runner's stages and catalog: read, validate, hash, decode and analyse run in one Ray actor per
worker (analysers are loaded once per actor, as in a pool process); the driver streams chunks from
the source generator, keeps at most ``2 * workers`` chunks in flight, and commits every outcome
through the single :class:`~visionlake.ingest.writer.CatalogWriter`. Resumability is the catalog's:
a chunk is either committed or absent, and a rerun skips committed paths.

Why Ray core actors rather than Ray Data ``map_batches``: a Dataset is built from a *materialised*
list (``from_items``) or from files Ray lists itself, while our source is a generator (folder walk,
manifest, stdin) that must stay streaming at 10^9 paths and must skip already-committed paths in
batches first; and the results have to come back to one writer in the driver anyway. ``ray.wait``
over a bounded set of actor calls gives the same streaming with a hard memory bound and no second
copy of the path list. Actors are restarted by Ray when their process dies (``max_restarts``) and
their lost calls retried (``max_task_retries``); anything still lost is resubmitted by the driver.

On a real cluster the workers need the lake's files and catalog: use a shared filesystem for the
lake root and a server catalog (``catalog_url`` = PostgreSQL), and install visionlake on every node.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from visionlake.errors import BadInput
from visionlake.ingest.worker import Outcome, Worker, WorkerConfig
from visionlake.ingest.writer import CatalogWriter

Chunk = list[tuple[str, dict[str, Any], tuple[str, str] | None]]
#: Times the driver resubmits a chunk whose actor died beyond Ray's own retries.
RESUBMITS = 3


class IngestActor:
    """Ray actor body: one :class:`Worker` per actor process."""

    def __init__(self, config: WorkerConfig) -> None:
        self.worker = Worker(config)

    def process(self, chunk: Chunk) -> list[Outcome]:
        return self.worker.process(chunk)

    def pid(self) -> int:
        """Process id (tests kill it to prove resumption)."""
        return os.getpid()


def run_ray(
    config: WorkerConfig,
    chunks: Iterator[Chunk],
    writer: CatalogWriter,
    progress: Callable[[int], None] | None,
    address: str | None,
    workers: int,
) -> None:
    """Process ``chunks`` on Ray actors and write every outcome through ``writer`` in this process."""
    try:
        import ray
        from ray.exceptions import RayActorError, RayTaskError
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise BadInput("the ray runner needs Ray: pip install 'visionlake[ray]'") from exc

    started_here = False
    if not ray.is_initialized():
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
        started_here = True
    actors: list[Any] = []
    try:
        n_actors = max(1, workers)
        actor_cls = ray.remote(num_cpus=1, max_restarts=2, max_task_retries=2)(IngestActor)
        token = uuid.uuid4().hex[:8]
        actors += [
            actor_cls.options(name=f"visionlake-ingest-{token}-{i}", namespace="visionlake").remote(config)
            for i in range(n_actors)
        ]
        in_flight: dict[Any, tuple[int, Chunk, int]] = {}  # ref -> (actor index, chunk, attempt)
        load = [0] * n_actors
        limit = 2 * n_actors

        def submit(chunk: Chunk, attempt: int) -> None:
            a = min(range(n_actors), key=lambda i: load[i])
            load[a] += 1
            in_flight[actors[a].process.remote(chunk)] = (a, chunk, attempt)

        source_done = False
        while True:
            while not source_done and len(in_flight) < limit:
                chunk = next(chunks, None)
                if chunk is None:
                    source_done = True
                else:
                    submit(chunk, 0)
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                a, chunk, attempt = in_flight.pop(ref)
                load[a] -= 1
                try:
                    outcomes = ray.get(ref)
                except (RayActorError, RayTaskError) as exc:
                    if attempt >= RESUBMITS:
                        raise BadInput(f"ray workers keep failing on a chunk starting {chunk[0][0]}: {exc}") from exc
                    submit(chunk, attempt + 1)
                    continue
                writer.write(outcomes)
                if progress:
                    progress(len(outcomes))
    finally:
        for actor in actors:  # also when the driver is interrupted: no orphaned named actors
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        if started_here:
            ray.shutdown()


__all__ = ["IngestActor", "run_ray"]
