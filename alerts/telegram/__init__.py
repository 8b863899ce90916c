"""Telegram's messages (``text``, pure: one move, a digest, a system message), shared by the
Discord and Slack formats. Sending, limits and outboxes are every channel's: ``alerts.channels``."""
