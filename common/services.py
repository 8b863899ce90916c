from django.db import transaction
from django.utils import timezone

from common.models import ApiToken


@transaction.atomic
def api_token_create(*, name: str, read_only: bool = False) -> tuple[ApiToken, str]:
    """Create a token (for reads only when `read_only`); returns it with the raw key, which is
    shown once and never stored."""
    raw_key = ApiToken.generate_key()
    token = ApiToken(
        name=name,
        key_prefix=raw_key[:8],
        key_hash=ApiToken.hash_key(raw_key),
        read_only=read_only,
    )
    token.full_clean()
    token.save()
    return token, raw_key


def api_token_revoke(*, name: str) -> bool:
    revoked = ApiToken.objects.filter(name=name, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return revoked > 0
