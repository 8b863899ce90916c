"""Replay a saved or draft rule over stored samples and print what it would have raised.

    manage.py backtest_rule --rule-id 2 --days 7
    manage.py backtest_rule --draft '{"window_sec": 300, "threshold_pct": "0.04"}' --days 3 \\
        --symbols BTCUSDT,ETHUSDT --json
"""

import json
import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from alerts.backtest_apis import DraftRuleSerializer
from alerts.backtest_services import (
    backtest_request,
    backtest_rule_draft,
    backtest_rule_saved,
    backtest_run,
)
from common.errors import InvalidInput


class Command(BaseCommand):
    help = (
        "Replay a saved rule (--rule-id) or a draft (--draft, the JSON fields of POST "
        "/api/alert-rules) over the stored samples of the last --days (or --since/--until): the "
        "alerts it would have raised, alerts per symbol-day, and what held the others back. "
        "Shows progress on stderr."
    )

    def add_arguments(self, parser):
        rule = parser.add_mutually_exclusive_group(required=True)
        rule.add_argument("--rule-id", type=int)
        rule.add_argument("--draft", help="JSON object of rule fields")
        parser.add_argument("--days", type=float)
        parser.add_argument("--since", help="ISO 8601")
        parser.add_argument("--until", help="ISO 8601 (default: now)")
        parser.add_argument("--symbols", help="Comma-separated (default: every stored symbol)")
        parser.add_argument("--json", action="store_true", help="Print the API's answer as JSON")

    def handle(self, *args, **options):
        try:
            if options["rule_id"] is not None:
                rule, fields = backtest_rule_saved(options["rule_id"])
            else:
                serializer = DraftRuleSerializer(data=self._draft(options["draft"]))
                if not serializer.is_valid():
                    raise CommandError(f"--draft: {serializer.errors}")
                rule, fields = backtest_rule_draft(serializer.validated_data)
            request = backtest_request(
                rule=rule,
                rule_fields=fields,
                days=options["days"],
                since=self._datetime(options["since"], "since"),
                until=self._datetime(options["until"], "until"),
                symbols=options["symbols"].split(",") if options["symbols"] else None,
            )
        except InvalidInput as exc:
            raise CommandError(str(exc)) from exc
        answer = backtest_run(request, progress=self._progress)
        sys.stderr.write("\n")
        if options["json"]:
            self.stdout.write(json.dumps(answer, indent=2))
            return
        self._print(answer)

    @staticmethod
    def _draft(raw: str) -> dict:
        try:
            draft = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--draft: not JSON ({exc})") from exc
        if not isinstance(draft, dict):
            raise CommandError("--draft: must be a JSON object")
        return draft

    @staticmethod
    def _datetime(raw: str | None, name: str):
        if raw is None:
            return None
        value = parse_datetime(raw)
        if value is None or value.tzinfo is None:
            raise CommandError(f"--{name}: an ISO 8601 time with its zone, e.g. 2026-12-01T00:00Z")
        return value

    @staticmethod
    def _progress(done: int, total: int) -> None:
        sys.stderr.write(f"\rreplayed {done}/{total} symbols")
        sys.stderr.flush()

    def _print(self, answer: dict) -> None:
        write = self.stdout.write
        write(
            f"rule {answer['rule']['name']}: {answer['since']} .. {answer['until']}, "
            f"{answer['symbols']} symbols, {answer['samples']} samples in "
            f"{answer['elapsedSec']} s (reading {answer['readSec']} s)"
        )
        write(
            f"alerts: {answer['alertsTotal']} ({answer['alertsPerSymbolDay']} per symbol-day); "
            f"regimes: {answer['regimes']}"
        )
        write(f"gate: {answer['actions']}; blocked by: {answer['blockedReasons']}")
        for row in answer["perSymbol"]:
            if row["alerts"]:
                write(f"  {row['symbol']:<16} {row['alerts']:>5} alerts  {row['alertsPerDay']}/day")
        for alert in answer["alerts"]:
            price = alert["priceChangePct"]
            write(
                f"  {alert['ts']}  {alert['symbol']:<16} {alert['direction']:<4} "
                f"{alert['pctChange']:+.2%} vs {alert['referenceKind']} {alert['reference']:g}  "
                f"price {'' if price is None else f'{price:+.2%}'}  {alert['regime']}"
            )
