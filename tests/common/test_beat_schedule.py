"""Every beat entry names a real task and expires before its next run (no pile-ups)."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from volspike.celery import app


@pytest.mark.parametrize("name", sorted(settings.CELERY_BEAT_SCHEDULE))
def test_beat_entries_name_registered_tasks_and_expire_within_their_period(name):
    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE[name]
    assert entry["task"] in app.tasks, f"{name}: no task named {entry['task']}"
    assert 0 < entry["options"]["expires"] <= entry["schedule"]
    # on a queue some Procfile worker consumes (a task on no worker's queue never runs)
    assert entry["options"]["queue"] in procfile_queues()


def procfile_queues() -> set[str]:
    procfile = Path(settings.BASE_DIR, "Procfile").read_text()
    return {queue for match in re.findall(r" -Q (\S+)", procfile) for queue in match.split(",")}
