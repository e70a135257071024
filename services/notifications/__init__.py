"""Notifications: inboxes built from events, one row per recipient, pushed as they land."""

from services.notifications.handlers import CONSUMER, TOPICS, build_router, on_event
from services.notifications.ids import is_notification_id
from services.notifications.service import NotificationsService, NotificationView

__all__ = [
    "CONSUMER",
    "TOPICS",
    "NotificationView",
    "NotificationsService",
    "build_router",
    "is_notification_id",
    "on_event",
]
