"""ASGI middleware refusing request bodies over a size limit before they are read.

Django's ASGI handler reads the whole body (spooling it to a temporary file) before any view or
authentication runs, so without this an anonymous client can make the web process write
gigabytes to disk. The declared Content-Length is checked first (413 without reading a byte);
bodies without one (chunked) are counted as they stream in and cut off at the limit.
"""

import json
import logging

logger = logging.getLogger(__name__)


class _BodyTooLarge(Exception):
    pass


class BodySizeLimitMiddleware:
    """Wraps an ASGI HTTP app; answers 413 in the API's error shape when a request body is over
    `max_body_bytes`. Other scope types (lifespan, websocket) pass through untouched."""

    def __init__(self, app, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            _log_refusal(scope, declared=declared, limit=limit)
            await _send_413(send, limit)
            return

        received = 0
        response_started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            _log_refusal(scope, declared=None, limit=limit)
            if not response_started:
                await _send_413(send, limit)


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server's parser refuses these; counting still applies
    return None


def _log_refusal(scope, *, declared: int | None, limit: int) -> None:
    client = scope.get("client") or ("?", 0)
    logger.warning(
        "request body over the limit refused",
        extra={
            "path": scope.get("path", ""),
            "method": scope.get("method", ""),
            "declared_bytes": declared if declared is not None else "chunked",
            "limit_bytes": limit,
            "client": client[0],
        },
    )


async def _send_413(send, limit: int) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "payload_too_large",
                "message": f"request body is over the limit of {limit} bytes",
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
