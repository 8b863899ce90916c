"""Bad input on the live feed (issue 8): ws://.../ws/open-interest/ on the real ASGI server.

Every bad message gets an {"type": "error", "error": <code>, ...} frame, never a crash: the
connection stays open and still answers a ping, and the server logs no traceback. A malformed
query string on connect gets an error frame too.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from feed.frames import ClientAction, ErrorCode, FrameType
from liquidity.models import LiquidSymbol
from tests.fixtures.feed import frames_until_pong
from tests.fixtures.processes import LogSince

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

KNOWN_SYMBOL = "FZKNOWNUSDT"
FEED_FRAMES = {FrameType.SUBSCRIBED, FrameType.OPEN_INTEREST_ALERT, FrameType.OPEN_INTEREST_UPDATE}


@pytest.fixture
def asgi_server_env() -> dict[str, str]:
    """Fuzzing sends hundreds of messages a second: lift the rate limit (tested elsewhere)."""
    return {"WS_MAX_MESSAGES_PER_SEC": "100000", "WS_MESSAGE_BURST": "100000"}


@pytest.fixture
def feed_url(asgi_server) -> str:
    now = datetime.now(UTC)
    LiquidSymbol.objects.create(
        symbol=KNOWN_SYMBOL, quote_volume_24h=Decimal(5_000_000), entered_at=now, last_seen_at=now
    )
    return asgi_server.replace("http://", "ws://") + "/ws/open-interest/"


def assert_error_frames(frames: list[dict], message) -> list[dict]:
    errors = [frame for frame in frames if frame.get("type") == FrameType.ERROR]
    assert errors, (message, frames)
    for error in errors:
        assert isinstance(error.get("error"), str) and error["error"], (message, error)
        assert isinstance(error.get("message"), str) and error["message"], (message, error)
    others = {frame.get("type") for frame in frames} - {FrameType.ERROR}
    assert others <= FEED_FRAMES, (message, frames)
    return errors


def assert_no_traceback_in_server_log(log_path: LogSince) -> None:
    log = log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


# --- what a bad message can be ----------------------------------------------------------------


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
invalid_json = st.text(max_size=80).filter(_not_json) | st.sampled_from(
    ["", "{", "}", "[", '{"action": "ping"', "{'action': 'ping'}", "NaN-ish", "\x00", "null,"]
)
non_objects = (
    st.lists(json_values, max_size=3) | st.integers() | st.text(max_size=20) | st.none()
).map(json.dumps)
unknown_actions = st.fixed_dictionaries(
    {},
    optional={
        "action": json_values.filter(lambda a: a not in list(ClientAction)),
        "symbols": json_values,
        "after_id": json_values,
    },
).map(json.dumps)
unknown_symbol_names = st.from_regex(r"ZZ[A-Z0-9]{1,8}USDT", fullmatch=True)
malformed_symbol_names = st.sampled_from(
    ["", " ", "btc usdt", "%%%", "A" * 21, "BTC\x00USDT", "<script>", "../../etc/passwd"]
) | st.text(max_size=30).filter(lambda s: not s.isalnum())
bad_subscribes = st.one_of(
    # a non-empty list with at least one unknown or malformed symbol
    st.lists(
        unknown_symbol_names | malformed_symbol_names | st.just(KNOWN_SYMBOL), min_size=1
    ).filter(lambda symbols: set(symbols) != {KNOWN_SYMBOL}),
    # not a list of strings
    json_values.filter(
        lambda v: not (isinstance(v, list) and all(isinstance(s, str) for s in v)) and v is not None
    ),
    st.lists(st.integers() | st.none() | st.floats(allow_nan=False), min_size=1),
).map(lambda symbols: json.dumps({"action": "subscribe", "symbols": symbols}))
bad_catch_ups = st.one_of(
    st.integers(max_value=-1),
    st.booleans(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["1", "-1", "1e3", "99999999999999999999"]),
    st.none(),
    st.lists(st.integers(), max_size=2),
).map(lambda after_id: json.dumps({"action": "catch_up", "after_id": after_id})) | st.just(
    '{"action": "catch_up"}'
)
binary_frames = (
    st.binary(max_size=100).map(lambda raw: b"\xff" + raw)
    | non_objects.map(str.encode)
    | invalid_json.map(lambda text: text.encode("utf-8", errors="replace"))
)
long_strings = st.sampled_from(
    [
        "x" * 60_000,  # under the 64 KiB message limit (over it: test_websocket_hostile.py)
        "[" * 500 + "]" * 499,
        json.dumps({"action": "y" * 60_000}),
        json.dumps({"action": "subscribe", "symbols": ["ZZ" + str(i) for i in range(2_000)]}),
        json.dumps({"action": "subscribe", "symbols": ["Q" * 10_000]}),
        json.dumps({"action": "catch_up", "after_id": "9" * 10_000}),
    ]
)
bad_messages = st.one_of(
    invalid_json,
    non_objects,
    unknown_actions,
    bad_subscribes,
    bad_catch_ups,
    binary_frames,
    long_strings,
)


def test_every_bad_message_gets_an_error_frame_and_the_connection_lives_on(
    feed_url, asgi_server_log
):
    with connect(feed_url, max_size=2**24) as ws:
        assert frames_until_pong(ws)[0] == {"type": "subscribed", "symbols": "*"}
        sent: list[str | bytes] = []

        @settings(
            max_examples=300,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(message=bad_messages)
        def a_bad_message_is_answered_with_an_error(message):
            sent.append(message)
            ws.send(message)
            assert_error_frames(frames_until_pong(ws), message)

        a_bad_message_is_answered_with_an_error()
        assert len(sent) >= 200, len(sent)
        kinds = {type(message) for message in sent}
        assert kinds == {str, bytes}, kinds

        # still subscribed and answering after all of that
        ws.send(json.dumps({"action": "subscribe", "symbols": [KNOWN_SYMBOL]}))
        assert frames_until_pong(ws) == [{"type": "subscribed", "symbols": [KNOWN_SYMBOL]}]
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
    assert_no_traceback_in_server_log(asgi_server_log)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("message", ["[" * 60_000, '{"a":' * 12_000], ids=["arrays", "objects"])
def test_a_deeply_nested_message_gets_an_error_frame(feed_url, message, binary, asgi_server_log):
    with connect(feed_url, max_size=2**24) as ws:
        frames_until_pong(ws)
        ws.send(message.encode() if binary else message)
        errors = assert_error_frames(frames_until_pong(ws), message[:20])
        assert errors[0]["error"] == ErrorCode.INVALID_JSON
    assert_no_traceback_in_server_log(asgi_server_log)


@pytest.mark.parametrize(
    "after_id",
    [0, 2**63 - 1, 2**63, 10**30, 10**4000],
    ids=["0", "2^63-1", "2^63", "1e30", "1e4000"],
)
def test_catching_up_after_any_non_negative_id_answers_without_a_crash(
    feed_url, after_id, asgi_server_log
):
    with connect(feed_url, max_size=2**24) as ws:
        frames_until_pong(ws)
        ws.send(f'{{"action": "catch_up", "after_id": {after_id}}}')
        frames = frames_until_pong(ws)
        assert {frame.get("type") for frame in frames} <= FEED_FRAMES | {FrameType.ERROR}, frames
    assert_no_traceback_in_server_log(asgi_server_log)


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("symbols=%%%", ErrorCode.UNKNOWN_SYMBOLS),
        ("symbols=%ff%fe", ErrorCode.UNKNOWN_SYMBOLS),
        ("symbols=btc%20usdt,ZZNOPEUSDT", ErrorCode.UNKNOWN_SYMBOLS),
        ("symbols=" + "A" * 5000, ErrorCode.UNKNOWN_SYMBOLS),
        ("symbols=%00", ErrorCode.UNKNOWN_SYMBOLS),
        ("after_id=abc", ErrorCode.INVALID_AFTER_ID),
        ("after_id=-1", ErrorCode.INVALID_AFTER_ID),
        ("after_id=1.5", ErrorCode.INVALID_AFTER_ID),
        ("after_id=%00", ErrorCode.INVALID_AFTER_ID),
        (f"after_id={quote('²')}", ErrorCode.INVALID_AFTER_ID),  # a Unicode digit int() refuses
        ("symbols=%%%&after_id=abc", ErrorCode.UNKNOWN_SYMBOLS),
    ],
)
def test_a_malformed_query_string_gets_an_error_frame_not_a_crash(
    feed_url, query, code, asgi_server_log
):
    with connect(f"{feed_url}?{query}", max_size=2**24) as ws:
        errors = assert_error_frames(frames_until_pong(ws), query)
        assert code in {error["error"] for error in errors}
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
    assert_no_traceback_in_server_log(asgi_server_log)


@pytest.mark.parametrize(
    "query",
    ["", "symbols=", "after_id=", "symbols=,,,", "after_id=99999999999999999999999", "a=%%%&&="],
)
def test_an_odd_but_harmless_query_string_is_answered(feed_url, query, asgi_server_log):
    with connect(f"{feed_url}?{query}", max_size=2**24) as ws:
        frames = frames_until_pong(ws)
        assert frames and frames[0]["type"] in (FrameType.SUBSCRIBED, FrameType.ERROR), frames
    assert_no_traceback_in_server_log(asgi_server_log)
