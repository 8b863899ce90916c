"""Deleting old rows in short batches: each batch its own transaction (the table is never locked
for long), until a batch comes back short (nothing old is left) or the time budget has passed
(the next run goes on where this one stopped). One loop for every retention job."""

import time
from datetime import datetime

from django.db import connection, transaction


def rows_delete_in_batches(
    delete_sql: str, cutoff: datetime, *, batch_size: int, time_budget_sec: float
) -> tuple[int, bool]:
    """Run ``delete_sql`` (a DELETE taking the cutoff and a row limit, in that order) batch after
    batch; returns (rows deleted, finished: False when the budget ran out with rows left)."""
    deadline = time.monotonic() + time_budget_sec
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(delete_sql, [cutoff, batch_size])
            batch_deleted = cursor.rowcount
        deleted += batch_deleted
        if batch_deleted < batch_size:
            return deleted, True
        if time.monotonic() > deadline:
            return deleted, False
