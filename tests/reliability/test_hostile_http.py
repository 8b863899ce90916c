"""A hostile HTTP client against the web process as the Procfile runs it (issue 19): oversized and
endless bodies, more connections than the process takes, parallel reads draining Postgres, and
health probes over plain HTTP in production.
"""

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings
from django.db import connection

from tests.fixtures.processes import ARTIFACTS, free_port
from tests.fixtures.web import INGEST_PATH, WebProcess

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker) -> Iterator[WebProcess]:
    server = WebProcess("hostile-http-web")
    try:
        yield server
    finally:
        server.stop()


def raw_request(port: int, head: bytes, *, timeout: float) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(head)
    return sock


def read_status(sock: socket.socket) -> int:
    """The status code of the answer on `sock` (raises socket.timeout when none comes)."""
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed without an answer (got {data!r})")
        data += chunk
    return int(data.split(b" ", 2)[1])


# --- hardening #2: bodies are refused before they are read; concurrency is bounded ---------------


def test_an_oversized_declared_body_is_refused_before_a_byte_of_it_is_sent(web):
    """300 MB announced, nothing sent: the answer is a 413 at once (it used to wait for the
    body, spool it to a temporary file, then say 401)."""
    head = (
        f"POST {INGEST_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: 314572800\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with raw_request(web.port, head, timeout=5) as sock:
        status = read_status(sock)
    elapsed = time.monotonic() - started
    assert status == 413
    assert elapsed < 3
    (ARTIFACTS / "hostile-http-declared-body.txt").write_text(
        f"300 MB declared, unauthenticated: 413 after {elapsed * 1000:.0f} ms, 0 bytes read\n"
    )


def test_an_endless_chunked_body_is_cut_off_at_the_limit(web):
    """A chunked body (no Content-Length) is counted as it streams: the server answers 413 once
    it has read the limit, long before the client's 100 MB are through."""
    limit = settings.HTTP_MAX_BODY_BYTES
    head = (
        f"POST {INGEST_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"x" * (1024 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    answer: dict = {}

    with raw_request(web.port, head, timeout=20) as sock:

        def reader():
            try:
                answer["status"] = read_status(sock)
            except OSError as exc:
                answer["error"] = repr(exc)
            answer["sent_then"] = sent

        sent = 0
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        try:
            while sent < 100 * len(chunk) and thread.is_alive():
                sock.sendall(framed)
                sent += len(chunk)
            if thread.is_alive():
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection after its 413
        thread.join(20)

    assert answer.get("status") == 413, answer
    # at most the limit, plus what the kernel's socket buffers held, was sent before the answer
    assert answer["sent_then"] <= limit + 16 * len(chunk), answer
    (ARTIFACTS / "hostile-http-chunked-body.txt").write_text(
        f"100 MB chunked, unauthenticated: 413 after the client had sent "
        f"{answer['sent_then'] / 2**20:.0f} MiB (limit {limit / 2**20:.0f} MiB; the rest sat in "
        f"socket buffers)\n"
    )


@pytest.mark.django_db(transaction=True)
def test_a_20000_row_batch_with_every_field_at_its_longest_fits_under_the_limit(web, api_key):
    rows = [
        {
            "symbol": f"{i:0>16}USDT",
            "openInterest": f"{i}12345.123456789012",
            "markPrice": "123456.123456789012",
            "openInterestUsd": "123456789012345.123456789012",
            "source": "realtime",
            "timestamp": "2025-12-01T12:34:56.123456+00:00",
        }
        for i in range(settings.OI_INGEST_MAX_ROWS)
    ]
    body = json.dumps({"timestamp": "2025-12-01T12:34:56Z", "data": rows}).encode()
    assert len(body) < settings.HTTP_MAX_BODY_BYTES

    response = requests.post(
        web.base_url + INGEST_PATH,
        data=body,
        headers={"Authorization": f"Token {api_key}", "Content-Type": "application/json"},
        timeout=120,
    )

    assert response.status_code == 200, response.text[:300]
    assert response.json()["inserted"] == settings.OI_INGEST_MAX_ROWS
    (ARTIFACTS / "hostile-http-batch-size.txt").write_text(
        f"20,000-row batch, every field at its longest: {len(body)} bytes "
        f"(limit HTTP_MAX_BODY_BYTES={settings.HTTP_MAX_BODY_BYTES})\n"
    )


def test_connections_beyond_the_concurrency_limit_get_503():
    server = WebProcess("hostile-http-web-limited", WEB_MAX_CONCURRENCY="4")
    idle = []
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(4)]
        time.sleep(0.3)  # let the server accept them
        response = requests.get(f"{server.base_url}/health", timeout=5)
        assert response.status_code == 503
        for sock in idle:
            sock.close()
        time.sleep(0.3)
        assert requests.get(f"{server.base_url}/health", timeout=5).status_code == 200
    finally:
        for sock in idle:
            sock.close()
        server.stop()


# --- hardening #7 (HTTP): parallel reads share a bounded connection pool ------------------------


def web_connections(application_name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            [application_name],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_30_parallel_reads_hold_at_most_the_pool_size_of_postgres_connections():
    pool_size = 4
    application_name = f"volspike-web-pool-{free_port()}"
    database = settings.DATABASES["default"]
    database_url = (
        f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{database['NAME']}?application_name={application_name}"
    )
    server = WebProcess(
        "hostile-http-web-pool",
        DATABASE_URL=database_url,
        WEB_DB_POOL_MAX_SIZE=str(pool_size),
    )
    seen: list[int] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.append(web_connections(application_name))
            time.sleep(0.02)

    try:
        urls = [
            f"{server.base_url}/api/open-interest-alerts",
            f"{server.base_url}/api/market/open-interest/liquid-universe",
            f"{server.base_url}/api/alert-rules",
        ]
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with ThreadPoolExecutor(30) as executor:
            for _ in range(3):  # three waves of 30 at once
                statuses = list(
                    executor.map(
                        lambda i: requests.get(urls[i % len(urls)], timeout=30).status_code,
                        range(30),
                    )
                )
                assert statuses == [200] * 30
        time.sleep(0.5)  # connections a request left open would still be there
        done.set()
        watcher.join(5)
    finally:
        done.set()
        server.stop()

    peak = max(seen)
    (ARTIFACTS / "hostile-http-pool.txt").write_text(
        f"3 waves of 30 parallel GETs, pool max {pool_size}: peak {peak} Postgres connections "
        f"of the web process ({len(seen)} samples of pg_stat_activity)\n"
    )
    assert 0 < peak <= pool_size, seen


# --- low: the SSL redirect leaves health probes alone --------------------------------------------


def test_production_answers_health_over_plain_http_and_redirects_the_rest():
    server = WebProcess(
        "hostile-http-web-production",
        DJANGO_SETTINGS_MODULE="volspike.settings.production",
        DJANGO_SECRET_KEY="production-like-secret-" + "x" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        REDIS_URL=settings.REDIS_URL,
    )
    try:
        health = requests.get(f"{server.base_url}/health", timeout=10, allow_redirects=False)
        api = requests.get(f"{server.base_url}/api/alert-rules", timeout=10, allow_redirects=False)
    finally:
        server.stop()
    assert health.status_code == 200, (health.status_code, health.headers.get("Location"))
    assert health.json()["status"] == "ok"
    assert api.status_code == 301 and api.headers["Location"].startswith("https://")
