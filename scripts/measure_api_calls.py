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
import tempfile
import time
from pathlib import Path
from typing import Any

_TOP = 0  # --top: print the profile's N most expensive functions


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
        stats.sort_stats("tottime").print_stats(_TOP)
    # CPU again without the profiler (it inflates the time of every call)
    t0 = time.thread_time()
    for i in range(n):
        path, body = requests[i % len(requests)]
        await _call(app, key, path, body)
    cpu_plain = time.thread_time() - t0
    return {"python_calls_per_request": round(stats.total_calls / n, 1),
            "cpu_ms_per_request": round(1000 * cpu_plain / n, 3),
            "cpu_ms_per_request_profiled": round(1000 * cpu / n, 3), "requests": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--label", default="")
    ap.add_argument("--top", type=int, default=0, help="print the N functions with the most own time")
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
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
