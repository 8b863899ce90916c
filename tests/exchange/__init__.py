"""Tests of the exchange layer (client, budget)."""
