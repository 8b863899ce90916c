"""`python -m simulator`: run the local Binance USDⓈ-M futures simulator."""

from simulator.config import load_config
from simulator.server import run

if __name__ == "__main__":
    run(load_config())
