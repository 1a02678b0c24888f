"""``visionlake bench api``: load test of the service, identify and fashion search under 50 clients.

Setup (not timed): a temporary lake with a faces gallery of ``--faces`` synthetic 128-d templates
(``--faces / 4`` people, four faces each, inserted through the faces catalog tables with encrypted
templates and the faces index), and a fashion collection of 20,000 synthetic 32-d image embeddings
with metadata. The server is ``create_app`` under uvicorn in a child process on 127.0.0.1 only
(``--workers N``: N uvicorn worker processes, for measurement; ingestion jobs are not coordinated
across workers). The load generator is a third process with a minimal keep-alive HTTP/1.1 client
(``--clients`` connections, closed loop, half per endpoint): it shares the two cores with the server,
so it is made cheap, and its CPU time is reported (``client.cpu_ms_per_request``) next to the
server's (``server.cpu_ms_per_request``, with psutil). Each identify call sends one pre-computed probe
template (a known person's centre plus noise, so top-1 accuracy is reported too); each search call
is a fashion text search through the tiny ONNX test model when the ``onnx`` package is present (else
a search by image id) with a metadata filter on half the calls. Output: p50/p95/p99 latency,
throughput and errors per endpoint, and the machine's load average (``uptime``) before and after:
other work on the machine competes for the same cores. The server's CPU per request is counted after
a short warm-up (index, gallery and model loading are reported apart, ``server.warmup_cpu_s``).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DIM = 128
FASHION_N = 20_000
SEASONS = ["Summer", "Winter", "Fall", "Spring"]
WORDS = ["red", "green", "blue", "white", "black", "yellow"]


def start_server(lake_root: Path, workers: int = 1) -> tuple[subprocess.Popen, int]:
    """The service on a free loopback port in its own process, returned once ``/health`` answers
    (at most ~60 s); the caller terminates the process."""
    import httpx

    port = _free_port()
    code = f"from visionlake.bench.api import _serve; _serve({str(lake_root)!r}, {port}, {workers})"
    proc = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_lake(root: Path, n_faces: int, log: Any = print) -> dict[str, Any]:
    """Create the bench lake; returns probes, the key and what the search clients should send."""
    from sqlalchemy import insert

    from visionlake.catalog.models import Image
    from visionlake.faces.models import Face, Person
    from visionlake.faces.sync import face_index, index_meta, seal
    from visionlake.fashion.models import FashionEmbedding
    from visionlake.lake import Lake
    from visionlake.service.auth import create_key

    t0 = time.perf_counter()
    lake = Lake(root / "lake")
    col = lake.create_collection("gallery", "faces")
    rng = np.random.default_rng(0)
    n_people = max(1, n_faces // 4)
    centres = rng.standard_normal((n_people, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    owner = np.arange(n_faces) % n_people
    vecs = centres[owner] + 0.35 / np.sqrt(DIM) * rng.standard_normal((n_faces, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    with lake.session() as s:
        s.execute(insert(Person), [{"id": i + 1, "collection_id": col.id, "name": f"person-{i:06d}",
                                    "consent": "synthetic bench"} for i in range(n_people)])
        s.execute(insert(Image), [{"id": 1, "collection_id": col.id, "sha256": "0" * 64, "path": "synthetic",
                                   "meta": {"source": "bench"}}])
        step = 20_000
        for a in range(0, n_faces, step):
            s.execute(insert(Face), [
                {"id": i + 1, "collection_id": col.id, "image_id": 1, "box": [0, 0, 100, 100], "landmarks": [],
                 "score": 1.0, "quality": 1.0, "embedding": seal(lake.cipher, vecs[i]), "pack": "bench-synthetic-128",
                 "person_id": int(owner[i]) + 1} for i in range(a, min(n_faces, a + step))])
    index = face_index(lake, "gallery", DIM)
    ids = np.arange(1, n_faces + 1, dtype=np.int64)
    index.add(ids, vecs, [index_meta(int(o) + 1) for o in owner])
    index.save()
    log(f"faces gallery: {n_faces} faces of {n_people} people in {time.perf_counter() - t0:.1f} s "
        f"({index.describe()['kind']})")

    # fashion: synthetic embeddings in the tiny model's 32-d space, so text queries are comparable
    model_dir = None
    try:  # the tiny test model is built with the onnx package (a dev dependency)
        import onnx  # noqa: F401
    except ImportError:
        onnx = None
    if onnx is not None:
        from visionlake.fashion.tiny_model import build_tiny_model

        model_dir = str(build_tiny_model(root / "tiny-model"))
    settings = {"tagger_options": {"model": model_dir}} if model_dir else None
    fcol = lake.create_collection("looks", "fashion", settings=settings)
    fvecs = rng.standard_normal((FASHION_N, 32)).astype(np.float32)
    metas = [{"season": SEASONS[i % 4], "year": str(2010 + i % 8)} for i in range(FASHION_N)]
    with lake.session() as s:
        s.execute(insert(Image), [{"id": 1_000_000 + i, "collection_id": fcol.id, "sha256": f"{i:064d}",
                                   "path": f"synthetic/{i}.jpg", "meta": metas[i]} for i in range(FASHION_N)])
        # the catalog is the source of truth for every index: without these rows the lake's resync on
        # open empties the fashion index and every search would run against nothing
        s.execute(insert(FashionEmbedding), [{"image_id": 1_000_000 + i, "model": "bench-synthetic-32", "dim": 32,
                                              "vector": fvecs[i].tobytes()} for i in range(FASHION_N)])
    findex = lake.index("looks", "fashion", 32, "cosine")
    findex.add(np.arange(1_000_000, 1_000_000 + FASHION_N), fvecs, metas)
    findex.save()
    key = create_key(lake, "viewer", name="bench", rate_per_s=1e6)["key"]
    probe_owner = rng.integers(0, n_people, 2000)
    probes = centres[probe_owner] + 0.35 / np.sqrt(DIM) * rng.standard_normal((2000, DIM)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    lake.close()
    return {"key": key, "probes": probes, "probe_person": [f"person-{o:06d}" for o in probe_owner],
            "text_search": model_dir is not None, "setup_s": round(time.perf_counter() - t0, 1)}


def _serve(lake_root: str, port: int, workers: int = 1) -> None:
    """Child process: the service on 127.0.0.1 only (``workers`` uvicorn worker processes), with the
    protocol and limits of ``visionlake serve`` (:func:`visionlake.service.server.server_settings`);
    the access log is off (a log line per request measures the terminal, not the service)."""
    import uvicorn

    from visionlake.service import heap
    from visionlake.service.server import server_settings

    heap.enable()  # as `visionlake serve` does
    os.environ["VISIONLAKE_SERVICE_RATE"] = os.environ["VISIONLAKE_SERVICE_BURST"] = "1000000"
    if workers > 1:
        os.environ["VISIONLAKE_LAKE"] = lake_root
        os.environ["VISIONLAKE_SERVE_JOB_WORKERS"] = "0"
        uvicorn.run("visionlake.service.app:app_from_env", factory=True, host="127.0.0.1", port=port,
                    workers=workers, log_level="warning", access_log=False, **server_settings())
        return
    from visionlake.service.app import create_app
    from visionlake.service.limits import ServiceLimits

    app = create_app(lake_root, limits=ServiceLimits(rate_per_s=1e6, burst=1e6), job_workers=0)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, **server_settings())


# ------------------------------------------------------------------------------------- load generator
class _Conn:
    """One keep-alive HTTP/1.1 connection with a minimal client (asyncio streams).

    The load generator shares the two cores with the server, so it must cost as little as possible:
    a general-purpose client (httpx) spends ~1-2 ms of CPU per request on the client side, this one
    a few tens of microseconds (pre-encoded requests, no header objects).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked, close = None, False, False
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            k = k.strip().lower()
            if k == b"content-length":
                length = int(v)
            elif k == b"transfer-encoding":
                chunked = b"chunked" in v.lower()
            elif k == b"connection":
                close = b"close" in v.lower()
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            body = b"".join(p[:-2] for p in parts)
        elif length is not None:
            body = await self.reader.readexactly(length)
        else:
            body = await self.reader.read()
            close = True
        if close:
            await self.close()
        return status, body


def _request_bytes(host: str, port: int, key: str, path: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n").encode() + payload


async def _load(port: int, key: str, setup: dict[str, Any], duration: float, clients: int) -> dict[str, Any]:
    host = "127.0.0.1"
    ident_path = "/collections/gallery/faces/identify-embedding"
    search_path = "/collections/looks/fashion/search"
    # float32 templates need 9 significant digits; pre-encoded so the timed loop only sends bytes
    probes = [_request_bytes(host, port, key, ident_path,
                             {"embeddings": [[float(f"{v:.9g}") for v in p]], "top": 5, "threshold": 0.5})
              for p in setup["probes"]]
    names = setup["probe_person"]
    searches = [_request_bytes(host, port, key, search_path, _search_body(setup, i)) for i in range(48)]
    lat: dict[str, list[float]] = {"identify": [], "search": []}
    errors: dict[str, dict[str, int]] = {"identify": {}, "search": {}}
    correct = [0, 0]
    empty = [0]  # searches that came back with no results (an empty index would pass unnoticed)
    conns = [_Conn(host, port) for _ in range(clients)]
    for c in conns[:2]:  # warm up both endpoints (model load, index load, caches)
        for i in range(3):
            await c.request(probes[i])
            await c.request(searches[i])
    deadline = time.perf_counter() + duration

    async def worker(n: int) -> None:
        kind = "identify" if n % 2 == 0 else "search"
        conn = conns[n]
        i = n
        while time.perf_counter() < deadline:
            i += clients
            t0 = time.perf_counter()
            try:
                if kind == "identify":
                    p = i % len(probes)
                    status, body = await conn.request(probes[p])
                else:
                    status, body = await conn.request(searches[i % len(searches)])
                dt = time.perf_counter() - t0
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors[kind][type(exc).__name__] = errors[kind].get(type(exc).__name__, 0) + 1
                await conn.close()
                continue
            if status != 200:
                errors[kind][str(status)] = errors[kind].get(str(status), 0) + 1
                continue
            lat[kind].append(dt)
            if kind == "identify":
                correct[1] += 1
                correct[0] += json.loads(body)["faces"][0]["identity"] == names[p]
            elif not json.loads(body)["results"]:
                empty[0] += 1

    cpu0, t_start = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(clients)))
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - cpu0
    for c in conns:
        await c.close()
    out: dict[str, Any] = {}
    for kind, xs in lat.items():
        a = np.asarray(xs) * 1000.0
        out[kind] = {
            "requests_ok": len(xs), "errors": sum(errors[kind].values()), "errors_by_kind": errors[kind],
            "throughput_rps": round(len(xs) / wall, 1),
            "p50_ms": round(float(np.percentile(a, 50)), 1) if len(a) else None,
            "p95_ms": round(float(np.percentile(a, 95)), 1) if len(a) else None,
            "p99_ms": round(float(np.percentile(a, 99)), 1) if len(a) else None,
            "max_ms": round(float(a.max()), 1) if len(a) else None,
        }
    out["identify"]["top1_accuracy"] = round(correct[0] / correct[1], 4) if correct[1] else None
    out["search"]["empty_results"] = empty[0]
    total = sum(len(x) for x in lat.values())
    out["wall_s"] = round(wall, 1)
    out["client"] = {"cpu_s": round(cpu, 2), "cpu_ms_per_request": round(1000 * cpu / max(1, total), 3)}
    return out


def _client_main(config_path: str) -> None:
    """Load-generator process: reads its setup from a pickle, prints the results as JSON."""
    import pickle

    with open(config_path, "rb") as fh:
        cfg = pickle.load(fh)
    res = asyncio.run(_load(cfg["port"], cfg["key"], cfg["setup"], cfg["duration"], cfg["clients"]))
    print(json.dumps(res))


async def _warm_up(port: int, setup: dict[str, Any], rounds: int = 3) -> None:
    """A few identify and search calls before the measurement: the first ones load the index, the
    gallery's names and the text model (seconds of CPU, once per server), which is not the
    steady cost per request that ``server.cpu_ms_per_request`` reports (``server.warmup_cpu_s``)."""
    host = "127.0.0.1"
    for i in range(rounds):  # a connection per round: with several workers, each may take one
        conn = _Conn(host, port)
        for path, body in (("/collections/gallery/faces/identify-embedding",
                            {"embeddings": [[float(v) for v in setup["probes"][i]]], "top": 5, "threshold": 0.5}),
                           ("/collections/looks/fashion/search", _search_body(setup, i))):
            status, text = await conn.request(_request_bytes(host, port, setup["key"], path, body))
            if status != 200:
                raise RuntimeError(f"warm-up {path} answered {status}: {text[:300]!r}")
        await conn.close()


def _http_stack() -> str:
    """What parses HTTP in the server (the same choice as ``visionlake serve``)."""
    from visionlake.service.server import server_settings

    settings = server_settings()
    return f"{'httptools' if 'HttpTools' in settings['http'].__name__ else 'h11'} on {settings['loop']}"


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds of a process and its children (the uvicorn workers), or None without psutil."""
    try:
        import psutil

        proc = psutil.Process(pid)
        total = 0.0
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total
    except (ImportError, Exception):  # noqa: BLE001 - the CPU figure is informative only
        return None


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _search_body(setup: dict[str, Any], i: int) -> dict[str, Any]:
    where = {"season": SEASONS[i % 4]} if i % 2 else {}
    if setup["text_search"]:
        return {"text": f"a photo of a {WORDS[i % len(WORDS)]} garment", "where": where, "top": 24}
    return {"image_id": 1_000_000 + (i * 7919) % FASHION_N, "where": where, "top": 24}


def run_api_bench(duration: float = 60.0, clients: int = 50, faces: int = 100_000, workers: int = 1,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the bench lake, serve it on loopback, drive ``clients`` closed-loop clients; the report.

    Server and load generator are separate processes (``python -c``) so that neither one's GIL or
    CPU time is charged to the other; the temporary lake is deleted afterwards.
    """
    import pickle

    with tempfile.TemporaryDirectory(prefix="vl-bench-api-") as tmp:
        setup = build_lake(Path(tmp), faces, log)
        proc, port = start_server(Path(tmp) / "lake", workers)
        try:
            cfg = Path(tmp) / "client.pkl"
            cfg.write_bytes(pickle.dumps({"port": port, "key": setup["key"], "setup": setup,
                                          "duration": duration, "clients": clients}))
            log(f"server up on http://127.0.0.1:{port} ({workers} worker(s)); {clients} clients for {duration:g} s")
            w0 = _cpu_seconds(proc.pid)
            asyncio.run(_warm_up(port, setup, rounds=3 * workers))  # loads indexes, gallery caches, model
            load_before, up_before = os.getloadavg(), _uptime()
            cpu0 = _cpu_seconds(proc.pid)
            gen = f"from visionlake.bench.api import _client_main; _client_main({str(cfg)!r})"
            client = subprocess.run([sys.executable, "-c", gen], capture_output=True, text=True,
                                    timeout=duration + 300)
            cpu1 = _cpu_seconds(proc.pid)
            up_after = _uptime()
            if client.returncode != 0:
                raise RuntimeError(f"load generator failed: {client.stderr[-2000:]}")
            res = json.loads(client.stdout.strip().splitlines()[-1])
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    n = res["identify"]["requests_ok"] + res["search"]["requests_ok"]
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return {
        "bench": "api", "faces": faces, "fashion_images": FASHION_N, "clients": clients, "duration_s": duration,
        "workers": workers,
        "search_kind": "text (tiny ONNX test model)" if setup["text_search"] else "by image id",
        "setup_s": setup["setup_s"], "cpu_count": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "uptime_before": up_before, "uptime_after": up_after,
        **res,
        "server": {"http": _http_stack(),
                   "warmup_cpu_s": None if w0 is None or cpu0 is None else round(cpu0 - w0, 2),
                   "cpu_s": None if server_cpu is None else round(server_cpu, 2),
                   "cpu_ms_per_request": None if server_cpu is None else round(1000 * server_cpu / max(1, n), 3)},
        "target": {"errors": 0, "p99_ms": 250},
        "pass": all(res[k]["errors"] == 0 and (res[k]["p99_ms"] or 1e9) <= 250 for k in ("identify", "search"))
        and res["search"]["empty_results"] == 0,
    }
