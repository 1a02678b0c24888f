"""Running the app with uvicorn, hardened against slow and half-open clients.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but never a connection whose
request headers (or body) stop arriving: 800 connections that sent half a header were held forever in
an attack run. :class:`GuardedHttpToolsProtocol` (and :class:`GuardedH11Protocol`, its fallback)
add two timers per connection:

* a **header deadline**: the full request head must arrive within ``header_timeout_s`` of its first
  byte (or of the connection opening), however slowly it trickles in;
* a **body idle timeout**: while a request body is being received, a pause longer than
  ``body_idle_timeout_s`` closes the connection.

The time an application takes to answer is not limited here (the app has its own request timeout).
Request heads are limited to ``MAX_HEAD_BYTES`` (400 and the connection closed beyond it) and open
connections to ``limit_concurrency`` (503 beyond it).

**HTTP stack.** Requests are parsed with ``httptools`` (llhttp, C; a core dependency, uvicorn's own
"standard" choice) when it is installed, else with the pure-Python ``h11``; both protocols carry the
same timers and limits (:func:`server_settings`). Measured with a trivial app under 50 keep-alive
clients, httptools costs 120-150 us of server CPU per request against 300-370 us for h11 (about
2,100 fewer Python calls per request). The event loop stays asyncio's, named explicitly (uvicorn's
``auto`` takes ``uvloop`` whenever it is installed): with uvloop a saturated server accepted new
connections one per loop iteration -- 48 clients connecting at once waited up to 7 s for their first
answer -- and it saved no CPU there (4.3 ms per request against 3.6-3.8 on asyncio).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # the fast stack; absent (an install without it) -> h11 on asyncio, same guards
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - exercised by forcing the fallback in the tests
    httptools = None
    HttpToolsProtocol = None

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


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol plus the same header deadline, body idle timeout and head size
        limit as :class:`GuardedH11Protocol` (see the module doc).

        httptools reports a request through callbacks, so the connection's phase is tracked from them:
        ``new`` (opened, nothing sent: the head deadline runs from the opening), ``head`` (bytes of a
        request head arrived: deadline from the first byte, however slowly the rest trickles in),
        ``body`` (head complete, body expected: idle timer re-armed by every chunk), ``app`` (request
        complete: the application's own timeout applies) and ``idle`` (response sent: uvicorn's
        keep-alive timer applies).
        """

        header_timeout_s = HEADER_TIMEOUT_S
        body_idle_timeout_s = BODY_IDLE_TIMEOUT_S
        max_head_bytes = MAX_HEAD_BYTES

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._guard: asyncio.TimerHandle | None = None
            self._phase = "new"
            self._head_bytes = 0
            super().connection_made(transport)
            self._arm(self.header_timeout_s)  # a connection that sends nothing at all

        def data_received(self, data: bytes) -> None:
            if self._phase in ("new", "idle"):
                if self._phase == "idle":  # the deadline runs from the first byte of this head
                    self._arm(self.header_timeout_s)
                self._phase, self._head_bytes = "head", 0
            if self._phase == "head":
                self._head_bytes += len(data)
            super().data_received(data)
            if self._phase == "head" and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
                self._too_large()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_size = 0
            if self._phase != "head":  # a pipelined request parsed from the same bytes
                self._phase = "head"
                self._arm(self.header_timeout_s)

        def on_url(self, url: bytes) -> None:
            self._head_size += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._head_size += len(name) + len(value) + 4
            if self._head_size > self.max_head_bytes:  # a whole oversized head in one read
                raise ValueError("request head too large")  # -> HttpParserCallbackError -> 400
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._phase = "body"
            self._arm(self.body_idle_timeout_s)  # disarmed at once when there is no body

        def on_body(self, body: bytes) -> None:
            super().on_body(body)
            if self._phase == "body":
                self._arm(self.body_idle_timeout_s)

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._phase = "app"
            self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._phase == "app":
                self._phase = "idle"

        # -----------------------------------------------------------------------------------------
        def _too_large(self) -> None:
            log.info("closing a connection from %s: request head over %d bytes", self.client, self.max_head_bytes)
            self._disarm()
            self.send_400_response("Request head too large.")

        def _arm(self, delay: float) -> None:
            self._disarm()
            self._guard = self.loop.call_later(delay, self._expire, self._phase)

        def _disarm(self) -> None:
            guard = getattr(self, "_guard", None)
            if guard is not None:
                guard.cancel()
            self._guard = None

        def _expire(self, phase: str) -> None:
            self._guard = None
            if self.transport is None or self.transport.is_closing():
                return
            if self._phase not in ("new", "head", "body"):
                return  # the request got through meanwhile
            log.info("closing a connection from %s: request %s too slow", self.client,
                     "body" if self._phase == "body" else "head")
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.disconnected = True
            self.transport.close()

else:  # pragma: no cover
    GuardedHttpToolsProtocol = None  # type: ignore[assignment,misc]


def protocol_class() -> type:
    """The guarded HTTP protocol: httptools when installed, else h11."""
    return GuardedHttpToolsProtocol if GuardedHttpToolsProtocol is not None else GuardedH11Protocol


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
    """The uvicorn settings of ``visionlake serve`` besides address and logging: the HTTP stack (see
    the module doc), the guarded protocol and the limits above (``visionlake bench api`` serves with
    the same ones)."""
    return {"http": protocol_class(), "loop": "asyncio", "timeout_keep_alive": KEEP_ALIVE_S,
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


__all__ = ["GuardedH11Protocol", "GuardedHttpToolsProtocol", "PortInUse", "check_port", "protocol_class", "run",
           "server_settings", "uvicorn_config"]
