"""Alert outcomes: the mark price and OI 5 min, 15 min and 1 h after each alert, measured by the
outcomes job from the stored samples (real Postgres; a real Celery worker for the task), and
their statistics per rule and regime through the selector and the API."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.db.models import F
from django.utils import timezone

from alerts.models import AlertForwardOutcome, AlertRule, OpenInterestAlert
from alerts.outcome_selectors import alert_outcome_report
from alerts.outcome_services import alert_outcomes_fill
from liquidity.models import UniverseRefresh
from oi.models import OpenInterestSnapshot
from tests.fixtures.processes import wait_until

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# measured once the tolerance (30 s: OI_MAX_INTERVAL_SEC is 20 s) and 60 s of settling have passed
AFTER_5M = T0 + timedelta(seconds=300 + 30 + 60 + 1)
AFTER_15M = T0 + timedelta(seconds=900 + 30 + 60 + 1)
AFTER_1H = T0 + timedelta(seconds=3600 + 30 + 60 + 1)


@pytest.fixture(autouse=True)
def poll_interval(settings):
    settings.OI_MAX_INTERVAL_SEC = 20.0


def an_alert(symbol="BTCUSDT", *, ts=T0, current="1000", mark_price="100", **fields):
    defaults = {
        "direction": "UP", "baseline": Decimal(900), "pct_change": Decimal("0.11"),
        "abs_change": Decimal(100), "source": "oi_realtime_poller", "rule_name": "spike 5m",
        "window_sec": 300, "regime": "long_build",
    }  # fmt: skip
    defaults.update(fields)
    return OpenInterestAlert.objects.create(
        symbol=symbol, ts=ts, current=Decimal(current),
        mark_price=None if mark_price is None else Decimal(mark_price), **defaults,
    )  # fmt: skip


def store_samples(symbol, points):
    """points: (seconds after T0, OI, mark price or None)."""
    OpenInterestSnapshot.objects.bulk_create(
        OpenInterestSnapshot(
            symbol=symbol,
            ts=T0 + timedelta(seconds=sec),
            open_interest=Decimal(oi),
            mark_price=None if price is None else Decimal(price),
            source="realtime",
        )
        for sec, oi, price in points
    )


def price_path(sec: int) -> tuple[str, str]:
    """OI and price every 10 s: a rise to +1% price / +1% OI at 5 min, −1% / +3% at 15 min, flat
    price (+0.05%) and −5% OI at 1 h; in between, values that must not be picked."""
    exact = {300: ("1010", "101"), 900: ("1030", "99"), 3600: ("950", "100.05")}
    return exact.get(sec, ("1234", "123"))


def outcomes(alert) -> dict[int, AlertForwardOutcome]:
    return {o.horizon_sec: o for o in AlertForwardOutcome.objects.filter(alert=alert)}


@pytest.mark.django_db
def test_each_horizon_is_measured_from_the_stored_sample_at_that_time():
    alert = an_alert()
    store_samples("BTCUSDT", [(sec, *price_path(sec)) for sec in range(0, 3700, 10)])

    alert_outcomes_fill(now=AFTER_1H)

    got = outcomes(alert)
    assert sorted(got) == [300, 900, 3600]
    five, fifteen, hour = got[300], got[900], got[3600]
    assert (five.status, five.mark_price, five.open_interest) == ("measured", 101, 1010)
    assert five.price_change == pytest.approx(0.01) and five.oi_change == pytest.approx(0.01)
    assert fifteen.price_change == pytest.approx(-0.01) and fifteen.oi_change == pytest.approx(0.03)
    assert hour.price_change == pytest.approx(0.0005) and hour.oi_change == pytest.approx(-0.05)
    assert hour.sample_ts == T0 + timedelta(hours=1)


@pytest.mark.django_db
def test_the_nearest_sample_within_the_tolerance_is_taken_and_none_beyond_it():
    alert = an_alert("ETHUSDT")
    store_samples("ETHUSDT", [
        (300 - 25, "1100", "110"), (300 + 12, "1010", "101"),   # 5m: +12 s is nearer
        (900 - 31, "1200", "120"), (900 + 31, "1200", "120"),   # 15m: a gap of ±31 s
        # 1h: no sample at all (the symbol left the universe)
    ])  # fmt: skip

    alert_outcomes_fill(now=AFTER_1H)

    got = outcomes(alert)
    assert got[300].sample_ts == T0 + timedelta(seconds=312)
    assert got[300].price_change == pytest.approx(0.01)
    for horizon in (900, 3600):
        assert got[horizon].status == "no_data"
        assert (got[horizon].price_change, got[horizon].oi_change) == (None, None)
        assert got[horizon].sample_ts is None


@pytest.mark.django_db
def test_a_horizon_not_yet_due_stays_empty_until_its_time():
    alert = an_alert()
    store_samples("BTCUSDT", [(sec, *price_path(sec)) for sec in range(0, 3700, 10)])

    alert_outcomes_fill(now=AFTER_5M - timedelta(seconds=2))
    assert outcomes(alert) == {}
    alert_outcomes_fill(now=AFTER_5M)
    assert sorted(outcomes(alert)) == [300]
    alert_outcomes_fill(now=AFTER_15M)
    assert sorted(outcomes(alert)) == [300, 900]
    alert_outcomes_fill(now=AFTER_1H)
    assert sorted(outcomes(alert)) == [300, 900, 3600]


@pytest.mark.django_db
def test_a_rerun_changes_nothing_and_a_bounded_run_catches_up_oldest_first():
    alerts = [an_alert(ts=T0 + timedelta(minutes=i)) for i in range(3)]
    store_samples("BTCUSDT", [(sec, "1000", "100") for sec in range(0, 3900, 10)])
    later = AFTER_1H + timedelta(minutes=5)

    first = alert_outcomes_fill(now=later, limit=4)
    assert (first.measured, first.more_due) == (4, True)
    assert sorted(outcomes(alerts[0])) == [300, 900, 3600] and sorted(outcomes(alerts[1])) == [300]
    rest = alert_outcomes_fill(now=later, limit=100)
    assert (rest.measured, rest.more_due) == (5, False)
    rows = list(AlertForwardOutcome.objects.order_by("id").values())

    # a sample changing afterwards (or a second run at once) does not rewrite a measured horizon
    OpenInterestSnapshot.objects.filter(symbol="BTCUSDT").update(mark_price=Decimal(200))
    assert alert_outcomes_fill(now=later + timedelta(hours=1)).measured == 0
    assert list(AlertForwardOutcome.objects.order_by("id").values()) == rows


@pytest.mark.django_db
def test_an_alert_without_a_price_takes_the_stored_one_at_its_time_or_measures_oi_only():
    priced = an_alert("SOLUSDT", mark_price=None)
    store_samples("SOLUSDT", [(0, "1000", "50"), (300, "1100", "51")])
    unpriced = an_alert("XRPUSDT", mark_price=None)
    store_samples("XRPUSDT", [(0, "1000", None), (300, "900", "2")])

    alert_outcomes_fill(now=AFTER_5M)

    assert outcomes(priced)[300].price_change == pytest.approx(0.02)
    five = outcomes(unpriced)[300]
    assert (five.status, five.price_change) == ("no_price", None)
    assert five.oi_change == pytest.approx(-0.1)


# --- statistics -------------------------------------------------------------------------------

SINCE = T0 - timedelta(days=1)
UNTIL = T0 + timedelta(days=1)


def outcome_row(alert, horizon, price_change, oi_change, status="measured"):
    return AlertForwardOutcome(
        alert=alert, horizon_sec=horizon, status=status,
        price_change=price_change, oi_change=oi_change,
    )  # fmt: skip


@pytest.fixture
def two_rules_of_alerts(db):
    """Rule "only two" (scope: 2 symbols) with 4 long-build and 1 short-build alerts measured at
    5 min, one of them with no data at 15 min, one alert still pending; another rule's alert and
    an alert outside the period that must not count."""
    rule = AlertRule.objects.create(
        name="only two", window_sec=300, threshold_pct=Decimal("0.03"), scope="only",
        symbols=["BTCUSDT", "ETHUSDT"],
    )  # fmt: skip
    longs = [(0.02, 0.01), (0.01, 0.04), (-0.005, 0.0), (0.0005, -0.003)]
    rows = []
    for i, (price, oi) in enumerate(longs):
        alert = an_alert(
            "BTCUSDT" if i % 2 else "ETHUSDT", ts=T0 + timedelta(minutes=i), rule=rule,
            rule_name="only two", regime="long_build",
        )  # fmt: skip
        rows.append(outcome_row(alert, 300, price, oi))
    short = an_alert(ts=T0 + timedelta(minutes=9), rule=rule, rule_name="only two",
                     regime="short_build")  # fmt: skip
    rows += [outcome_row(short, 300, -0.03, 0.05), outcome_row(short, 900, None, None, "no_data")]
    an_alert(ts=T0 + timedelta(minutes=20), rule=rule, rule_name="only two", regime="short_build")
    other = an_alert(ts=T0, rule_name="another", regime="long_build")
    rows.append(outcome_row(other, 300, 0.5, 0.5))
    old = an_alert(ts=SINCE - timedelta(hours=1), rule=rule, rule_name="only two")
    rows.append(outcome_row(old, 300, 0.9, 0.9))
    AlertForwardOutcome.objects.bulk_create(rows)
    UniverseRefresh.objects.create(started_at=SINCE, finished_at=SINCE, ok=True, members=10)
    return rule


def horizon(stats, label):
    return next(h for h in stats.horizons if h.horizon.label == label)


def test_statistics_per_rule_and_regime_match_the_hand_computed_ones(two_rules_of_alerts):
    report = alert_outcome_report(rule_names=["only two"], since=SINCE, until=UNTIL, now=UNTIL)

    (rule,) = report.rules
    assert (rule.rule_name, rule.rule_id, rule.symbols_watched) == (
        "only two", two_rules_of_alerts.pk, 2.0,
    )  # fmt: skip
    assert report.days == pytest.approx(2.0)
    overall = rule.overall
    assert (overall.alerts, overall.symbols) == (6, 2)
    assert overall.alerts_per_symbol_day == pytest.approx(6 / (2 * 2.0))
    five = horizon(overall, "5m")
    assert (five.measured, five.no_data, five.pending) == (5, 0, 1)
    # price at 5 min, sorted: -3%, -0.5%, +0.05%, +1%, +2% (percentile_cont: linear)
    assert (five.price.q1, five.price.median, five.price.q3) == pytest.approx(
        (-0.005, 0.0005, 0.01)
    )
    # +0.05% is inside the 5-minute band of 0.1%: flat
    assert (five.price.up, five.price.down, five.price.flat) == pytest.approx((0.4, 0.4, 0.2))
    # OI at 5 min, sorted: -0.3%, 0, +1%, +4%, +5%; the band is 0.2%
    assert five.open_interest.median == pytest.approx(0.01)
    assert (five.open_interest.up, five.open_interest.down) == pytest.approx((0.6, 0.2))
    fifteen = horizon(overall, "15m")
    assert (fifteen.measured, fifteen.no_data, fifteen.pending, fifteen.price.n) == (0, 1, 5, 0)
    assert fifteen.price.median is None and fifteen.price.up is None

    by_regime = {stats.regime: stats for stats in rule.by_regime}
    assert sorted(by_regime) == ["long_build", "short_build"]
    longs = horizon(by_regime["long_build"], "5m")
    # sorted: -0.5%, +0.05%, +1%, +2%: q1 = -0.5% + 0.75 × 0.55%, median (0.05% + 1%)/2, ...
    assert (longs.price.q1, longs.price.median, longs.price.q3) == pytest.approx(
        (-0.000875, 0.00525, 0.0125)
    )
    assert (longs.price.up, longs.price.down, longs.price.flat) == pytest.approx((0.5, 0.25, 0.25))
    assert by_regime["short_build"].alerts == 2
    assert by_regime["short_build"].alerts_per_symbol_day == pytest.approx(2 / 4)
    assert horizon(by_regime["short_build"], "5m").price.median == pytest.approx(-0.03)

    # one regime asked for: the rule's figures are that regime's
    only_shorts = alert_outcome_report(
        rule_names=["only two"], regime="short_build", since=SINCE, until=UNTIL, now=UNTIL
    )
    assert only_shorts.rules[0].overall.alerts == 2


def test_without_a_rule_filter_every_rule_with_alerts_and_every_enabled_rule_is_listed(
    two_rules_of_alerts,
):
    report = alert_outcome_report(since=SINCE, until=UNTIL, now=UNTIL)
    names = [rule.rule_name for rule in report.rules]
    assert {"only two", "another"} <= set(names)
    enabled = set(AlertRule.objects.filter(enabled=True).values_list("name", flat=True))
    assert enabled <= set(names)
    another = next(rule for rule in report.rules if rule.rule_name == "another")
    # a rule no longer defined: the universe's size (10) is what it watched
    assert (another.rule_id, another.symbols_watched) == (None, 10.0)
    assert horizon(another.overall, "5m").price.median == pytest.approx(0.5)


# --- API --------------------------------------------------------------------------------------


def test_the_api_gives_the_figures_per_rule_and_regime(api_client, two_rules_of_alerts):
    answer = api_client.get(
        "/api/alert-outcomes",
        {"rule": "only two", "from": SINCE.isoformat(), "to": UNTIL.isoformat()},
    )
    assert answer.status_code == 200, answer.content
    (rule,) = answer.json()["rules"]
    assert (rule["rule"], rule["alerts"], rule["symbolsWatched"]) == ("only two", 6, 2.0)
    five = rule["horizons"][0]
    assert (five["horizon"], five["measured"], five["pending"]) == ("5m", 5, 1)
    assert five["priceChange"]["median"] == pytest.approx(0.0005)
    assert five["priceChange"]["flatBand"] == pytest.approx(0.001)
    assert [r["regime"] for r in rule["byRegime"]] == ["long_build", "short_build"]

    by_id = api_client.get(
        f"/api/alert-rules/{two_rules_of_alerts.pk}/outcomes",
        {"regime": "long_build", "from": SINCE.isoformat(), "to": UNTIL.isoformat()},
    )
    assert by_id.status_code == 200
    assert by_id.json()["rules"][0]["alerts"] == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"regime": "moon"}, "regime"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
        ({"from": "2999-01-01T00:00:00Z"}, "from"),
        ({"to": "0001-01-02T00:00:00Z"}, "to"),
        ({"rule": "no such rule"}, "rule"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(api_client, two_rules_of_alerts, params, field):
    answer = api_client.get("/api/alert-outcomes", params)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == field
    by_id = api_client.get(f"/api/alert-rules/{two_rules_of_alerts.pk}/outcomes", params)
    if field != "rule":
        assert by_id.status_code == 400 and by_id.json()["error"]["field"] == field


@pytest.mark.django_db
def test_an_unknown_rule_id_is_a_404(api_client):
    assert api_client.get("/api/alert-rules/987654/outcomes").status_code == 404


# --- the job on a real worker -----------------------------------------------------------------


def test_beat_runs_the_job_every_minute_on_the_default_queue_and_it_expires_before_the_next():
    entry = django_settings.CELERY_BEAT_SCHEDULE["alerts-outcomes-fill"]
    assert entry["task"] == "alerts.outcomes_fill"
    assert entry["schedule"] == 60.0 and entry["options"]["expires"] < 60
    assert entry["options"]["queue"] == "default"


def test_the_task_on_a_real_worker_fills_the_due_outcomes(celery_processes):
    from alerts.tasks import alert_outcomes_fill_task

    now = timezone.now().replace(microsecond=0)
    start = now - timedelta(hours=2)
    alert = an_alert("BNBUSDT", ts=start)
    OpenInterestSnapshot.objects.bulk_create(
        OpenInterestSnapshot(
            symbol="BNBUSDT",
            ts=start + timedelta(seconds=sec),
            open_interest=Decimal(1000 + sec),
            mark_price=Decimal(100),
            source="realtime",
        )
        for sec in (300, 900)  # nothing at 1 h: no data
    )
    celery_processes.start_worker(queues="default")

    alert_outcomes_fill_task.apply_async(queue="default", expires=60)

    wait_until(lambda: AlertForwardOutcome.objects.filter(alert=alert).count() == 3, 20, "no run")
    got = outcomes(alert)
    assert got[300].oi_change == pytest.approx(0.3) and got[900].oi_change == pytest.approx(0.9)
    assert got[3600].status == "no_data"


# --- admin ------------------------------------------------------------------------------------


def test_the_admin_shows_each_alerts_moves_and_each_rules_figures(
    admin_client, two_rules_of_alerts
):
    changelist = admin_client.get("/admin/alerts/openinterestalert/?rule_name=only+two")
    assert changelist.status_code == 200
    page = changelist.content.decode()
    assert "Price +5m" in page and "+2.00%" in page and "-3.00%" in page
    assert "no data" in page  # the short build's 15 min
    assert "…" in page  # horizons not due (no row yet)

    # the rule's page covers the last 30 days: move the alerts to yesterday
    shift = timezone.now() - timedelta(days=1) - T0
    OpenInterestAlert.objects.filter(ts__gte=SINCE).update(ts=F("ts") + shift)
    rule_page = admin_client.get(f"/admin/alerts/alertrule/{two_rules_of_alerts.pk}/change/")
    assert rule_page.status_code == 200
    text = rule_page.content.decode()
    assert "What followed its alerts" in text
    assert "every regime" in text and "short build" in text
    # the 5-minute price moves of every regime: median [quartiles] · up / flat / down
    assert "+0.05% [-0.50%, +1.00%] · 40% / 20% / 40% (n=5)" in text
    assert "win rate" not in text.lower() and "hit rate" not in text.lower()
