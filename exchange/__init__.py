"""Binance USDⓈ-M futures exchange layer: weights, errors and the shared-budget client."""
