"""The delivery channels over the API (token for writes), like the rules: writes go through the
services (the model's ``clean``, the same validation as the admin's), a refused write is a 400
naming the field. Secrets (bot token, webhook URLs, signing secret) are write-only: the answer
says whether each is set and shows a hint of it (``secret_hint``), never the value."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.api_errors import refused_as_400
from alerts.channels.selectors import channel_list, secret_hint
from alerts.channels.services import (
    channel_create,
    channel_delete,
    channel_send_test,
    channel_update,
)
from alerts.models import CHANNEL_SECRET_FIELDS, AlertChannel, AlertRule

CHANNEL_FIELDS = (
    "id", "name", "kind", "enabled", "telegram_chat_id", "bot_token", "url", "signing_secret",
    "secrets", "has_secret", "receives_alerts", "receives_ops", "rules", "symbols",
    "directions", "regimes", "min_move_pct", "from_settings", "disabled_reason", "disabled_at",
    "created_at", "updated_at",
)  # fmt: skip


class AlertChannelSerializer(serializers.ModelSerializer):
    """Field formats only; what makes a channel valid is the model's ``clean``."""

    rules = serializers.PrimaryKeyRelatedField(
        queryset=AlertRule.objects.all(), many=True, required=False
    )
    secrets = serializers.SerializerMethodField(
        help_text="Each write-only secret: null when not set, else a hint such as '…x9Qa'"
    )
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = AlertChannel
        fields = CHANNEL_FIELDS
        read_only_fields = (
            "id", "from_settings", "disabled_reason", "disabled_at", "created_at", "updated_at",
        )  # fmt: skip
        extra_kwargs = {name: {"write_only": True} for name in CHANNEL_SECRET_FIELDS}

    def get_secrets(self, channel: AlertChannel) -> dict[str, str | None]:
        return {name: secret_hint(getattr(channel, name)) or None for name in CHANNEL_SECRET_FIELDS}

    def get_has_secret(self, channel: AlertChannel) -> bool:
        return bool(channel.secret_values())


class _ChannelWrites:
    def perform_create(self, serializer):
        with refused_as_400():
            serializer.instance = channel_create(**serializer.validated_data)

    def perform_update(self, serializer):
        with refused_as_400():
            serializer.instance = channel_update(serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        channel_delete(instance)


class AlertChannelListApi(_ChannelWrites, generics.ListCreateAPIView):
    """Every delivery channel; POST creates one (secrets write-only)."""

    serializer_class = AlertChannelSerializer
    queryset = channel_list()
    pagination_class = None


class AlertChannelDetailApi(_ChannelWrites, generics.RetrieveUpdateDestroyAPIView):
    """One channel: GET, PATCH (or PUT) to change it (enabling clears `disabled_reason`),
    DELETE to remove it with its outbox."""

    serializer_class = AlertChannelSerializer
    queryset = channel_list()


class AlertChannelTestApi(APIView):
    """Send a test message on the channel now; answers what the platform answered."""

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "ChannelTestReport",
            {
                "channel": serializers.CharField(),
                "ok": serializers.BooleanField(),
                "detail": serializers.CharField(),
            },
        ),
    )
    def post(self, request, pk: int):
        channel = generics.get_object_or_404(AlertChannel.objects.all(), pk=pk)
        report = channel_send_test(channel)
        return Response({"channel": report.channel, "ok": report.ok, "detail": report.detail})
