"""`python -m exchange.simulator`: run the local Binance USDⓈ-M futures simulator."""

from exchange.simulator.config import load_config
from exchange.simulator.server import run

if __name__ == "__main__":
    run(load_config())
