from django.core.management.base import BaseCommand

from ops.services import ops_check_run


class Command(BaseCommand):
    help = (
        "Run the ops checks once now (as beat's ops.check does): record and send the events of "
        "the conditions that open or recover. Prints 'ran' or 'busy' (another check holds the lock)."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(str(ops_check_run(source="command")))
