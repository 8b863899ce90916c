import hashlib
import secrets

from django.db import models


class ApiToken(models.Model):
    """A bearer token for the API: writes and reads, or reads only (`read_only`). Only a SHA-256 of
    the secret is stored."""

    name = models.CharField(
        max_length=100, unique=True, help_text="Who uses it, e.g. hourly-script"
    )
    key_prefix = models.CharField(max_length=8, help_text="First characters, to recognise a token")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    read_only = models.BooleanField(
        default=False, help_text="Reads only: every write with this token is refused (403)"
    )

    class Meta:
        db_table = "api_tokens"

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def hash_key(raw_key: str) -> str:
        return hashlib.sha256(raw_key.encode()).hexdigest()

    @staticmethod
    def generate_key() -> str:
        return secrets.token_urlsafe(32)
