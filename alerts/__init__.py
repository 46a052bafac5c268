"""Notification: the durable outbox and its deliverers (ticket systems, channels)."""
