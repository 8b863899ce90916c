"""Tests of the project package (volspike/): metrics and readiness, which read every app."""
