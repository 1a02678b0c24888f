"""Request metrics in Prometheus text format: counts by route template and status, latency histograms.

Labels use the route template (``/collections/{collection}/people``), never the concrete path, so
metrics do not reveal collection or person names and their cardinality stays bounded.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Thread-safe counters (one per process)."""

    def __init__(self) -> None:
        self.started = time.time()
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.hist: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.in_flight = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            h = self.hist[(method, route)]
            for i, b in enumerate(BUCKETS):
                if seconds <= b:
                    h[i] += 1
            h[-1] += 1
            self.sums[(method, route)] += seconds

    def render(self, extra: dict[str, float] | None = None) -> str:
        """Prometheus exposition format 0.0.4."""
        lines = [
            "# HELP visionlake_requests_total HTTP requests by method, route template and status.",
            "# TYPE visionlake_requests_total counter",
        ]
        with self._lock:
            for (m, r, s), n in sorted(self.requests.items()):
                lines.append(f'visionlake_requests_total{{method="{m}",route="{_esc(r)}",status="{s}"}} {n}')
            lines += ["# HELP visionlake_request_seconds Request latency.",
                      "# TYPE visionlake_request_seconds histogram"]
            for (m, r), h in sorted(self.hist.items()):
                lab = f'method="{m}",route="{_esc(r)}"'
                for b, n in zip(BUCKETS, h, strict=False):
                    lines.append(f'visionlake_request_seconds_bucket{{{lab},le="{b}"}} {n}')
                lines.append(f'visionlake_request_seconds_bucket{{{lab},le="+Inf"}} {h[-1]}')
                lines.append(f"visionlake_request_seconds_sum{{{lab}}} {self.sums[(m, r)]:.6f}")
                lines.append(f"visionlake_request_seconds_count{{{lab}}} {h[-1]}")
            lines += ["# HELP visionlake_requests_in_flight Requests being handled now.",
                      "# TYPE visionlake_requests_in_flight gauge",
                      f"visionlake_requests_in_flight {self.in_flight}"]
        lines += ["# HELP visionlake_uptime_seconds Seconds since the service started.",
                  "# TYPE visionlake_uptime_seconds gauge",
                  f"visionlake_uptime_seconds {time.time() - self.started:.1f}"]
        for name, value in (extra or {}).items():
            lines += [f"# TYPE visionlake_{name} gauge", f"visionlake_{name} {value}"]
        return "\n".join(lines) + "\n"


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


class MetricsMiddleware:
    """ASGI middleware timing every HTTP request (cheaper than BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500
        m = self.metrics

        async def send_wrapper(msg: Message) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = int(msg["status"])
            await send(msg)

        with m._lock:
            m.in_flight += 1
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            with m._lock:
                m.in_flight -= 1
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or ("static" if scope.get("path", "").startswith("/static")
                                                        else "unmatched")
            m.observe(scope.get("method", "GET"), template, status, time.perf_counter() - t0)
