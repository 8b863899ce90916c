from django.core.management.base import BaseCommand, CommandError

from common.models import ApiToken
from common.services import api_token_create, api_token_revoke


class Command(BaseCommand):
    help = (
        "Create an API token (prints the key once; --read-only for one that can only read), "
        "or revoke one with --revoke."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="Who uses the token, e.g. hourly-script")
        parser.add_argument("--revoke", action="store_true", help="Revoke the token of that name")
        parser.add_argument(
            "--read-only",
            action="store_true",
            help="A token for reads only (API_READS_REQUIRE_AUTH, /metrics): writes are refused",
        )

    def handle(self, *args, name: str, revoke: bool, read_only: bool, **options):
        if revoke:
            if not api_token_revoke(name=name):
                raise CommandError(f"No active token named {name!r}.")
            self.stdout.write(f"Revoked the token {name!r}.")
            return
        if ApiToken.objects.filter(name=name).exists():
            raise CommandError(
                f"A token named {name!r} exists already; revoke it or pick a new name."
            )
        _, raw_key = api_token_create(name=name, read_only=read_only)
        self.stdout.write(raw_key)
