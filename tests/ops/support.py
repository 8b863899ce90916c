"""What the ops tests share: a message sink (OPS_EVENT_SINKS) that keeps what it got, and a dead
letter as the snapshot sink leaves one."""

from oi.models import SnapshotDeadLetter

MESSAGES: list[dict] = []


def message_collect(*, dedup_key: str, title: str, text: str, recovered: bool) -> None:
    MESSAGES.append({"dedup_key": dedup_key, "title": title, "text": text, "recovered": recovered})


def dead_letter(cause: str) -> SnapshotDeadLetter:
    return SnapshotDeadLetter.objects.create(
        rows=3, symbols="BTCUSDT", cause=cause, payload={"data": []}
    )
