"""Telegram delivery, in layers: ``limiter`` (the Bot API's limits per chat, shared through
Redis, and single-or-digest), ``outbox`` (the alerts waiting, in Redis), ``text`` (the messages,
pure) and ``services`` (settings, the Bot API call over HTTP, the delivery rows). Import from the
module you need; this package re-exports nothing, so the pure parts stay importable alone."""
