"""GET /api/open-interest-alerts/export and `manage.py export_alerts`: alerts as CSV through the
real ASGI server, every column, filters, refusals, and the command's bytes equal to the API's."""

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from django.core.management import call_command

from alerts.models import AlertDirection, AlertSource, OpenInterestAlert
from alerts.selectors import ALERT_EXPORT_COLUMNS
from common.formatting import plain_decimal
from common.services import api_token_create

pytestmark = pytest.mark.integration

EXPORT_PATH = "/api/open-interest-alerts/export"
START = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
HEADER = [name for name, _ in ALERT_EXPORT_COLUMNS]


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, Decimal):
        return plain_decimal(value)
    return str(value)


@pytest.fixture
def stored_alerts(transactional_db) -> list[OpenInterestAlert]:
    """200 alerts of 4 symbols, both directions and sources, half with the rule's context."""
    alerts = []
    for i in range(200):
        up = i % 2 == 0
        context = i % 4 < 2
        baseline = Decimal(100_000 + i)
        current = baseline * (Decimal("1.1") if up else Decimal("0.9"))
        alerts.append(
            OpenInterestAlert(
                symbol=f"EXP{'ABCD'[i % 4]}USDT",
                direction=AlertDirection.UP if up else AlertDirection.DOWN,
                baseline=baseline, current=current, pct_change=(current - baseline) / baseline,
                abs_change=current - baseline,
                source=AlertSource.POLLER if i % 3 else AlertSource.INGEST,
                ts=START + timedelta(seconds=37 * i, microseconds=i),
                rule_name="5m" if context else "", window_sec=300 if context else None,
                reference="window_low" if context else "",
                threshold_pct=Decimal("0.03") if context else None,
                price_change_pct=Decimal("-0.0123") if context else None,
                mark_price=Decimal("97000.5") if context else None,
                funding_rate=Decimal("0.0001") if context else None,
                oi_usd_before=baseline * 97 if context else None,
                oi_usd_after=current * 97 if context else None,
                quote_volume_24h=Decimal("123456789.12") if context else None,
                alerts_24h=i % 5 + 1 if context else None,
            )
        )  # fmt: skip
    OpenInterestAlert.objects.bulk_create(alerts)
    return list(OpenInterestAlert.objects.all())


@pytest.fixture
def token(transactional_db) -> str:
    return api_token_create(name="alert-exporter")[1]


def export(base_url: str, token: str | None, **params) -> requests.Response:
    headers = {"X-API-Key": token} if token else {}
    return requests.get(f"{base_url}{EXPORT_PATH}", params=params, headers=headers, timeout=60)


def expected(alerts, *, since, until, symbols=None, source=None) -> list[list[str]]:
    chosen = sorted(
        (
            alert
            for alert in alerts
            if since <= alert.ts < until
            and (symbols is None or alert.symbol in symbols)
            and source in (None, alert.source)
        ),
        key=lambda alert: (alert.ts, alert.id),
    )
    return [HEADER, *([cell(getattr(alert, name)) for name in HEADER] for alert in chosen)]


def rows_of(response: requests.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_csv_is_every_alert_with_every_column(asgi_server, stored_alerts, token):
    until = START + timedelta(days=1)
    lines = rows_of(export(asgi_server, token, **{"from": START.isoformat(), "to": until}))
    assert len(lines) == 201
    assert lines == expected(stored_alerts, since=START, until=until)


def test_filters_by_time_symbols_and_source(asgi_server, stored_alerts, token):
    since, until = START + timedelta(minutes=10), START + timedelta(minutes=80)
    lines = rows_of(
        export(
            asgi_server, token, **{"from": str(int(since.timestamp() * 1000)), "to": until},
            symbols="EXPBUSDT,EXPCUSDT", source=AlertSource.POLLER,
        )
    )  # fmt: skip
    assert lines == expected(
        stored_alerts, since=since, until=until, symbols={"EXPBUSDT", "EXPCUSDT"},
        source=AlertSource.POLLER,
    )  # fmt: skip
    assert 5 < len(lines) < 100


def test_an_empty_result_is_the_header_alone(asgi_server, stored_alerts, token):
    response = export(asgi_server, token, **{"from": "2024-01-01T00:00:00Z", "to": "1704153600000"})
    assert response.content.decode().splitlines() == [",".join(HEADER)]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-12-01T00:00:00Z"}, "to"),
        ({"from": "-5", "to": "2025-12-02T00:00:00Z"}, "from"),
        ({"from": "2025-12-01T00:00:00Z", "to": "2025-11-30T00:00:00Z"}, "to"),
        ({"from": "2025-12-01T00:00:00Z", "to": "2025-12-02T00:00:00Z", "source": "realtime"},
         "source"),
        ({"from": "2025-12-01T00:00:00Z", "to": "2025-12-02T00:00:00Z", "symbols": "A;B"},
         "symbols"),
    ],
)  # fmt: skip
def test_bad_parameters_are_400s_naming_the_field(asgi_server, token, params, field):
    response = export(asgi_server, token, **params)
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field), error


def test_no_token_is_a_401(asgi_server, stored_alerts):
    response = export(asgi_server, None, **{"from": START.isoformat(), "to": "1764633600000"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_the_command_writes_what_the_api_answers(asgi_server, stored_alerts, token, tmp_path):
    since, until = START + timedelta(minutes=5), START + timedelta(hours=1)
    response = export(
        asgi_server, token, **{"from": since.isoformat(), "to": until.isoformat()},
        symbols="EXPAUSDT,EXPDUSDT",
    )  # fmt: skip
    output = tmp_path / "alerts.csv"
    call_command(
        "export_alerts", "--from", since.isoformat(), "--to", until.isoformat(),
        "--symbols", "EXPAUSDT,EXPDUSDT", "--output", str(output),
    )  # fmt: skip
    assert output.read_bytes() == response.content
    assert len(rows_of(response)) > 10
