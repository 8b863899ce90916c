"""Redis keys of the ops checks."""

STATE_KEY = "ops:state"
"""JSON: each condition's state, the checks' marks and when the last check ran."""
CHECK_LOCK_KEY = "ops:check:lock"
PENDING_KEY = "ops:pending"
"""A list of events not yet recorded in Postgres (it did not answer), oldest first."""
