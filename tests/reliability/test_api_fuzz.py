"""Bad input against every API endpoint (issue 8): schema-based fuzzing with schemathesis against
the real ASGI server, and property-based fuzzing with hypothesis through the DRF test client.

What must hold for any input: no 5xx; every refusal is a 4xx in the project's error shape
{"error": {"code", "message", "field"?, "reason"?, "row"?}} with a non-empty message; a refused
write stores nothing (no partial batch); a write without a valid token is refused with 401.
All generation is derandomized, so a failure reproduces on the next run.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from alerts.models import OpenInterestAlert
from oi.models import OpenInterestSnapshot
from volume_alerts.models import VolumeAlert

pytestmark = pytest.mark.reliability

INGEST_URL = "/api/market/open-interest/ingest"
ALERT_INGEST_URL = "/api/open-interest-alerts/ingest"
VOLUME_INGEST_URL = "/api/volume-alerts/ingest"
READ_URLS = {
    "volume-alerts": "/api/volume-alerts",
    "volume-alerts-recent": "/api/volume-alerts/recent",
    "oi-latest": "/api/market/open-interest",
    "oi-snapshot-at": "/api/market/open-interest/snapshot",
    "samples": "/api/market/open-interest/samples",
    "alerts": "/api/open-interest-alerts",
    "liquidation-alerts": "/api/liquidation-alerts",
    "liquid-universe": "/api/market/open-interest/liquid-universe",
    "poller": "/api/market/open-interest/poller",
    "screener": "/api/market/open-interest/screener",
    "market": "/api/market/open-interest/market",
}
READINESS_PATH = "/health/ready"
# Every operation of /api/schema/; test_the_schema_has_no_operation_left_unfuzzed keeps it whole.
SCHEMA_OPERATIONS = [
    ("GET", "/health"),
    ("GET", "/health/ready"),
    ("GET", "/api/binance/futures/info"),
    ("POST", INGEST_URL),
    ("GET", "/api/market/open-interest/samples"),
    ("GET", "/api/market/open-interest/liquid-universe"),
    ("GET", "/api/market/open-interest/poller"),
    ("GET", "/api/market/open-interest/screener"),
    ("GET", "/api/market/open-interest/market"),
    ("GET", "/api/open-interest-alerts"),
    ("GET", "/api/liquidation-alerts"),
    ("POST", ALERT_INGEST_URL),
    ("GET", "/api/market/open-interest"),
    ("POST", "/api/market/open-interest"),
    ("GET", "/api/market/open-interest/snapshot"),
    ("GET", "/api/volume-alerts"),
    ("POST", VOLUME_INGEST_URL),
    ("GET", "/api/volume-alerts/recent"),
    ("GET", "/api/market/open-interest/export"),
    ("GET", "/api/open-interest-alerts/export"),
    ("GET", "/api/ops/events"),
    ("GET", "/api/alert-outcomes"),
    ("GET", "/api/alert-rules/{id}/outcomes"),
    ("POST", "/api/alert-rules/backtest"),
    ("GET", "/api/alert-rules/backtest/{job}"),
    ("GET", "/api/open-interest/{symbol}/change-stats"),
    *[
        (method, path)
        for collection in ("/api/alert-rules", "/api/alert-overrides", "/api/alert-channels")
        for method, path in [
            ("GET", collection),
            ("POST", collection),
            ("GET", collection + "/{id}"),
            ("PUT", collection + "/{id}"),
            ("PATCH", collection + "/{id}"),
            ("DELETE", collection + "/{id}"),
        ]
    ],
    ("POST", "/api/alert-channels/{id}/test"),
]

FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_error_shape(response, *, status: int | None = None) -> dict:
    """A refusal: a 4xx whose body is {"error": {...}} with a code and a non-empty message
    (and, for invalid input, the field and the reason)."""
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    if status is not None:
        assert response.status_code == status, (response.status_code, response.content[:500])
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"].strip(), body
    if error["code"] == "invalid":
        # the field may be "" when the offending key is the empty string
        assert isinstance(error.get("field"), str), body
        assert isinstance(error.get("reason"), str) and error["reason"].strip(), body
    return error


def strings_in(value: object) -> set[str]:
    """Every string anywhere in a JSON value (keys too) that could be a stored symbol."""
    if isinstance(value, str):
        return {value} if 0 < len(value) <= 32 and "\x00" not in value else set()
    if isinstance(value, dict):
        return set().union(*(strings_in(k) | strings_in(v) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(*(strings_in(item) for item in value))
    return set()


def stored_counts(body: object) -> tuple[int, int, int]:
    """Stored snapshots, alerts and volume alerts of the symbols a request body names (other processes may
    write other symbols to the same database meanwhile)."""
    symbols = strings_in(body)
    return (
        OpenInterestSnapshot.objects.filter(symbol__in=symbols).count(),
        OpenInterestAlert.objects.filter(symbol__in=symbols).count(),
        VolumeAlert.objects.filter(symbol__in=symbols).count(),
    )


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- strategies ---------------------------------------------------------------------------------

NASTY_STRINGS = [
    "",
    " ",
    "NaN",
    "nan",
    "-NaN",
    "Infinity",
    "-Infinity",
    "inf",
    "sNaN",
    "1e400",
    "1e-400",
    "1E-1001",
    "0E+1001",
    "1E+17",
    "999999999999999999",
    "1000000000000000000",
    "-0",
    "-1",
    "0x10",
    "1_000",
    " 12.5 ",
    "١٢٣",
    "1,5",
    "\x00",
    "BTC\x00USDT",
    "FZBTCUSDT",
    "币安人生USDT",
    "btcusdt",
    "BTC USDT",
    "A" * 21,
    "2025-12-01T12:00:00Z",
    "2025-12-01T12:00:00",
    "2014-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    "yesterday",
    "UP",
    "DOWN",
    "snapshot",
    "realtime",
    "x" * 5000,
    "1e-999999",
    "0E-999999",
    "2025-12-01T12:00:00+23:59",
    "2025-12-01T12:00:00-15:30",
    "9999-12-31T23:59:59-14:00",
    # cursors that decode: empty, non-date, impossible date, offset Postgres refuses
    "cD0=",
    "cD1zb29u",
    "cD0yMDI1LTEzLTQ1KzAwJTNBMDAlM0EwMCUyQjAwJTNBMDA=",
    "cD0yMDI1LTEyLTAxKzEyJTNBMDAlM0EwMCUyQjIzJTNBNTk=",
]
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**18, -(10**18), 10**30, 2**63, -(2**63) - 1, 10**300])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(NASTY_STRINGS)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
valid_times = st.datetimes(
    min_value=datetime(2016, 1, 1), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)
).map(iso)
valid_symbols = st.from_regex(r"[A-Z0-9]{2,10}USDT", fullmatch=True)
valid_decimals = st.decimals(
    min_value=0, max_value=10**12, places=6, allow_nan=False, allow_infinity=False
).map(str) | st.integers(min_value=0, max_value=10**12)


def maybe(valid, junk=json_values):
    """Mostly a valid value, sometimes anything at all."""
    return st.one_of(valid, valid, junk)


def optional_keys(required: dict, optional: dict):
    return st.fixed_dictionaries(required, optional=optional)


snapshot_rows = optional_keys(
    {"symbol": maybe(valid_symbols), "openInterest": maybe(valid_decimals)},
    {
        "markPrice": maybe(valid_decimals),
        "openInterestUsd": maybe(valid_decimals),
        "source": maybe(st.sampled_from(["snapshot", "realtime"])),
        "timestamp": maybe(valid_times),
        "bogus": json_values,
    },
)
snapshot_batches = optional_keys(
    {"data": maybe(st.lists(maybe(snapshot_rows, json_scalars), max_size=6))},
    {
        "timestamp": maybe(valid_times),
        "totalSymbols": maybe(st.integers(min_value=0, max_value=1000)),
        "source": maybe(st.sampled_from(["snapshot", "realtime"])),
        "extra": json_values,
    },
)
alert_bodies = optional_keys(
    {},
    {
        "symbol": maybe(valid_symbols),
        "direction": maybe(st.sampled_from(["UP", "DOWN"])),
        "baseline": maybe(valid_decimals),
        "current": maybe(valid_decimals),
        "pctChange": maybe(st.floats(min_value=-10, max_value=10)),
        "absChange": maybe(st.floats(min_value=-1e6, max_value=1e6)),
        "timestamp": maybe(valid_times),
        "source": maybe(st.sampled_from(["ingest", "oi_realtime_poller", "realtime"])),
        "note": json_values,
    },
)


# --- 1. schema-based: schemathesis against /api/schema/ of the real server -------------------


@pytest.fixture
def fuzz_server(transactional_db, asgi_servers, simulator) -> str:
    """The real ASGI server, with the local Binance simulator behind /api/binance/futures/info:
    one of its own (the shared server an earlier test may have started has no simulator)."""
    return asgi_servers.url({"BINANCE_BASE_URL": simulator.base_url})


def test_the_schema_has_no_operation_left_unfuzzed(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    operations = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert operations == set(SCHEMA_OPERATIONS)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("method", "path"), SCHEMA_OPERATIONS)
def test_schemathesis_finds_no_server_error_and_no_shapeless_refusal(
    method, path, fuzz_server, api_key
):
    schema = schemathesis.openapi.from_url(f"{fuzz_server}/api/schema/")
    operation = schema[path][method]
    headers = {"Authorization": f"Token {api_key}"}
    session = requests.Session()
    calls: list = []
    modes = [GenerationMode.POSITIVE]
    if operation.body or operation.query:
        modes.append(GenerationMode.NEGATIVE)

    for mode in modes:

        @settings(FUZZ, max_examples=8 if "alert-" in path else 40)
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case):
            calls.append(case)
            before = stored_counts(case.body)
            response = case.call(session=session, headers=headers, timeout=30)
            if path == READINESS_PATH:
                # 503 is readiness's documented answer while nothing polls (no beat, no poller
                # here): it must name each failing part, never be a crash
                assert response.status_code in (200, 503), response.text[:300]
                assert response.json()["components"], response.text[:300]
                return
            case.validate_response(
                response,
                checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
            )
            if response.status_code >= 400:
                assert_error_shape(response)
                assert stored_counts(case.body) == before, "a refused request stored rows"

        exercise()
    # an operation without parameters or body has one request to make; the others, many
    assert len(calls) >= len(modes) * (4 if len(modes) == 2 else 1), len(calls)


# --- 2. property-based through the DRF test client (in-process) ---------------------------------


@pytest.mark.django_db
@FUZZ
@given(body=snapshot_batches | json_values)
def test_any_snapshot_batch_is_stored_whole_or_refused_with_a_reason(writer_client, body):
    before, _, _ = stored_counts(body)
    response = writer_client.post(INGEST_URL, body, format="json")
    after, _, _ = stored_counts(body)
    assert response.status_code in (200, 400), (response.status_code, response.content[:500])
    if response.status_code == 400:
        assert_error_shape(response)
        assert after == before, "a refused batch stored rows"
    else:
        result = response.json()
        assert result["inserted"] + result["duplicates"] == result["received"] == len(body["data"])
        assert after - before == result["inserted"]


@pytest.mark.django_db
@FUZZ
@given(body=alert_bodies | json_values)
def test_any_alert_is_stored_or_refused_with_a_reason(writer_client, body):
    _, before, _ = stored_counts(body)
    response = writer_client.post(ALERT_INGEST_URL, body, format="json")
    _, after, _ = stored_counts(body)
    assert response.status_code in (200, 400), (response.status_code, response.content[:500])
    if response.status_code == 400:
        assert_error_shape(response)
        assert after == before, "a refused alert was stored"
    else:
        assert after - before == (1 if response.json()["outcome"] == "created" else 0)


@pytest.mark.django_db
@FUZZ
@given(
    raw=st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | st.sampled_from([b"NaN", b"[1,", b'{"data": [}', b"\xff\xfe", b"1e999999", b"9" * 5000])
)
def test_a_body_that_is_not_json_is_refused_with_a_reason(writer_client, raw):
    for url in (INGEST_URL, ALERT_INGEST_URL, VOLUME_INGEST_URL):
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        before = stored_counts(body)
        response = writer_client.post(url, raw, content_type="application/json")
        assert response.status_code < 500, (url, raw, response.content[:500])
        if response.status_code >= 400:
            assert_error_shape(response)
            assert stored_counts(body) == before


volume_alert_bodies = optional_keys(
    {},
    {
        "symbol": maybe(valid_symbols),
        "asset": maybe(st.sampled_from(["SOL", "BTC", ""])),
        "currentVolume": maybe(st.floats(min_value=0, max_value=1e12)),
        "previousVolume": maybe(st.floats(min_value=0, max_value=1e12)),
        "volumeRatio": maybe(st.floats(min_value=0, max_value=1e3)),
        "price": maybe(st.none() | st.floats(min_value=0, max_value=1e6)),
        "fundingRate": maybe(st.none() | st.floats(min_value=-0.01, max_value=0.01)),
        "candleDirection": maybe(st.sampled_from(["bullish", "bearish"])),
        "message": maybe(st.text(max_size=40)),
        "timestamp": maybe(valid_times),
        "detectionTime": maybe(valid_times),
        "hourTimestamp": maybe(valid_times.map(lambda t: t[:14] + "00:00Z")),
        "isUpdate": maybe(st.booleans()),
        "alertType": maybe(st.sampled_from(["SPIKE", "HALF_UPDATE", "FULL_UPDATE"])),
        "priceChange": maybe(st.floats(min_value=-1, max_value=10)),
        "oiChange": maybe(st.floats(min_value=-1, max_value=10)),
        "note": json_values,
    },
)


@pytest.mark.django_db
@FUZZ
@given(body=volume_alert_bodies | json_values)
def test_any_volume_alert_is_stored_once_or_refused_with_a_reason(writer_client, body):
    _, _, before = stored_counts(body)
    response = writer_client.post(VOLUME_INGEST_URL, body, format="json")
    _, _, after = stored_counts(body)
    assert response.status_code in (200, 400), (response.status_code, response.content[:500])
    if response.status_code == 400:
        assert_error_shape(response)
        assert after == before, "a refused volume alert was stored"
    else:
        result = response.json()
        assert result["success"] is True
        assert after - before == (0 if result["duplicate"] else 1)
        again = writer_client.post(VOLUME_INGEST_URL, body, format="json").json()
        assert (again["alertId"], again["duplicate"]) == (result["alertId"], True)


# A way to spoil one row, and the field the refusal must name.
ROW_CORRUPTIONS = [
    ("openInterest", lambda row: row | {"openInterest": "-1"}),
    ("openInterest", lambda row: row | {"openInterest": "abc"}),
    ("openInterest", lambda row: row | {"openInterest": "NaN"}),
    ("openInterest", lambda row: row | {"openInterest": "Infinity"}),
    ("openInterest", lambda row: row | {"openInterest": "1e19"}),
    ("openInterest", lambda row: row | {"openInterest": "1e-999999"}),
    ("openInterest", lambda row: row | {"openInterest": None}),
    ("openInterest", lambda row: row | {"openInterest": True}),
    ("openInterest", lambda row: row | {"openInterest": [1]}),
    ("openInterest", lambda row: {k: v for k, v in row.items() if k != "openInterest"}),
    ("symbol", lambda row: row | {"symbol": "BTC USDT"}),
    ("symbol", lambda row: row | {"symbol": ""}),
    ("symbol", lambda row: row | {"symbol": 42}),
    ("symbol", lambda row: row | {"symbol": "A" * 21}),
    ("symbol", lambda row: {k: v for k, v in row.items() if k != "symbol"}),
    ("markPrice", lambda row: row | {"markPrice": "x"}),
    ("markPrice", lambda row: row | {"markPrice": "-5"}),
    ("markPrice", lambda row: row | {"openInterest": "1e17", "markPrice": "100"}),
    ("openInterestUsd", lambda row: row | {"openInterestUsd": {}}),
    ("source", lambda row: row | {"source": "bogus"}),
    ("timestamp", lambda row: row | {"timestamp": "yesterday"}),
    ("timestamp", lambda row: row | {"timestamp": "2025-12-01T12:00:00"}),
    ("timestamp", lambda row: row | {"timestamp": "2014-01-01T00:00:00Z"}),
    ("timestamp", lambda row: row | {"timestamp": iso(datetime.now(UTC) + timedelta(days=3))}),
    ("timestamp", lambda row: row | {"timestamp": 1733000000}),
    ("timestamp", lambda row: row | {"timestamp": "2025-12-01T12:00:00+23:59"}),
    ("data", lambda row: [row]),
    ("data", lambda row: "BTCUSDT"),
    ("data", lambda row: None),
]


@pytest.mark.django_db
@FUZZ
@given(
    n_rows=st.integers(min_value=1, max_value=40),
    data=st.data(),
    corruption=st.sampled_from(range(len(ROW_CORRUPTIONS))),
    as_duplicate=st.booleans(),
)
def test_one_bad_row_anywhere_refuses_the_whole_batch_naming_that_row(
    writer_client, n_rows, data, corruption, as_duplicate
):
    bad_index = data.draw(st.integers(min_value=0, max_value=n_rows - 1), label="bad_index")
    rows = [
        {
            "symbol": f"FZ{i}USDT",
            "openInterest": data.draw(valid_decimals, label=f"oi{i}"),
            "markPrice": "2.5",
            "source": "realtime",
            "timestamp": "2025-12-01T12:00:00Z",
        }
        for i in range(n_rows)
    ]
    if as_duplicate and bad_index > 0:
        # the same symbol, timestamp and source as an earlier row
        earlier = data.draw(st.integers(min_value=0, max_value=bad_index - 1), label="earlier")
        rows[bad_index] = rows[bad_index] | {"symbol": rows[earlier]["symbol"]}
        field = "symbol"
    else:
        field, spoil = ROW_CORRUPTIONS[corruption]
        rows[bad_index] = spoil(rows[bad_index])
    body = {"timestamp": "2025-12-01T12:00:00Z", "data": rows}

    response = writer_client.post(INGEST_URL, body, format="json")

    error = assert_error_shape(response, status=400)
    assert error["row"] == bad_index, error
    assert error["field"] == field, error
    assert error["message"].startswith(f"row {bad_index}, field '{field}': "), error
    assert stored_counts(body) == (0, 0, 0)


def valid_alert() -> dict:
    return {
        "symbol": "FUZZUSDT",
        "direction": "UP",
        "baseline": "1000",
        "current": "1100",
        "pctChange": 0.1,
        "absChange": 100,
        "timestamp": "2025-12-01T12:00:00Z",
        "source": "ingest",
    }


ALERT_CORRUPTIONS = {
    "symbol": [None, "", "btc usdt", 7, "A" * 21],
    "direction": ["SIDEWAYS", "up", None, 1],
    "baseline": ["0", "-1", "NaN", "1e30", [], None],
    "current": ["-1", "Infinity", "abc", {}],
    "pctChange": ["-0.1", 0, "NaN", "x", 0.5, "1e-999999"],
    "absChange": [-100, 0, "1e18", True, 5000],
    "timestamp": [
        "2025-12-01",
        "2014-01-01T00:00:00Z",
        0,
        "2025-12-01T12:00:00",
        None,
        "2025-12-01T12:00:00+23:59",
    ],
    "source": ["bogus", None, 3],
}


@pytest.mark.django_db
@FUZZ
@given(
    field=st.sampled_from(sorted(ALERT_CORRUPTIONS)),
    data=st.data(),
    drop=st.booleans(),
)
def test_one_bad_alert_field_is_named_and_nothing_is_stored(writer_client, field, data, drop):
    body = valid_alert()
    if drop:
        del body[field]
    else:
        body[field] = data.draw(st.sampled_from(ALERT_CORRUPTIONS[field]), label="value")

    response = writer_client.post(ALERT_INGEST_URL, body, format="json")

    error = assert_error_shape(response, status=400)
    assert error["field"] == field, error
    assert stored_counts(body) == (0, 0, 0)


QUERY_PARAMS = [
    "symbol", "limit", "source", "direction", "since", "after_id", "cursor", "token", "tier",
    "alertType", "hours", "ts", "from", "to",
]  # fmt: skip
query_values = (
    st.text(max_size=20)
    | st.integers().map(str)
    | st.sampled_from(NASTY_STRINGS)
    | st.sampled_from(["1e3", "99999999999999999999999", "-5", "0", "5001", "abc", "%00"])
)
query_dicts = st.dictionaries(
    st.sampled_from(QUERY_PARAMS) | st.text(max_size=8), query_values, max_size=5
)
raw_query_strings = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60
) | st.sampled_from(
    ["%%%", "symbol=%ff%fe", "symbol=%00", "limit=%", "a=b=c&&&", "symbol=BTCUSDT&symbol=ETHUSDT"]
)


@pytest.mark.django_db
@FUZZ
@given(
    endpoint=st.sampled_from(sorted(READ_URLS)),
    params=query_dicts,
    raw=st.none() | raw_query_strings,
)
def test_any_query_string_gets_an_answer_or_a_refusal_with_a_reason(
    api_client, endpoint, params, raw
):
    url = READ_URLS[endpoint]
    query = {"data": params} if raw is None else {"QUERY_STRING": raw}
    response = api_client.get(url, **query)
    assert response.status_code < 500, (url, params, raw, response.content[:500])
    assert response.status_code in (200, 400, 404), (url, params, raw, response.status_code)
    if response.status_code >= 400:
        assert_error_shape(response)


def valid_volume_alert() -> dict:
    return {
        "symbol": "AUTHUSDT", "asset": "AUTH", "currentVolume": 2e7, "previousVolume": 5e6,
        "volumeRatio": 4.0, "message": "AUTH hourly volume 20.00M", "timestamp":
        "2025-12-01T12:10:02Z", "hourTimestamp": "2025-12-01T12:00:00Z",
    }  # fmt: skip


def a_valid_batch() -> dict:
    return {
        "timestamp": "2025-12-01T12:00:00Z",
        "data": [{"symbol": "AUTHUSDT", "openInterest": "10", "source": "realtime"}],
    }


header_text = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f"),
    max_size=60,
)
bad_authorizations = (
    st.none()
    | st.sampled_from(
        [
            "",
            "Token",
            "Token ",
            "Bearer",
            "Token a b",
            "Token not-a-key",
            "Bearer not-a-key",
            "token ' OR 1=1 --",
            "Basic dXNlcjpwYXNz",
            "Token\x00abc",
            "Token " + "k" * 2000,
        ]
    )
    | header_text
    | header_text.map(lambda text: f"Token {text}")
)


@pytest.mark.django_db
@FUZZ
@given(
    authorization=bad_authorizations,
    header=st.sampled_from(["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"]),
    url=st.sampled_from([INGEST_URL, ALERT_INGEST_URL, VOLUME_INGEST_URL]),
)
def test_writes_without_a_valid_token_are_refused_and_store_nothing(
    api_client, api_key, authorization, header, url
):
    assume(authorization is None or api_key not in authorization)
    headers = {} if authorization is None else {header: authorization}
    body = {
        INGEST_URL: a_valid_batch,
        ALERT_INGEST_URL: valid_alert,
        VOLUME_INGEST_URL: valid_volume_alert,
    }[url]()

    response = api_client.post(url, body, format="json", **headers)

    assert_error_shape(response, status=401)
    assert stored_counts(body) == (0, 0, 0)


EDGE_NUMBERS = [
    "1e-999999",
    "0." + "0" * 20000 + "1",
    "1E-1001",
    "0E+1001",
    "1e-400",
    "0E-400",
    "5e-324",
    5e-324,
    "1E+17",
    "999999999999999999.999999999999",
    "0.0000000000001",
    "-0",
    "-0.0",
    " 7 ",
    "١٢٣",
    "1_000",
    10**17,
    1.7976931348623157e308,
]


@pytest.mark.django_db
@pytest.mark.parametrize("number", EDGE_NUMBERS, ids=repr)
@pytest.mark.parametrize("field", ["openInterest", "markPrice", "openInterestUsd"])
def test_edge_numbers_in_a_snapshot_are_stored_or_refused_never_a_server_error(
    writer_client, number, field
):
    row = {"symbol": "FZEDGEUSDT", "openInterest": "1", "source": "realtime"} | {field: number}
    body = {"timestamp": "2025-12-01T12:00:00Z", "data": [row]}

    response = writer_client.post(INGEST_URL, body, format="json")

    assert response.status_code in (200, 400), (response.status_code, response.content[:500])
    if response.status_code == 400:
        error = assert_error_shape(response)
        assert error["row"] == 0 and error["field"] in (field, "markPrice"), error
        assert stored_counts(body) == (0, 0, 0)
    else:
        assert stored_counts(body) == (1, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("number", EDGE_NUMBERS, ids=repr)
@pytest.mark.parametrize("field", ["baseline", "current", "pctChange", "absChange"])
def test_edge_numbers_in_an_alert_are_stored_or_refused_never_a_server_error(
    writer_client, number, field
):
    body = valid_alert() | {field: number}

    response = writer_client.post(ALERT_INGEST_URL, body, format="json")

    assert response.status_code in (200, 400), (response.status_code, response.content[:500])
    if response.status_code == 400:
        # a changed baseline or current makes the (unchanged) pctChange and absChange disagree
        assert assert_error_shape(response)["field"] in (field, "pctChange", "absChange")
        assert stored_counts(body) == (0, 0, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("url", [INGEST_URL, ALERT_INGEST_URL])
@pytest.mark.parametrize("raw", [b"[" * 50_000, b'{"a":' * 50_000], ids=["arrays", "objects"])
def test_deeply_nested_json_is_refused_with_a_reason(writer_client, url, raw):
    response = writer_client.post(url, raw, content_type="application/json")

    assert_error_shape(response, status=400)
