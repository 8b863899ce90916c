"""Cursor pagination whose cursors are checked like any other input: a cursor a client altered
is a 400 naming `cursor`, never a query Postgres or Django refuse with a 500."""

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination

from common.errors import InvalidInput
from common.parsing import parse_aware_datetime


class TimestampCursorPagination(CursorPagination):
    """DRF's cursor pagination over a queryset ordered by a timestamp first (e.g. ("-ts", "-id")).

    DRF decodes the cursor's offset and direction but passes its position (the timestamp to
    continue from) to the query unchecked: an empty or non-date position, an impossible date or an
    offset Postgres refuses each became a 500. Here the position must be an aware timestamp.
    """

    def decode_cursor(self, request):
        field = self.cursor_query_param
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise InvalidInput(field=field, reason="is not a cursor this API gave out") from None
        if cursor is None or cursor.position is None:
            return cursor
        try:
            moment = parse_aware_datetime(cursor.position, field=field)
        except InvalidInput as problem:
            raise InvalidInput(
                field=field, reason=f"is not a cursor this API gave out: {problem.reason}"
            ) from None
        return cursor._replace(position=moment.isoformat())
