"""Kept-alive HTTP/1.1 GETs to one origin from an asyncio event loop, answers parsed by httptools.

What the exchange client's coroutines send through (``BinanceFuturesClient.open_interest_async``),
so that one thread can have many polls in flight at once, each waiting on its socket in the
loop instead of in a thread of its own. Only what a GET of a small JSON answer needs: no proxy
(the client keeps its urllib3 pools for that), no redirects, a Content-Length or chunked body,
gzip or deflate decoded. A connection is reused only after a complete answer that allows it; a
connection that failed, timed out or was answered too much is closed, never reused half-read.
"""

import asyncio
import ssl
import zlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools
from urllib3 import HTTPHeaderDict


class HttpFailure(Exception):
    """No complete answer: the connection failed, broke off, or sent what is not HTTP."""


class HttpTimeout(HttpFailure):
    """No connection, or no complete answer, in time."""


class BodyTooLarge(Exception):
    """The answer's body (decoded) is larger than the caller allows."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    reason: str
    headers: HTTPHeaderDict
    body: bytes


@dataclass(eq=False)
class _Exchange:
    """One request on a connection, and what has come back of its answer so far."""

    waiter: asyncio.Future
    max_body: int
    reason: str = ""
    headers: HTTPHeaderDict = field(default_factory=HTTPHeaderDict)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class _Connection(asyncio.Protocol):
    """One kept-alive connection: httptools feeds the answer's parts to the ``on_*`` callbacks."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reusable = False
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._exchange: _Exchange | None = None

    # --- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._exchange is None:  # nothing asked: an answer no request is waiting for
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpFailure(f"not an HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpFailure(f"connection closed before the answer was complete: {exc}"))

    # --- httptools callbacks (after a failure in the same feed, ``_exchange`` is None)

    def on_status(self, status: bytes) -> None:
        if (exchange := self._exchange) is not None:
            exchange.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if (exchange := self._exchange) is not None:
            exchange.headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_body(self, body: bytes) -> None:
        if (exchange := self._exchange) is None:
            return
        exchange.size += len(body)
        if exchange.size > exchange.max_body:
            status = self._parser.get_status_code()
            self._fail(BodyTooLarge(f"body larger than {exchange.max_body} bytes", status=status))
            return
        exchange.chunks.append(body)

    def on_message_complete(self) -> None:
        if (exchange := self._exchange) is None:
            return
        self._exchange = None
        self.reusable = self._parser.should_keep_alive()
        status = self._parser.get_status_code()
        try:
            body = _decoded(b"".join(exchange.chunks), exchange.headers, exchange.max_body, status)
        except BodyTooLarge as exc:
            self._exchange = exchange
            self._fail(exc)
            return
        except zlib.error as exc:
            self._exchange = exchange
            self._fail(HttpFailure(f"body not decodable: {exc}"))
            return
        if not exchange.waiter.done():
            exchange.waiter.set_result(HttpAnswer(status, exchange.reason, exchange.headers, body))

    # --- used by the pool

    def request(self, data: bytes, max_body: int) -> asyncio.Future:
        waiter = asyncio.get_running_loop().create_future()
        self.reusable = False
        self._exchange = _Exchange(waiter, max_body)
        assert self.transport is not None  # connected by the pool before any request
        self.transport.write(data)
        return waiter

    def time_out(self, seconds: float) -> None:
        self._fail(HttpTimeout(f"no complete answer within {seconds}s"))

    def close(self) -> None:
        self.reusable = False
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: Exception) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None and not exchange.waiter.done():
            exchange.waiter.set_exception(error)
        if not self.closed:
            self.close()


def _decoded(body: bytes, headers: HTTPHeaderDict, max_body: int, status: int) -> bytes:
    """The body without its Content-Encoding (gzip, deflate), at most ``max_body`` bytes."""
    encoding = headers.get("Content-Encoding", "").strip().lower()
    if not body or encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise zlib.error(f"unknown content encoding {encoding!r}")
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    decoded = decompressor.decompress(body, max_body + 1)
    if len(decoded) > max_body:
        raise BodyTooLarge(f"body larger than {max_body} bytes", status=status)
    return decoded


class AsyncHttpPool:
    """Kept-alive connections to the origin of ``base_url``. A connection belongs to the loop
    that opened it: used from another loop, the pool forgets the idle ones and opens new."""

    def __init__(
        self, base_url: str, *, connect_timeout: float, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._tls else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if self._tls else None
        self._connect_timeout = connect_timeout
        default_port = self._port == (443 if self._tls else 80)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._host_header = host if default_port else f"{host}:{self._port}"
        self._idle: list[_Connection] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def get(
        self, target: str, headers: dict[str, str], *, timeout: float, max_body: int
    ) -> HttpAnswer:
        """GET ``target`` (a path and query); the whole answer within ``timeout`` seconds of
        sending (the connection, when a new one is needed, within the connect timeout)."""
        connection = await self._connection()
        lines = [f"GET {target} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        timer = asyncio.get_running_loop().call_later(timeout, connection.time_out, timeout)
        try:
            answer = await connection.request(data, max_body)
        except BaseException:
            connection.close()
            raise
        finally:
            timer.cancel()
        if connection.reusable and not connection.closed:
            self._idle.append(connection)
        else:
            connection.close()
        return answer

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    async def _connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._idle = loop, []
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._tls else None,
                )
        except TimeoutError as exc:
            raise HttpTimeout(f"no connection within {self._connect_timeout}s") from exc
        except OSError as exc:
            raise HttpFailure(f"connection failed: {exc}") from exc
        return connection
