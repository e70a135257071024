"""Audit: a per-team log of who did what, projected from the event stream."""

from services.audit.handlers import CONSUMER, HANDLERS, clear_store, forget_user
from services.audit.service import AuditEntryView, AuditLogPage, AuditService

__all__ = [
    "CONSUMER",
    "HANDLERS",
    "AuditEntryView",
    "AuditLogPage",
    "AuditService",
    "clear_store",
    "forget_user",
]
