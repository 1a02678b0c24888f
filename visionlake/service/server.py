"""Running the app with uvicorn, hardened against slow and half-open clients.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but never a connection whose
request headers (or body) stop arriving: 800 connections that sent half a header were held forever in
an attack run. :class:`GuardedH11Protocol` adds two timers per connection:

* a **header deadline**: the full request head must arrive within ``header_timeout_s`` of its first
  byte (or of the connection opening), however slowly it trickles in;
* a **body idle timeout**: while a request body is being received, a pause longer than
  ``body_idle_timeout_s`` closes the connection.

The time an application takes to answer is not limited here (the app has its own request timeout).
Request heads are limited to ``MAX_HEAD_BYTES`` (h11's incomplete-event limit) and open connections to
``limit_concurrency`` (503 beyond it).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from visionlake.errors import VisionLakeError

log = logging.getLogger("visionlake.service")

HEADER_TIMEOUT_S = 10.0
BODY_IDLE_TIMEOUT_S = 30.0
KEEP_ALIVE_S = 5
MAX_HEAD_BYTES = 64 * 1024
MAX_CONNECTIONS = 2000


class PortInUse(VisionLakeError):
    """The address to listen on is taken (another server runs there)."""

    code = "port_in_use"
    exit_code = 1


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a header deadline and a body idle timeout (see the module doc)."""

    header_timeout_s = HEADER_TIMEOUT_S
    body_idle_timeout_s = BODY_IDLE_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard: asyncio.TimerHandle | None = None
        self._guard_kind: str | None = None
        self._arm("head", self.header_timeout_s)  # a connection that sends nothing at all

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._update_guard()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._update_guard()

    # ---------------------------------------------------------------------------------------------
    def _update_guard(self) -> None:
        if self.transport is None or self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        if state is h11.IDLE:
            pending = bool(self.conn.trailing_data[0])
            if pending:
                if self._guard_kind != "head":  # the deadline runs from the first byte, not the last
                    self._arm("head", self.header_timeout_s)
            elif self._guard_kind == "body":
                self._disarm()
            # nothing buffered: uvicorn's keep-alive timer (or the first "head" deadline) applies
        elif state is h11.SEND_BODY:
            self._arm("body", self.body_idle_timeout_s)  # re-armed by every chunk
        else:  # the request is complete: the application is working on it
            self._disarm()

    def _arm(self, kind: str, delay: float) -> None:
        self._disarm()
        self._guard_kind = kind
        self._guard = self.loop.call_later(delay, self._expire, kind)

    def _disarm(self) -> None:
        guard = getattr(self, "_guard", None)
        if guard is not None:
            guard.cancel()
        self._guard = None
        self._guard_kind = None

    def _expire(self, kind: str) -> None:
        self._guard = None
        self._guard_kind = None
        if self.transport is None or self.transport.is_closing():
            return
        if kind == "head" and self.conn.their_state is not h11.IDLE:
            return  # a request got through meanwhile
        log.info("closing a connection from %s: request %s too slow", self.client, "head" if kind == "head" else "body")
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True
        self.transport.close()


def check_port(host: str, port: int) -> None:
    """Fail early, in one clear line, when the address is already in use."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                why = "is already in use" if exc.errno == errno.EADDRINUSE else "needs more privileges"
                raise PortInUse(f"cannot listen on {host}:{port}: the port {why} (another server running there?); "
                                "stop it or choose another --port") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise PortInUse(f"cannot listen on {host}:{port}: this machine has no such address") from None
            raise


def server_settings() -> dict[str, Any]:
    """The uvicorn settings of ``visionlake serve`` besides address and logging: the guarded protocol
    and the limits above (``visionlake bench api`` serves with the same ones)."""
    return {"http": GuardedH11Protocol, "timeout_keep_alive": KEEP_ALIVE_S,
            "h11_max_incomplete_event_size": MAX_HEAD_BYTES, "limit_concurrency": MAX_CONNECTIONS}


def uvicorn_config(app: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info",
                   **extra: Any) -> Any:
    """A ``uvicorn.Config`` with the guarded protocol and the limits above."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, log_level=log_level, **server_settings(), **extra)


def run(app: Any, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve until interrupted (``visionlake serve``)."""
    import uvicorn

    from visionlake.service import heap

    check_port(host, port)
    heap.enable()
    uvicorn.Server(uvicorn_config(app, host, port, log_level)).run()


__all__ = ["GuardedH11Protocol", "PortInUse", "check_port", "run", "server_settings", "uvicorn_config"]
