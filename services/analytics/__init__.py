"""Analytics: every event in its own store, product questions, rebuildable by replay."""

from services.analytics.handlers import (
    CONSUMER,
    HANDLERS,
    clear_store,
    forget_user,
    record_batch,
    record_event,
)
from services.analytics.service import (
    ActiveUsers,
    AnalyticsLimits,
    AnalyticsService,
    EventCount,
    FunnelStep,
    PastEvent,
    Period,
    Usage,
)

__all__ = [
    "CONSUMER",
    "HANDLERS",
    "ActiveUsers",
    "AnalyticsLimits",
    "AnalyticsService",
    "EventCount",
    "FunnelStep",
    "PastEvent",
    "Period",
    "Usage",
    "clear_store",
    "forget_user",
    "record_batch",
    "record_event",
]
