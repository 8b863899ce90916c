"""Binance symbol names. Pure: no Django, Redis or HTTP."""

SYMBOL_MAX_LENGTH = 32
_ASCII_SYMBOL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def symbol_problem(symbol: object) -> str | None:
    """Why `symbol` is not a Binance symbol name, or None when it is one.

    Binance documents `^[A-Z0-9-_.]{1,20}$`; USDⓈ-M also lists symbols with non-ASCII letters
    (for example 币安人生USDT in the 2025 exchangeInfo), so non-ASCII letters are accepted too.
    """
    if not isinstance(symbol, str):
        return "must be a string"
    if not 1 <= len(symbol) <= 20:
        return "must be 1 to 20 characters long"
    for char in symbol:
        if char in _ASCII_SYMBOL_CHARS:
            continue
        if not char.isascii() and char.isalpha():
            continue
        return (
            f"has the character {char!r}; allowed are A-Z, 0-9, '-', '_', '.' and non-ASCII letters"
        )
    return None
