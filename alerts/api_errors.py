"""The model's ``clean`` refusing a write, as the API's 400 (field and reason): one mapping for
the rules', overrides' and channels' APIs."""

from contextlib import contextmanager

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers


@contextmanager
def refused_as_400():
    """A ValidationError of the model's ``clean`` becomes the API's 400 (field and reason)."""
    try:
        yield
    except DjangoValidationError as exc:
        raise serializers.ValidationError(
            {
                ("body" if field == NON_FIELD_ERRORS else field): messages
                for field, messages in exc.message_dict.items()
            }
        ) from exc
