"""Notifications: inboxes built from events, one row per recipient, pushed as they land."""

from services.notifications.handlers import CONSUMER, HANDLERS, MEMBERSHIPS
from services.notifications.ids import is_notification_id
from services.notifications.service import NotificationsService, NotificationView

__all__ = [
    "CONSUMER",
    "HANDLERS",
    "MEMBERSHIPS",
    "NotificationView",
    "NotificationsService",
    "is_notification_id",
]
