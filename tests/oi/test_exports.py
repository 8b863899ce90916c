"""CSV exports of stored samples (GET /api/market/open-interest/export, `manage.py
export_snapshots`) against real Postgres through the real ASGI server (uvicorn): the CSV equals
the rows, filters hold, bad parameters are 400s naming the field, no token is a 401, the body is
streamed, and the command writes the same bytes as the API."""

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command

from common.formatting import plain_decimal
from common.services import api_token_create
from oi.models import OpenInterestSnapshot, SnapshotSource

pytestmark = pytest.mark.integration

EXPORT_PATH = "/api/market/open-interest/export"
HEADER = ["symbol", "ts", "source", "open_interest", "open_interest_usd", "mark_price"]
START = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
SYMBOLS = ("EXPAUSDT", "EXPBUSDT", "EXPCUSDT")


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cell(value: Decimal | None) -> str:
    return "" if value is None else plain_decimal(value)


def as_csv_row(row: OpenInterestSnapshot) -> list[str]:
    return [
        row.symbol, iso_utc(row.ts), row.source, cell(row.open_interest),
        cell(row.open_interest_usd), cell(row.mark_price),
    ]  # fmt: skip


@pytest.fixture
def stored_rows(transactional_db) -> list[OpenInterestSnapshot]:
    """360 rows: 3 symbols x 2 sources x 60 times 10 s apart (with a millisecond part), values
    with 12 places, whole numbers, zeros and unknown prices."""
    rows = []
    for minute in range(60):
        ts = START + timedelta(seconds=10 * minute, milliseconds=minute * 7)
        for index, symbol in enumerate(SYMBOLS):
            for source in SnapshotSource.values:
                mark = None if minute % 9 == 4 else Decimal("97000.5") / (index + 1 + minute)
                oi = (
                    Decimal(1_500_000 + minute * 1000 + index)
                    if minute % 2
                    else Decimal("0.000123456789") * (minute + 1)
                )
                rows.append(
                    OpenInterestSnapshot(
                        symbol=symbol, ts=ts, source=source, open_interest=oi,
                        mark_price=mark and mark.quantize(Decimal("1e-12")),
                        open_interest_usd=mark and (oi * mark).quantize(Decimal("1e-12")),
                    )
                )  # fmt: skip
    OpenInterestSnapshot.objects.bulk_create(rows)
    return list(OpenInterestSnapshot.objects.filter(symbol__in=SYMBOLS))


@pytest.fixture
def token(transactional_db) -> str:
    _, raw_key = api_token_create(name="exporter", read_only=True)
    return raw_key


def export(base_url: str, token: str | None, **params) -> requests.Response:
    headers = {"Authorization": f"Token {token}"} if token else {}
    return requests.get(f"{base_url}{EXPORT_PATH}", params=params, headers=headers, timeout=60)


def parsed(response: requests.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def expected(rows, *, since, until, symbols=SYMBOLS, source=None) -> list[list[str]]:
    chosen = [
        row
        for row in rows
        if since <= row.ts < until and row.symbol in symbols and source in (None, row.source)
    ]
    chosen.sort(key=lambda row: (row.ts, row.symbol, row.source))
    return [HEADER, *(as_csv_row(row) for row in chosen)]


def test_the_csv_is_every_row_with_every_column(asgi_server, stored_rows, token):
    until = START + timedelta(hours=1)
    lines = parsed(export(asgi_server, token, **{"from": START.isoformat(), "to": until}))
    assert len(lines) == 1 + 360
    assert lines == expected(stored_rows, since=START, until=until)
    assert all("e" not in value.lower() for line in lines[1:] for value in line[3:])  # plain


def test_filters_by_time_symbols_and_source(asgi_server, stored_rows, token):
    since, until = START + timedelta(seconds=95), START + timedelta(seconds=305)
    since_ms = int(since.timestamp() * 1000)
    lines = parsed(
        export(
            asgi_server,
            token,
            **{"from": str(since_ms), "to": until.isoformat().replace("+00:00", "Z")},
            symbols="EXPCUSDT, EXPAUSDT",
            source="realtime",
        )
    )
    assert lines == expected(
        stored_rows, since=since, until=until, symbols=("EXPAUSDT", "EXPCUSDT"), source="realtime"
    )
    assert 1 < len(lines) < 50


def test_an_empty_result_is_the_header_alone(asgi_server, stored_rows, token):
    response = export(
        asgi_server, token, **{"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}
    )
    assert response.content.decode() == ",".join(HEADER) + "\n"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "2025-12-02T00:00:00Z"}, "from"),
        ({"from": "2025-12-01T00:00:00Z"}, "to"),
        ({"from": "yesterday", "to": "2025-12-02T00:00:00Z"}, "from"),
        ({"from": "2025-12-01T00:00:00", "to": "2025-12-02T00:00:00Z"}, "from"),
        ({"from": "2025-12-01T00:00:00Z", "to": "2025-12-01T00:00:00Z"}, "to"),
        ({"from": "1764547200000", "to": "9" * 15}, "to"),
        ({"from": "2025-12-01T00:00:00Z", "to": "2025-12-02T00:00:00+23:59"}, "to"),
        ({"from": "1764547200000", "to": "1764633600000", "symbols": "BTCUSDT,btc usdt"}, "symbols"),
        ({"from": "1764547200000", "to": "1764633600000", "source": "nope"}, "source"),
        (
            {"from": "1764547200000", "to": "1764633600000",
             "symbols": ",".join(f"S{i}USDT" for i in range(1001))},
            "symbols",
        ),
    ],
)  # fmt: skip
def test_bad_parameters_are_400s_naming_the_field(asgi_server, token, params, field):
    response = export(asgi_server, token, **params)
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field), error
    assert error["reason"]


def test_no_token_is_a_401_even_when_reads_are_open(asgi_server, stored_rows):
    params = {"from": START.isoformat(), "to": (START + timedelta(hours=1)).isoformat()}
    for headers in ({}, {"Authorization": "Token not-a-key"}, {"X-API-Key": ""}):
        response = requests.get(
            f"{asgi_server}{EXPORT_PATH}", params=params, headers=headers, timeout=60
        )
        assert response.status_code == 401, response.text[:300]
        assert response.json()["error"]["message"]


def test_the_x_api_key_header_works_too(asgi_server, stored_rows, token):
    response = requests.get(
        f"{asgi_server}{EXPORT_PATH}",
        params={"from": START.isoformat(), "to": (START + timedelta(hours=1)).isoformat()},
        headers={"X-API-Key": token},
        timeout=60,
    )
    assert len(parsed(response)) == 361


def test_the_body_is_streamed_in_chunks_as_postgres_sends_it(asgi_server, transactional_db, token):
    """60,000 rows (~4 MB) by generate_series: chunked transfer, no Content-Length, and the
    first chunk (the header line first) is read while the server is still sending."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO open_interest_snapshots (symbol, ts, open_interest, source) "
            "SELECT 'STREAMUSDT', %s::timestamptz + n * interval '1 second', n, 'realtime' "
            "FROM generate_series(1, 60000) AS n",
            [START],
        )
    with requests.get(
        f"{asgi_server}{EXPORT_PATH}",
        params={"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat(),
                "symbols": "STREAMUSDT"},
        headers={"Authorization": f"Token {token}"},
        stream=True,
        timeout=60,
    ) as response:  # fmt: skip
        assert response.status_code == 200
        assert response.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in response.headers
        assert response.headers["Content-Disposition"].startswith("attachment; filename=")
        chunks = response.raw.stream(amt=None, decode_content=False)
        first = next(chunks)
        assert first.startswith(b"symbol,ts,source,open_interest")
        assert len(first) < 1_000_000  # a chunk, not the ~4 MB body
        rest = b"".join(chunks)
    lines = (first + rest).decode().splitlines()
    assert len(lines) == 60_001
    assert lines[1] == "STREAMUSDT,2025-12-01T12:00:01.000000Z,realtime,1,,"


def test_the_command_writes_what_the_api_answers(asgi_server, stored_rows, token, tmp_path):
    since, until = START + timedelta(seconds=30), START + timedelta(minutes=7)
    response = export(
        asgi_server, token, **{"from": since.isoformat(), "to": until.isoformat()},
        symbols="EXPBUSDT,EXPAUSDT", source="snapshot",
    )  # fmt: skip
    assert response.status_code == 200
    output = tmp_path / "out.csv"
    call_command(
        "export_snapshots", "--from", since.isoformat(), "--to", str(int(until.timestamp() * 1000)),
        "--symbols", "EXPBUSDT,EXPAUSDT", "--source", "snapshot", "--output", str(output),
    )  # fmt: skip
    assert output.read_bytes() == response.content
    assert len(response.content.splitlines()) > 10


def test_the_command_refuses_bad_parameters_naming_them(transactional_db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--to: must be after 'from'"):
        call_command(
            "export_snapshots", "--from", "2025-12-02T00:00:00Z", "--to", "2025-12-01T00:00:00Z"
        )


@pytest.fixture
def big_day(transactional_db) -> None:
    """300,000 rows (~20 MB of CSV): more than the sockets between server and client hold."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO open_interest_snapshots (symbol, ts, open_interest, source) "
            "SELECT 'BIG' || (n %% 100) || 'USDT', %s::timestamptz + n * interval '10 ms', n, "
            "'realtime' FROM generate_series(1, 300000) AS n",
            [START],
        )


def export_backend_pids() -> list[int]:
    """Postgres backends of this database running an export's COPY."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'COPY (SELECT %%' AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def big_export(base_url: str, token: str) -> requests.Response:
    return requests.get(
        f"{base_url}{EXPORT_PATH}",
        params={"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()},
        headers={"Authorization": f"Token {token}"},
        stream=True,
        timeout=60,
    )


def test_a_client_that_goes_away_ends_the_copy(asgi_server, big_day, token):
    response = big_export(asgi_server, token)
    assert next(response.iter_content(4096)).startswith(b"symbol,ts")
    assert export_backend_pids(), "the export's COPY should still be running"
    response.close()
    deadline = time.monotonic() + 15
    while export_backend_pids():
        assert time.monotonic() < deadline, "the COPY outlived its client"
        time.sleep(0.1)


def test_a_failure_mid_export_cuts_the_body_short(asgi_server, big_day, token):
    """A truncated body must not pass for a whole file: the chunked transfer is left unfinished."""
    from django.db import connection

    with big_export(asgi_server, token) as response:
        chunks = response.iter_content(64 * 1024)
        received = len(next(chunks))
        with connection.cursor() as cursor:
            for pid in export_backend_pids():
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in chunks:
                received += len(chunk)
    assert received < 15_000_000


def test_head_answers_the_headers_without_running_the_export(asgi_server, stored_rows, token):
    response = requests.head(
        f"{asgi_server}{EXPORT_PATH}",
        params={"from": START.isoformat(), "to": (START + timedelta(hours=1)).isoformat()},
        headers={"Authorization": f"Token {token}"},
        timeout=60,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].endswith('.csv"')
