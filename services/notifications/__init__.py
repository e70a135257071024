"""Notifications: inboxes built from events (issue: real-time)."""
