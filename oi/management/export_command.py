"""The export commands' shared part: the same filters as the export APIs, the same COPY, written
to a file or to standard output as it leaves Postgres (flat memory)."""

import sys
from collections.abc import Callable, Sequence

from django.core.management.base import BaseCommand, CommandError

from common.errors import InvalidInput
from oi.exports import CsvExport, csv_chunks, parse_export_filters


class ExportCommand(BaseCommand):
    """Subclasses set `sources` (the accepted values of --source) and `build` (the selector)."""

    sources: Sequence[str] = ()
    build: Callable[..., CsvExport]

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--from", dest="from", required=True, help="ISO-8601 with a zone, or epoch ms; ts >= it"
        )
        parser.add_argument(
            "--to", dest="to", required=True, help="ISO-8601 with a zone, or epoch ms; ts < it"
        )
        parser.add_argument("--symbols", help="comma-separated, e.g. BTCUSDT,ETHUSDT (all)")
        parser.add_argument("--source", choices=list(self.sources), help="only this source")
        parser.add_argument(
            "--output", default="-", help="file to write (replaced), or - for stdout (default)"
        )

    def handle(self, *args, **options) -> None:
        try:
            filters = parse_export_filters(options, sources=self.sources)
        except InvalidInput as problem:
            raise CommandError(f"--{problem.field}: {problem.reason}") from None
        export = self.build(
            since=filters.since, until=filters.until, symbols=filters.symbols, source=filters.source
        )
        written = 0
        if options["output"] == "-":
            out = sys.stdout.buffer
            for chunk in csv_chunks(export):
                out.write(chunk)
                written += len(chunk)
            out.flush()
        else:
            with open(options["output"], "wb") as out:
                for chunk in csv_chunks(export):
                    out.write(chunk)
                    written += len(chunk)
        self.stderr.write(f"{written} bytes of CSV written to {options['output']}")
