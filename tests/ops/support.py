"""A message sink for the tests (OPS_EVENT_SINKS), with channels20's signature: what it got."""

MESSAGES: list[dict] = []


def message_collect(*, dedup_key: str, title: str, text: str, recovered: bool) -> None:
    MESSAGES.append({"dedup_key": dedup_key, "title": title, "text": text, "recovered": recovered})
