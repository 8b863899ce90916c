"""Backtests over the API: POST /api/alert-rules/backtest replays a saved rule (``rule_id``) or a
draft (``rule``: the fields of POST /api/alert-rules, validated by the model's ``clean``) over the
stored samples of the last ``days`` (or ``since``..``until``) for ``symbols`` (all stored when
left out). A short one answers at once; a longer one is a Celery job on its own queue, polled at
GET /api/alert-rules/backtest/<job>. Bad input: 400 naming the field."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.backtest_selectors import backtest_job_get
from alerts.backtest_services import (
    backtest_enqueue,
    backtest_job_create,
    backtest_job_finish_inline,
    backtest_request,
    backtest_rule_draft,
    backtest_rule_saved,
    backtest_run,
)
from alerts.rule_apis import AlertRuleSerializer
from common.errors import InvalidInput


class DraftRuleSerializer(AlertRuleSerializer):
    """A rule's fields as POST /api/alert-rules takes them; the name is optional and need not be
    unique (a draft is never saved)."""

    class Meta(AlertRuleSerializer.Meta):
        extra_kwargs = {"name": {"required": False, "validators": []}}


class AlertRuleBacktestApi(APIView):
    """Replay a rule over stored samples: the alerts it would have raised and what held the
    others back (token)."""

    class BacktestRequestSerializer(serializers.Serializer):
        rule_id = serializers.IntegerField(required=False, help_text="A saved rule")
        rule = DraftRuleSerializer(required=False, help_text="A draft rule (never saved)")
        days = serializers.FloatField(
            required=False, help_text="The last N days (up to the retention)"
        )
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False, help_text="Default: now")
        symbols = serializers.ListField(
            child=serializers.CharField(), required=False, help_text="Default: every stored one"
        )

    @extend_schema(
        request=BacktestRequestSerializer,
        responses={
            200: OpenApiResponse(description="Done at once: {job, state, result}"),
            202: OpenApiResponse(description="Queued: {job, state, url}; poll the url"),
        },
    )
    def post(self, request):
        serializer = self.BacktestRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if ("rule_id" in data) == ("rule" in data):
            raise InvalidInput(field="rule_id", reason="give either rule_id or a draft rule")
        if "rule_id" in data:
            rule, fields = backtest_rule_saved(data["rule_id"])
        else:
            rule, fields = backtest_rule_draft(data["rule"])
        backtest = backtest_request(
            rule=rule,
            rule_fields=fields,
            days=data.get("days"),
            since=data.get("since"),
            until=data.get("until"),
            symbols=data.get("symbols"),
        )
        job_id = backtest_job_create(backtest)
        if backtest.estimated_samples <= settings.BACKTEST_INLINE_MAX_SAMPLES:
            answer = backtest_run(backtest)
            backtest_job_finish_inline(job_id, answer)
            return Response({"job": job_id, "state": "done", "result": answer})
        backtest_enqueue(job_id)
        return Response(
            {"job": job_id, "state": "queued", "url": f"/api/alert-rules/backtest/{job_id}"},
            status=status.HTTP_202_ACCEPTED,
        )


class AlertRuleBacktestJobApi(APIView):
    """A backtest job: its state, its progress (symbols done of total), then its result."""

    @extend_schema(
        responses={200: OpenApiResponse(description="{job, state, done, total, result?}")}
    )
    def get(self, request, job: str):
        found = backtest_job_get(job)
        if found is None:
            raise NotFound("no such backtest job (or its result has expired)")
        return Response(found)
