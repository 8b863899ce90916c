from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from common.formatting import plain_decimal


@extend_schema_field(OpenApiTypes.STR)
class PlainDecimalField(serializers.Field):
    """A Decimal written as Binance writes it: a string without exponent or padding zeros."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value: Decimal) -> str:
        return plain_decimal(value)
