"""Delivery channels as data (``alerts.models.AlertChannel``): Telegram chats, Discord and Slack
webhooks, signed generic webhooks. In layers: ``limiter`` (each channel's rate limit, shared
through Redis, and single-or-digest), ``outbox`` (what waits, in Redis), pure ``routing`` (a
channel's filters), ``answers`` (what a platform's answer means), ``discord`` and ``slack`` (the
messages; Telegram's are ``alerts.telegram.text``), ``selectors`` and ``services`` (Postgres,
settings, HTTP). Import from the module you need; this package re-exports nothing."""
