import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from streams.runner import StreamsProcess


class Command(BaseCommand):
    help = "Hold Binance's market streams (mark price, mini tickers, liquidations) and store them."

    def handle(self, *args, **options) -> None:
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        if not settings.STREAMS_ENABLED:
            self.stdout.write("STREAMS_ENABLED is off: nothing to do; waiting for a stop signal")
            stop.wait()
            return
        StreamsProcess().run(stop)
