"""Binance USDⓈ-M futures exchange layer: weights, shared-budget client and a local simulator."""
