"""HTTP/1.1 keep-alive server on asyncio + httptools (uvloop when available)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import signal
import sys
import time
from collections import deque
from http import HTTPStatus

import httptools

from simulator.app import HTML_TYPE, Response, SimulatorApp
from simulator.config import SimConfig

log = logging.getLogger("simulator")

HOLD_SECONDS = 600.0
FORBIDDEN_HTML = b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n"
_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}
_REASONS[418] = b"I'm a teapot"


_date_cache: list = [0, b""]


def _date_header() -> bytes:
    """The Date header (RFC 9110), as Binance sends it: the exchange's clock, to the second."""
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache[0] = second
        _date_cache[1] = email.utils.formatdate(second, usegmt=True).encode()
    return _date_cache[1]


def render(response: Response, keep_alive: bool, head_only: bool = False) -> bytes:
    status = response.status
    lines = [
        b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown")),
        b"Date: %s\r\n" % _date_header(),
        b"Content-Type: %s;charset=UTF-8\r\n" % response.content_type,
        b"Content-Length: %d\r\n" % len(response.body),
    ]
    for name, value in response.headers:
        lines.append(name + b": " + value + b"\r\n")
    if not keep_alive:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    if not head_only:
        lines.append(response.body)
    return b"".join(lines)


class HttpProtocol(asyncio.Protocol):
    __slots__ = (
        "app",
        "body",
        "closed",
        "headers",
        "holding",
        "ip",
        "loop",
        "parser",
        "queue",
        "transport",
        "upgrade",
        "url",
        "websocket",
    )

    def __init__(self, app: SimulatorApp, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.ip = "?"
        self.queue: deque[tuple[float, bytes, bool]] = deque()
        self.holding = False
        self.closed = False
        self.headers: list[tuple[bytes, bytes]] = []
        self.upgrade: tuple[str, str] | None = None
        self.websocket = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.ip = peer[0] if peer else "?"

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.queue.clear()
        if self.websocket is not None:
            self.websocket.close_transport()

    def data_received(self, data: bytes) -> None:
        if self.websocket is not None:
            self.websocket.receive(data)
            return
        if self.holding:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgrade(data[exc.args[0] :] if exc.args else b"")
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(render(Response(400, b"", HTML_TYPE), keep_alive=False))
            self._close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []
        self.headers = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.holding:
            return
        method = self.parser.get_method().decode()
        keep_alive = self.parser.should_keep_alive()
        try:
            parsed = httptools.parse_url(self.url)
            path = parsed.path.decode("latin-1")
            query = parsed.query.decode("latin-1") if parsed.query else ""
        except httptools.HttpParserInvalidURLError:
            path, query = "", ""
        if self.parser.should_upgrade():
            self.upgrade = (path, query)  # handed to the stream hub once the parser stops
            return
        if "//" in path:
            response = Response(403, FORBIDDEN_HTML, HTML_TYPE)
        else:
            try:
                response = self.app.handle(method, path, query, b"".join(self.body), self.ip)
            except Exception:
                log.exception("unhandled error for %s %s", method, self.url)
                response = Response(
                    500,
                    b'{"code":-1000,"msg":"An unknown error occured while processing the request."}',
                )
        if response.hold:
            self.holding = True
            self.loop.call_later(HOLD_SECONDS, self._close)
            return
        payload = render(response, keep_alive, head_only=method == "HEAD")
        if not self.queue and not response.delay_sec:
            self._write(payload, keep_alive)
            return
        ready_at = self.loop.time() + response.delay_sec
        self.queue.append((ready_at, payload, keep_alive))
        self.loop.call_at(ready_at, self._flush)

    def _upgrade(self, rest: bytes) -> None:
        """A WebSocket handshake: the stream hub takes the connection over (simulator.streams)."""
        if self.upgrade is None or self.transport is None:
            self._close()
            return
        path, query = self.upgrade
        self.websocket = self.app.streams.accept(self.transport, path, query, self.headers)
        if self.websocket is None:
            self.closed = True
        elif rest:
            self.websocket.receive(rest)

    def _write(self, payload: bytes, keep_alive: bool) -> None:
        if self.closed or self.transport is None:
            return
        self.transport.write(payload)
        if not keep_alive:
            self._close()

    def _flush(self) -> None:
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now + 1e-4:
            _, payload, keep_alive = self.queue.popleft()
            self._write(payload, keep_alive)
        if self.queue and self.queue[0][0] > now + 1e-4:
            # The timer fired early (the loop's timers round to the millisecond): not written
            # yet, so look again at its time, or the answer would never leave.
            self.loop.call_at(self.queue[0][0], self._flush)

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


async def serve(config: SimConfig, ready: asyncio.Event | None = None) -> None:
    loop = asyncio.get_running_loop()
    app = SimulatorApp(config)
    server = await loop.create_server(
        lambda: HttpProtocol(app, loop), config.host, config.port, reuse_address=True, backlog=2048
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    emitter = asyncio.ensure_future(app.streams.run())
    sockets = ", ".join(str(s.getsockname()) for s in server.sockets)
    sys.stderr.write(
        f"simulator listening on {sockets} seed={config.seed} symbols={config.symbols}\n"
    )
    sys.stderr.flush()
    if ready is not None:
        ready.set()
    for state in list(app.market.symbols.values()):
        if stop.is_set():
            break
        app.market.warm(state, app.clock())
        await asyncio.sleep(0)
    await stop.wait()
    emitter.cancel()
    app.streams.drop_all()
    server.close()
    await server.wait_closed()


def run(config: SimConfig) -> None:
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))
