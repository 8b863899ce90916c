"""Signed webhook bodies: HMAC-SHA256 over the timestamp and the exact body bytes. Pure: no I/O.

With ``ALERT_WEBHOOK_SECRET`` set, every webhook POST carries

    X-VolSpike-Timestamp: <unix seconds when it was sent>
    X-VolSpike-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>

A receiver recomputes the HMAC over the timestamp header, a dot and the raw body (before any
JSON parsing), compares it in constant time, and refuses a timestamp older (or further ahead)
than its tolerance: a captured request replayed later fails, and a changed body or timestamp
fails. ``webhook_signature_verify`` is that check, for receivers written in Python.
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-VolSpike-Signature"
TIMESTAMP_HEADER = "X-VolSpike-Timestamp"
SIGNATURE_VERSION = "v1"
# A receiver's default tolerance for the timestamp: older (or further ahead) is a replay.
REPLAY_TOLERANCE_SEC = 300


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def webhook_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: webhook_signature(secret, timestamp, body),
    }


def webhook_signature_verify(
    secret: str,
    *,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: float,
    tolerance_sec: float = REPLAY_TOLERANCE_SEC,
) -> bool:
    """True when the headers sign `body` with `secret` and the timestamp is within tolerance."""
    if not timestamp_header or not signature_header or not timestamp_header.isdigit():
        return False
    timestamp = int(timestamp_header)
    if abs(now - timestamp) > tolerance_sec:
        return False
    expected = webhook_signature(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature_header.strip().encode())
