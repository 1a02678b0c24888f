"""Python calls and thread CPU per request of the two hot routes (identify by embedding, fashion search).

Load-independent numbers for comparing two versions of the service on a shared machine, where wall
latency is noise: the bench lake of ``visionlake bench api`` (:func:`visionlake.bench.api.build_lake`)
is built in a temporary folder, the app is driven in-process through its ASGI interface (the HTTP
parser is not part of what is measured), and each route is called ``--requests`` times after a
warm-up; cProfile counts the calls, ``time.thread_time`` the CPU of the loop thread (warm queries run
inline on the loop, so that is all of their work).

    PYTHONPATH=$PWD python scripts/measure_api_calls.py --faces 20000 --requests 300 --out calls.json
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

_TOP = 0  # --top: print the profile's N most expensive functions
_SORT = "tottime"


async def _call(app: Any, key: str, path: str, body: bytes) -> tuple[int, bytes]:
    """One POST through the ASGI app; returns status and body."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"authorization", f"Bearer {key}".encode()),
                         (b"content-length", str(len(body)).encode())]}
    sent = False
    out: dict[str, Any] = {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        elif msg["type"] == "http.response.body":
            out["body"] += msg.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["body"]


async def _measure(app: Any, key: str, requests: list[tuple[str, bytes]], n: int) -> dict[str, Any]:
    for path, body in requests[:5]:  # warm-up: index, names, text model
        status, text = await _call(app, key, path, body)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {text[:300]!r}")
    prof = cProfile.Profile()
    t0 = time.thread_time()
    prof.enable()
    for i in range(n):
        path, body = requests[i % len(requests)]
        await _call(app, key, path, body)
    prof.disable()
    cpu = time.thread_time() - t0
    stats = pstats.Stats(prof)
    if _TOP:
        stats.sort_stats(_SORT).print_stats(_TOP)
    # CPU again without the profiler (it inflates the time of every call), in blocks of 25 requests:
    # on a shared machine the quietest blocks (min) say most about the code, the median about the day
    blocks = []
    for b in range(0, n, 25):
        t0 = time.thread_time()
        for i in range(b, min(n, b + 25)):
            path, body = requests[i % len(requests)]
            await _call(app, key, path, body)
        blocks.append(1000 * (time.thread_time() - t0) / (min(n, b + 25) - b))
    return {"python_calls_per_request": round(stats.total_calls / n, 1),
            "cpu_ms_per_request_min_block": round(min(blocks), 3),
            "cpu_ms_per_request_median_block": round(statistics.median(blocks), 3),
            "cpu_ms_per_request_profiled": round(1000 * cpu / n, 3), "requests": n}


def _best_us(fn: Any, number: int = 200, repeat: int = 15) -> float:
    """Microseconds per call of ``fn``: the best of ``repeat`` timings (robust to a busy machine)."""
    import timeit

    return round(1e6 * min(timeit.repeat(fn, number=number, repeat=repeat)) / number, 1)


def _micro(lake_root: Path) -> dict[str, Any]:
    """The two steps this branch changed, timed alone against what they replace (best of repeats,
    so other load on the machine hardly moves them); needs the branch's code (``identify_out``)."""
    import numpy as np
    from pydantic import TypeAdapter
    from pydantic_core import to_json

    from visionlake.fashion.search import _HIT_ROWS, SearchResult
    from visionlake.lake import Lake
    from visionlake.service.routes import faces, fashion

    out = {"collection": "gallery", "threshold": 0.5, "probe_kept": False, "faces": [
        {"identity": "person-000001", "best_score": 0.91, "matches": [
            {"person": f"person-{i:06d}", "person_id": i, "score": np.float32(0.9 - i / 100), "face_id": 10 * i}
            for i in range(1, 6)]}]}
    ident = TypeAdapter(faces.IdentifyOut)  # what FastAPI's response field does: validate, then dump JSON
    results = [SearchResult(1_000_000 + i, round(float(0.9 - i / 100), 5), f"synthetic/{i}.jpg", None,
                            {"season": "Summer", "year": "2012"}) for i in range(24)]
    search = TypeAdapter(fashion.SearchOut)
    lake = Lake(lake_root)
    ids = list(range(1_000_000, 1_000_024))

    def core_rows() -> Any:
        with lake.engine.connect() as conn:
            return {r.id: (r.path, r.thumbnail, r.meta) for r in conn.execute(_HIT_ROWS, {"ids": ids})}

    from visionlake.fashion.search import hit_rows

    try:
        return {
            "identify_answer_generic_us": _best_us(lambda: ident.dump_json(ident.validate_python(out))),
            "identify_answer_hot_us": _best_us(lambda: to_json(faces.identify_out(out))),
            "search_answer_generic_us": _best_us(lambda: search.dump_json(search.validate_python(
                {"collection": "looks", "query": "q", "results": fashion._hits("looks", results)}))),
            "search_answer_hot_us": _best_us(lambda: to_json(fashion.search_out("looks", "q", results))),
            "search_rows_core_us": _best_us(core_rows),
            "search_rows_driver_us": _best_us(lambda: hit_rows(lake, ids)),
        }
    finally:
        lake.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--label", default="")
    ap.add_argument("--top", type=int, default=0, help="print the N functions with the most own time")
    ap.add_argument("--micro", action="store_true", help="also time the changed steps alone (branch code)")
    args = ap.parse_args()
    global _TOP
    _TOP = args.top

    from visionlake.bench.api import _search_body, build_lake
    from visionlake.service.app import create_app
    from visionlake.service.limits import ServiceLimits

    with tempfile.TemporaryDirectory() as tmp:
        setup = build_lake(Path(tmp), args.faces, log=lambda *_: None)
        app = create_app(Path(tmp) / "lake", limits=ServiceLimits(rate_per_s=1e6, burst=1e6), job_workers=0)
        ident = [("/collections/gallery/faces/identify-embedding",
                  json.dumps({"embeddings": [[float(v) for v in setup["probes"][i]]], "top": 5,
                              "threshold": 0.5}).encode()) for i in range(50)]
        search = [("/collections/looks/fashion/search", json.dumps(_search_body(setup, i)).encode())
                  for i in range(50)]

        async def run() -> dict[str, Any]:
            async with app.router.lifespan_context(app):
                return {"identify_embedding": await _measure(app, setup["key"], ident, args.requests),
                        "fashion_search": await _measure(app, setup["key"], search, args.requests)}

        result = {"label": args.label, "faces": args.faces, "text_search": setup["text_search"],
                  **asyncio.run(run())}
        if args.micro:
            result["micro"] = _micro(Path(tmp) / "lake")
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
