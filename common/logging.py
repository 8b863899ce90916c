"""One line per event, `key=value` pairs (logfmt), with the event's own fields (symbol, cause, ...)."""

import logging
import re
from datetime import UTC, datetime

from common.redaction import redact

# Celery adds `data`, a dict repeating what its message already says (with whole tracebacks).
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "data"}
)


def _quote(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in ' "=\n\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        timestamp = datetime.fromtimestamp(record.created, tz=UTC).isoformat(
            timespec="milliseconds"
        )
        parts = [
            f"ts={timestamp}",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                parts.append(f"{key}={_quote(value)}")
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return redact(" ".join(parts))  # no secret reaches a log, whoever logged it


class SkipMessages(logging.Filter):
    """Drops the records whose message template starts with one of `prefixes` (chatter a person
    never acts on, such as beat's "Sending due task" every 2 s), keeping the logger's others."""

    def __init__(self, prefixes: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__()
        self.prefixes = tuple(prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


class RedactQueryTokenFilter(logging.Filter):
    """Blanks `token=<key>` in a record's text: uvicorn logs each WebSocket handshake with its
    query string on `uvicorn.error` (not the access log, so --no-access-log does not hide it)."""

    _TOKEN = re.compile(r"([?&]token=)[^&\s\"']*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message.lower():
            record.msg, record.args = self._TOKEN.sub(r"\1[redacted]", message), ()
        return True
