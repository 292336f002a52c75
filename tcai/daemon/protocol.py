"""The daemon's connection door: what happens on a socket before and around a request
(docs/http-api.md, "Slow and hostile connections").

aiohttp parses HTTP in its `RequestHandler`, one per connection, made by a `Server` that
the `AppRunner` builds. `DoorRunner` makes a `DoorServer`, whose connections are
`DoorProtocol`s, which add:

- **The header deadline.** A connection must deliver a request's complete headers within
  `HEADER_TIMEOUT_SECONDS` of its start, or of the end of the previous response on a
  kept-alive connection. This is aiohttp's own keep-alive timer given that length: it is
  armed at connection start and after each response, and it closes the connection when it
  fires while the handler still waits for a whole request, partial headers or none (so a
  slowloris dribbling a byte at a time is cut at the deadline). It costs nothing per
  request.
- **The body deadline.** Once a request's headers are in, its body must arrive within
  `BODY_TIMEOUT_SECONDS`. Late, the handler's read of the body fails with 408
  `request_timeout` in the error shape and the connection closes after that answer; a
  body nobody is reading any more (the answer has gone) just has its connection closed.
- **A cap per client address.** A peer already holding `MAX_CONNECTIONS_PER_ADDRESS` open
  connections to this process has any further one closed at once, before a byte is read
  (trusted proxies are exempt: they carry everyone). Counted in
  `tcai_connections_refused_total`, logged at most once a minute per address.
- **Descriptors never run out.** Past `RLIMIT_NOFILE` minus `FD_RESERVE` (256) open
  connections, each new one closes the oldest connection still waiting for a whole
  request (stalled or idle; never one being answered), counted in
  `tcai_connections_evicted_total`. A flood of stalled connections from many addresses
  then costs its oldest members their sockets, not the daemon its ability to accept.
- **aiohttp's parser errors in our error shape.** A request the parser refuses (a bad
  request line, a bad header, a line too long, invalid chunking…) gets 400 `bad_request`
  (413 `payload_too_large` when aiohttp reports a line too long) with a request id, and
  one short log line with the anonymised client address and the kind of error: never a
  traceback, never the parser's message (it quotes the bytes around the error, which can
  be an Authorization header).

Per request on the hot path this adds one overridden `data_received` with two attribute
reads (is there a body still coming?); everything else is per connection or per error.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestPayloadError

from tcai.config import Settings
from tcai.daemon.metrics import Metrics
from tcai.daemon.remote import ClientAddresses
from tcai.errors import TcaiError
from tcai.logs import anonymise_ip, log_event, request_id_var

log = logging.getLogger("tcai.daemon.door")

REFUSAL_LOG_SECONDS = 60.0
"""At most one log line per client address per this long about refused connections."""
REFUSAL_LOG_ADDRESSES = 4096
"""Addresses remembered for that throttle; beyond it, lines older than a minute go."""
FD_RESERVE = 256
"""Descriptors kept free of client connections: the database pool, log files, the LLM
client, and room for one batch of accepts (asyncio accepts up to the listen backlog,
128, before the first of them reaches `connection_made` and can evict anyone)."""
UNPARSED_ROUTE = "unparsed"
"""The route label of requests aiohttp's parser refused (`tcai_http_requests_total`)."""
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Content-Security-Policy": "frame-ancestors 'none'",
}
BAD_REQUEST_MESSAGE = "The request could not be read as HTTP; check its request line and headers."
TOO_LONG_MESSAGE = "A request line or header is too long (8 KiB at most)."
BODY_TIMEOUT_MESSAGE = "The request body arrived too slowly; please try again."


class BodyTimeout(TcaiError):
    """The request's body did not arrive within BODY_TIMEOUT_SECONDS of its headers. Set
    on the body's stream, so whoever reads the body gets it and the daemon's middleware
    answers 408 in the error shape."""

    http_status = 408
    code = "request_timeout"


class Door:
    """The connection rules of one daemon process, shared by all its connections."""

    def __init__(self, settings: Settings, metrics: Metrics, open_files: int = 0) -> None:
        self.header_timeout = float(settings.header_timeout_seconds)
        self.max_open = max(16, open_files - FD_RESERVE) if open_files else 0
        """Connections this process may hold before a new one evicts the oldest that
        has not sent a whole request (0: no ceiling). Keeps descriptors free, so a flood
        of stalled connections never leaves the daemon unable to accept a health check."""
        self.connections: dict[DoorProtocol, None] = {}
        """Open connections, oldest first (a dict keeps insertion order)."""
        self.body_timeout = float(settings.body_timeout_seconds)
        self.cap = settings.max_connections_per_address
        self.addresses = ClientAddresses(settings.trusted_proxies)
        self.metrics = metrics
        self.open: dict[str, int] = {}
        """Open connections per peer address (the socket's, not a forwarded one)."""
        self._refusals: dict[str, tuple[float, int]] = {}
        """Per address: when its last refusal line was written, refusals since."""

    def admit(self, host: str) -> bool:
        """Count a new connection from `host`; False (not counted) when over the cap."""
        held = self.open.get(host, 0)
        if held >= self.cap and not self.addresses.is_trusted(host):
            self._refused(host)
            return False
        self.open[host] = held + 1
        return True

    def enter(self, protocol: DoorProtocol) -> None:
        """A connection was admitted: when descriptors run low, close the oldest one
        still waiting for a whole request (a stalled or idle connection; never one
        whose request is being answered)."""
        connections = self.connections
        if self.max_open and len(connections) >= self.max_open:
            for candidate in connections:
                if candidate.waiting_for_request():
                    del connections[candidate]
                    self.metrics.connections_evicted.inc()
                    candidate.evict()
                    break
        connections[protocol] = None

    def leave(self, protocol: DoorProtocol) -> None:
        self.connections.pop(protocol, None)

    def release(self, host: str) -> None:
        held = self.open.get(host, 0) - 1
        if held > 0:
            self.open[host] = held
        else:
            self.open.pop(host, None)

    def _refused(self, host: str) -> None:
        self.metrics.connections_refused.inc()
        now = time.monotonic()
        last, since = self._refusals.get(host, (float("-inf"), 0))
        if now - last < REFUSAL_LOG_SECONDS:
            self._refusals[host] = (last, since + 1)
            return
        if len(self._refusals) >= REFUSAL_LOG_ADDRESSES:
            self._refusals = {
                key: value
                for key, value in self._refusals.items()
                if now - value[0] < REFUSAL_LOG_SECONDS
            }
        self._refusals[host] = (now, 0)
        log_event(
            log,
            "connections refused: one client address holds too many",
            ip=anonymise_ip(host),
            open=self.open.get(host, 0),
            limit=self.cap,
            refused_since_last_line=since + 1,
        )


class DoorProtocol(web.RequestHandler):
    """aiohttp's connection handler with the door's rules (see the module docstring)."""

    __slots__ = ("_address", "_body_timer", "_door", "_refused", "_timed_body")

    def __init__(self, manager: DoorServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._door = manager.door
        self._address: str | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._timed_body: StreamReader | None = None
        self._refused = False

    # ---- the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else None
        if isinstance(host, str):
            if not self._door.admit(host):
                # Refused before anything is read or any task exists; aiohttp never
                # learns of this connection.
                self._refused = True
                cast(asyncio.Transport, transport).abort()
                return
            self._address = host
        super().connection_made(transport)
        self._door.enter(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        self._door.leave(self)
        if self._address is not None:
            self._door.release(self._address)
            self._address = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._timed_body = None
        super().connection_lost(exc)

    def waiting_for_request(self) -> bool:
        """No request is being answered or queued: the connection waits for headers."""
        return not self._request_in_progress and not self._messages

    def evict(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.abort()  # frees the descriptor now

    # ---- the body deadline ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # The parser queues each request as soon as its headers are complete; only the
        # last one queued can still be waiting for its body.
        messages = self._messages
        if messages:
            body = messages[-1][1]
            if body is not EMPTY_PAYLOAD and body is not self._timed_body and not body.is_eof():
                self._time_body(body)

    def _time_body(self, body: StreamReader) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._timed_body = body
        self._body_timer = self._loop.call_later(self._door.body_timeout, self._body_deadline, body)

    def _body_deadline(self, body: StreamReader) -> None:
        self._body_timer = None
        if body.is_eof() or self.transport is None or body.exception() is not None:
            return
        if self._request_in_progress:
            # Whoever reads the body now gets BodyTimeout, which the middleware answers
            # with 408; after that answer the connection closes without lingering to
            # read the rest of the body.
            self._lingering_time = 0.0
            self.close()
            body.set_exception(BodyTimeout(BODY_TIMEOUT_MESSAGE))
        else:
            self.force_close()  # answered already (or queued behind another): just close

    # ---- errors aiohttp handles itself ---------------------------------------------------

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp calls this for a request its parser refused, and for an exception or
        timeout that escaped the application (the middleware answers everything else)."""
        rid = secrets.token_hex(8)
        request_id_var.set(rid)
        if isinstance(exc, HttpProcessingError):
            too_long = isinstance(exc, LineTooLong)
            status = 413 if too_long else 400
            code = "payload_too_large" if too_long else "bad_request"
            text = TOO_LONG_MESSAGE if too_long else BAD_REQUEST_MESSAGE
            self._door.metrics.served(UNPARSED_ROUTE, "OTHER", status, 0.0)
            log_event(
                log,
                "bad request refused by the HTTP parser",
                request_id=rid,
                status=status,
                kind=type(exc).__name__,
                ip=anonymise_ip(request.remote),
            )
        elif status == 504:
            code, text = "timeout", "The request took too long; please try again."
        else:
            status, code = 500, "internal_error"
            text = "Something went wrong on our side; please try again."
            _log_escaped(exc, rid)
        if request.writer.output_size > 0:
            # Some of a response went out already: aiohttp drops the connection.
            raise ConnectionError("a response was already started on this connection")
        response = web.json_response(
            {"error": {"code": code, "message": text}, "request_id": rid},
            status=status,
            headers={"X-Request-Id": rid, **SECURITY_HEADERS},
        )
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's other error lines ("Unhandled exception" when a body it was
        discarding turns out malformed, a handler returning no response): a client's
        fault is one short line, anything else is ours and keeps its traceback."""
        exc = kw.get("exc_info")
        if isinstance(exc, BaseException):
            _log_escaped(exc, None)
        else:
            log.error("aiohttp: %s", args[0] if args else "error", exc_info=exc)


def _log_escaped(exc: BaseException | None, rid: str | None) -> None:
    if isinstance(exc, ConnectionError):
        log.debug("client went away (%s)", type(exc).__name__)
    elif isinstance(exc, (RequestPayloadError, HttpProcessingError, BodyTimeout)):
        log_event(log, "client error outside a request", request_id=rid, kind=type(exc).__name__)
    else:
        log.error("unhandled error outside the middleware", exc_info=exc)


class DoorServer(web.Server):
    """aiohttp's `Server` making `DoorProtocol`s."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        *,
        door: Door,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self.door = door
        self._loop_of_protocols = kwargs.get("loop") or asyncio.get_running_loop()
        self._protocol_kwargs = {
            key: value
            for key, value in kwargs.items()
            if key not in ("loop", "request_factory", "handler_cancellation")
        }

    def __call__(self) -> DoorProtocol:
        return DoorProtocol(self, loop=self._loop_of_protocols, **self._protocol_kwargs)


class DoorRunner(web.AppRunner):
    """`web.AppRunner` whose server is a `DoorServer`: the application starts up as
    always (aiohttp's own `_make_server`), then its request handler and request factory
    are served through the door. `keepalive_timeout` is the header deadline."""

    __slots__ = ("door",)

    def __init__(self, app: web.Application, door: Door, *, shutdown_timeout: float) -> None:
        super().__init__(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
        self.door = door

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return DoorServer(
            made.request_handler,
            request_factory=made.request_factory,
            door=self.door,
            access_log=None,
            keepalive_timeout=self.door.header_timeout,
            debug=self.app.debug,
        )
