from common.models import ApiToken


def api_token_get_active(*, raw_key: str) -> ApiToken | None:
    return ApiToken.objects.filter(
        key_hash=ApiToken.hash_key(raw_key), revoked_at__isnull=True
    ).first()
