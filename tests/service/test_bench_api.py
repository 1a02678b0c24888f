"""``bench api`` end to end at a tiny size: a real server process, the load generator, the report."""

from __future__ import annotations

import pytest

from visionlake.bench.api import run_api_bench

# a server process, a client process and a lake build: ~15-25 s on 2 cores
pytestmark = pytest.mark.heavy


def test_bench_api_reports_both_endpoints_with_the_service_http_stack():
    lines: list[str] = []
    report = run_api_bench(duration=2.0, clients=4, faces=400, log=lines.append)
    for kind in ("identify", "search"):
        assert report[kind]["requests_ok"] > 0 and report[kind]["errors"] == 0, report[kind]
        assert report[kind]["p99_ms"] is not None
    assert report["identify"]["top1_accuracy"] > 0.9  # probes are known people: the answers are checked
    assert report["search"]["empty_results"] == 0  # a search against an empty index would pass unnoticed
    server = report["server"]
    assert server["http"] == "httptools on asyncio"  # what `visionlake serve` runs
    # loading is counted apart from the steady cost per request
    assert server["warmup_cpu_s"] is not None and server["warmup_cpu_s"] > 0
    assert server["cpu_ms_per_request"] > 0
