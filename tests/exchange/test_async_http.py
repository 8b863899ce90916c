"""The event loop's HTTP connections (exchange.async_http) against a small real HTTP server: the
answers the simulator never sends (chunked, gzip, too large, a connection the server closes)."""

import asyncio
import gzip

import pytest

from exchange.async_http import AsyncHttpPool, BodyTooLarge, HttpFailure, HttpTimeout


async def serving(answers: list[bytes], *, close_after: bool = False):
    """A server answering each request in turn with the next of ``answers`` (raw bytes; an
    empty one: silence)."""
    requests: list[bytes] = []
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while answers:
            request = await reader.readuntil(b"\r\n\r\n")
            requests.append(request)
            if not (next_answer := answers.pop(0)):
                await asyncio.sleep(5)
            writer.write(next_answer)
            await writer.drain()
            if close_after:
                break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, port, requests, lambda: connections


def answer(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{header}\r\n" for header in headers)
    return f"HTTP/1.1 200 OK\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_chunked_and_gzip_answers_come_back_whole_over_one_kept_alive_connection():
    async def scenario():
        chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n'
        zipped = answer(gzip.compress(b'{"b":2}'), "Content-Encoding: gzip")
        server, port, requests, connections = await serving([chunked, zipped])
        pool = AsyncHttpPool(f"http://127.0.0.1:{port}", connect_timeout=1)
        first = await pool.get("/x?symbol=A", {"Accept": "*/*"}, timeout=1, max_body=100)
        second = await pool.get("/y", {}, timeout=1, max_body=100)
        server.close()
        return first, second, requests, connections()

    first, second, requests, connections = asyncio.run(scenario())
    assert (first.status, first.body) == (200, b'{"a":1}')
    assert second.body == b'{"b":2}' and second.headers["content-encoding"] == "gzip"
    assert requests[0].startswith(b"GET /x?symbol=A HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Accept: */*\r\n" in requests[0]
    assert connections == 1


def test_a_body_over_the_limit_is_refused_and_its_connection_not_reused():
    async def scenario():
        server, port, _, connections = await serving(
            [answer(b"x" * 50), answer(gzip.compress(b"y" * 500), "Content-Encoding: gzip"),
             answer(b"{}")]
        )  # fmt: skip
        pool = AsyncHttpPool(f"http://127.0.0.1:{port}", connect_timeout=1)
        with pytest.raises(BodyTooLarge) as plain:
            await pool.get("/", {}, timeout=1, max_body=10)
        with pytest.raises(BodyTooLarge):  # decoded size counts
            await pool.get("/", {}, timeout=1, max_body=100)
        last = await pool.get("/", {}, timeout=1, max_body=100)
        server.close()
        return plain.value, last, connections()

    plain, last, connections = asyncio.run(scenario())
    assert plain.status == 200
    assert last.body == b"{}"
    assert connections == 3


def test_a_connection_the_server_closed_is_replaced_and_silence_times_out():
    async def scenario():
        server, port, _, connections = await serving(
            [answer(b"1"), answer(b"2"), b""], close_after=True
        )
        pool = AsyncHttpPool(f"http://127.0.0.1:{port}", connect_timeout=1)
        first = await pool.get("/", {}, timeout=1, max_body=10)
        await asyncio.sleep(0.1)  # the server has closed it meanwhile
        second = await pool.get("/", {}, timeout=1, max_body=10)
        await asyncio.sleep(0.1)
        with pytest.raises(HttpTimeout):  # connected, never answered
            await pool.get("/", {}, timeout=0.2, max_body=10)
        server.close()
        return first, second, connections()

    first, second, connections = asyncio.run(scenario())
    assert (first.body, second.body) == (b"1", b"2")
    assert connections == 3  # one closed by the server, one replacing it, one timed out


def test_what_is_not_http_or_no_server_is_a_failure():
    async def scenario():
        server, port, _, _ = await serving([b"SSH-2.0-OpenSSH\r\n\r\n"])
        pool = AsyncHttpPool(f"http://127.0.0.1:{port}", connect_timeout=1)
        with pytest.raises(HttpFailure):
            await pool.get("/", {}, timeout=1, max_body=10)
        server.close()
        await server.wait_closed()
        with pytest.raises(HttpFailure):
            await AsyncHttpPool(f"http://127.0.0.1:{port}", connect_timeout=1).get(
                "/", {}, timeout=1, max_body=10
            )

    asyncio.run(scenario())
