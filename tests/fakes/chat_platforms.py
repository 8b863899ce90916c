"""Local stand-ins for Discord webhooks, Slack incoming webhooks and a signed-webhook receiver:
real HTTP servers (threads) on 127.0.0.1 that answer as the platforms do, written from their
documentation, not from this project's code:

- Discord (discord.com/developers/docs/topics/rate-limits, resources/webhook): a bucket of 5
  requests per 2 s per webhook; 204 without ``?wait``; ``X-RateLimit-Limit``, ``-Remaining``,
  ``-Reset-After`` (seconds, float) and ``-Bucket`` on every answer; 429 with JSON
  ``{"message": "You are being rate limited.", "retry_after": 0.5, "global": false}`` and
  ``Retry-After``; 400 ``{"code": 50035, "message": "Invalid Form Body"}`` when an embed exceeds
  a limit; 404 ``{"code": 10015, "message": "Unknown Webhook"}`` once deleted.
- Slack (docs.slack.dev/messaging/sending-messages-using-incoming-webhooks): 200 ``ok``; about
  one message a second, beyond that 429 ``too_many_requests`` with ``Retry-After``; 400
  ``invalid_blocks`` (a section over 3000 characters, more than 50 blocks); 404 ``no_service``
  once the app or hook is removed.
- A webhook receiver that verifies the README's signature scheme on its own (HMAC-SHA256 over
  ``<timestamp>.<body>``, 5-minute window) and answers 401 to what fails.

Each records every request (arrival time, path, JSON body, status) and can be told to answer
the next requests as scripted, to hang (accept, then not answer: a sender killed mid-send), or
to be deleted.
"""

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

import pytest

Scripted = tuple[int, dict[str, str], bytes]


class Request(NamedTuple):
    at: float  # time.monotonic() on arrival
    path: str
    body: dict
    status: int
    headers: dict


class FakeServer:
    """The common part: a threaded HTTP server answering POSTs through ``answer``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.script: list[Scripted] = []
        self.lock = threading.Lock()
        self.hang_next = 0  # accept this many next requests, then never answer them
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.monotonic()
                with fake.lock:
                    status, headers, payload = (
                        fake.script.pop(0)
                        if fake.script
                        else fake.answer(self.path, raw, at, self.headers)
                    )
                    hang = status < 300 and fake.hang_next > 0
                    if hang:
                        fake.hang_next -= 1
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = {}
                    fake.requests.append(Request(at, self.path, body, status, dict(self.headers)))
                if hang:  # accepted (recorded), but the answer never comes back in time
                    fake.release.wait(60)
                    return
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, raw: bytes, at: float, headers) -> Scripted:
        raise NotImplementedError

    def accepted(self) -> list[Request]:
        return [r for r in self.requests if r.status < 300]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _json(status: int, payload: dict, headers: dict | None = None) -> Scripted:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(payload).encode(),
    )


class FakeDiscord(FakeServer):
    BUCKET_LIMIT = 5
    BUCKET_RESET_SEC = 2.0
    WEBHOOK_PATH = "/api/webhooks/1234567890/Tok3n-abcdefghijklmnopqrstuvwxyz_0123456789"

    def __init__(self) -> None:
        super().__init__()
        self.deleted = False
        self.window_start = 0.0
        self.used = 0
        self.url = self.base + self.WEBHOOK_PATH

    def answer(self, path: str, raw: bytes, at: float, headers) -> Scripted:
        if self.deleted or not path.startswith(self.WEBHOOK_PATH):
            return _json(404, {"message": "Unknown Webhook", "code": 10015})
        if at - self.window_start >= self.BUCKET_RESET_SEC:
            self.window_start, self.used = at, 0
        reset_after = max(self.BUCKET_RESET_SEC - (at - self.window_start), 0.0)
        limits = {
            "X-RateLimit-Limit": str(self.BUCKET_LIMIT),
            "X-RateLimit-Bucket": "f00dfeed",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        }
        if self.used >= self.BUCKET_LIMIT:
            return _json(
                429,
                {"message": "You are being rate limited.", "retry_after": round(reset_after, 3),
                 "global": False},
                {**limits, "X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user",
                 "Retry-After": str(int(reset_after) + 1)},
            )  # fmt: skip
        problem = self.embed_problem(json.loads(raw))
        if problem:
            return _json(400, {"code": 50035, "message": "Invalid Form Body", "errors": problem})
        self.used += 1
        return 204, {**limits, "X-RateLimit-Remaining": str(self.BUCKET_LIMIT - self.used)}, b""

    @staticmethod
    def embed_problem(message: dict) -> str | None:
        """Discord's embed limits (resources/message#embed-object-embed-limits)."""
        embeds = message.get("embeds", [])
        if not embeds and not message.get("content"):
            return "Cannot send an empty message"
        if len(embeds) > 10:
            return "embeds: at most 10"
        total = 0
        for embed in embeds:
            title = embed.get("title", "")
            description = embed.get("description", "")
            footer = embed.get("footer", {}).get("text", "")
            fields = embed.get("fields", [])
            if len(title) > 256 or len(description) > 4096 or len(fields) > 25:
                return "embed limit exceeded"
            if len(footer) > 2048:
                return "footer too long"
            total += len(title) + len(description) + len(footer)
            total += sum(len(f["name"]) + len(f["value"]) for f in fields)
        if total > 6000:
            return "embeds: more than 6000 characters"
        return None

    def messages(self) -> list[dict]:
        return [r.body for r in self.accepted()]

    def embed_texts(self) -> list[str]:
        return [
            embed.get("title", "") + "\n" + embed.get("description", "")
            for body in self.messages()
            for embed in body["embeds"]
        ]


class FakeSlack(FakeServer):
    HOOK_PATH = "/services/T0001/B0002/XXXXXXXXXXXXXXXXXXXXXXXX"
    MIN_GAP_SEC = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.deleted = False
        self.last_accepted = -1e9
        self.url = self.base + self.HOOK_PATH

    def answer(self, path: str, raw: bytes, at: float, headers) -> Scripted:
        text = {"Content-Type": "text/html"}
        if self.deleted or path != self.HOOK_PATH:
            return 404, text, b"no_service"
        if at - self.last_accepted < self.MIN_GAP_SEC * 0.95:
            return 429, {**text, "Retry-After": "1"}, b"too_many_requests"
        message = json.loads(raw)
        blocks = message.get("blocks", [])
        if len(blocks) > 50 or any(
            b.get("type") == "section" and not 0 < len(b["text"]["text"]) <= 3000 for b in blocks
        ):
            return 400, text, b"invalid_blocks"
        if not message.get("text") and not blocks:
            return 400, text, b"no_text"
        self.last_accepted = at
        return 200, text, b"ok"


class SignedWebhookReceiver(FakeServer):
    """Verifies X-VolSpike-Timestamp / X-VolSpike-Signature as the README describes."""

    TOLERANCE_SEC = 300

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.url = self.base + "/hooks/volspike"
        self.gone = False

    def answer(self, path: str, raw: bytes, at: float, headers) -> Scripted:
        if self.gone:
            return 410, {}, b""
        return (200, {}, b"") if self.verified(headers, raw) else (401, {}, b"bad")

    def verified(self, headers, raw: bytes) -> bool:
        timestamp = headers.get("X-VolSpike-Timestamp", "")
        signature = headers.get("X-VolSpike-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.TOLERANCE_SEC:
            return False
        mac = hmac.new(self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
        return hmac.compare_digest(f"v1={mac.hexdigest()}", signature)


@pytest.fixture
def chat_platforms() -> Iterator:
    """``chat_platforms.discord()``, ``.slack()``, ``.webhook(secret)``; closed after the test."""
    made: list[FakeServer] = []

    class Make:
        @staticmethod
        def discord() -> FakeDiscord:
            made.append(FakeDiscord())
            return made[-1]

        @staticmethod
        def slack() -> FakeSlack:
            made.append(FakeSlack())
            return made[-1]

        @staticmethod
        def webhook(secret: str) -> SignedWebhookReceiver:
            made.append(SignedWebhookReceiver(secret))
            return made[-1]

    yield Make
    for fake in made:
        fake.close()
