"""CPU seconds per image of an ingest, by stage: where the time goes besides the model.

Why: the set-up's products ingest ran at ~21 images/s while the backbone alone embeds ~97/s; this
attributes the CPU of one in-process ingest (``workers=0``, so every stage is in this process and
``time.process_time`` counts ONNX Runtime's threads too) to read/decode/hash, thumbnail, colour
(person mask apart), the tagger (backbone), the pickling a pool would add, and the main-process
writer. Run it on a folder of a few hundred photos into a throwaway lake; compare runs in the same
load conditions (it prints the load average). Example::

    python scripts/measure_ingest_stages.py SUBSET_DIR /tmp/lake --meta styles.csv --ort-threads 1
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

T: dict[str, float] = defaultdict(float)


def _timed(owner: Any, name: str, key: str) -> None:
    """Replace ``owner.name`` by a wrapper adding its process CPU time to ``T[key]``."""
    f: Callable[..., Any] = getattr(owner, name)

    def wrapper(*a: Any, **k: Any) -> Any:
        t = time.process_time()
        try:
            return f(*a, **k)
        finally:
            T[key] += time.process_time() - t

    setattr(owner, name, wrapper)
    T[key] += 0.0  # printed in the order the stages were registered


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source")
    ap.add_argument("lake")
    ap.add_argument("--meta", default=None)
    ap.add_argument("--collection", default="products")
    ap.add_argument("--ort-threads", type=int, default=1, help="ONNX Runtime threads (a pool worker's share)")
    args = ap.parse_args()
    os.environ["VISIONLAKE_WORKERS"] = str(max(1, (os.cpu_count() or 1) // max(1, args.ort_threads)))

    t0 = time.process_time()
    mod = importlib.import_module
    pipeline, worker, writer = (mod(f"visionlake.ingest.{m}") for m in ("pipeline", "worker", "writer"))
    imageio, thumbnail = mod("visionlake.imageio"), mod("visionlake.analysers.thumbnail")
    fa, colour, person_mask, backbone = (mod(f"visionlake.fashion.{m}")
                                         for m in ("analyser", "colour", "person_mask", "backbone"))
    from visionlake.lake import Lake
    T["imports"] += time.process_time() - t0

    T["pickle round trip (a pool's cost)"] += 0.0
    _timed(worker, "validate", "read, decode, sha256, phash")
    _timed(imageio, "perceptual_hash", "  of which phash")
    _timed(worker.Worker, "known_hashes", "known-hash query")
    _timed(thumbnail.ThumbnailAnalyser, "analyse", "thumbnail")
    _timed(fa.ColourAnalyser, "analyse", "colour")
    _timed(colour, "garment_pixels", "  of which garment pixels")
    _timed(person_mask.PersonMasker, "region", "    of which person mask")
    _timed(fa.TaggerAnalyser, "analyse", "tagger (backbone)")
    _timed(backbone.BackbonePreprocess, "__call__", "  of which preprocessing")
    _timed(writer.CatalogWriter, "write", "writer (main process)")
    _timed(fa.TaggerAnalyser, "persist", "  of which tagger.persist")
    _timed(fa.ColourAnalyser, "persist", "  of which colour.persist")
    _timed(writer.CatalogWriter, "finalize", "finalize (index save)")
    process = worker.Worker.process

    def process_and_pickle(self: Any, items: list[Any]) -> list[Any]:
        out = process(self, items)
        t = time.process_time()
        blob = pickle.dumps(out)
        pickle.loads(blob)
        T["pickle round trip (a pool's cost)"] += time.process_time() - t
        T["_bytes"] += len(blob)
        return out

    worker.Worker.process = process_and_pickle
    lake = Lake(args.lake)
    if args.collection not in {c.name for c in lake.collections()}:
        lake.create_collection(args.collection, "fashion")
    load0 = os.getloadavg()[0]
    t, w = time.process_time(), time.perf_counter()
    rep = pipeline.ingest(lake, args.source, args.collection, meta=args.meta, workers=0)
    cpu, wall = time.process_time() - t, time.perf_counter() - w
    n = max(1, rep["seen"])
    stages = {k.strip(): round(1000 * v / n, 2) for k, v in T.items() if not k.startswith("_")}
    print(json.dumps({"images": rep["seen"], "cpu_ms_per_image": round(1000 * cpu / n, 1), "wall_s": round(wall, 1),
                      "ort_threads": args.ort_threads, "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)],
                      "pickled_kb_per_image": round(T["_bytes"] / n / 1024, 1), "cpu_ms_per_image_by_stage": stages},
                     indent=1))


if __name__ == "__main__":
    main()
