"""Notifications: inboxes built from events, one row per recipient, pushed as they land."""

from services.notifications.catcher import CaughtMail, MailCatcher, caught_mail
from services.notifications.email import EmailChannel, SmtpConfig, SmtpMailer
from services.notifications.handlers import CONSUMER, HANDLERS, MEMBERSHIPS, forget_user
from services.notifications.ids import is_notification_id
from services.notifications.service import NotificationsService, NotificationView

__all__ = [
    "CONSUMER",
    "HANDLERS",
    "MEMBERSHIPS",
    "CaughtMail",
    "EmailChannel",
    "MailCatcher",
    "NotificationView",
    "NotificationsService",
    "SmtpConfig",
    "SmtpMailer",
    "caught_mail",
    "forget_user",
    "is_notification_id",
]
