"""Domain errors. Pure: the API maps them to HTTP in common/exceptions.py."""


class ApplicationError(Exception):
    """A domain error a caller can act on. `code` is stable; `message` is for people."""

    code = "application_error"
    http_status = 400

    def __init__(self, message: str, *, extra: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class InvalidInput(ApplicationError):
    """Bad input, with where it is (`field`, and `row` for an item of a batch) and why."""

    code = "invalid"

    def __init__(self, *, field: str, reason: str, row: int | None = None) -> None:
        where = f"row {row}, field '{field}'" if row is not None else f"field '{field}'"
        super().__init__(f"{where}: {reason}")
        self.field = field
        self.reason = reason
        self.row = row
        self.extra = {"field": field, "reason": reason}
        if row is not None:
            self.extra["row"] = row
