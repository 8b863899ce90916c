"""Tests of the local Binance simulator (simulator/), over HTTP and unit by unit."""
