"""Analytics: every event in its own store, product questions, rebuildable by replay."""

from services.analytics.handlers import (
    CONSUMER,
    TOPICS,
    build_router,
    clear_store,
    record_batch,
    record_event,
)
from services.analytics.service import (
    ActiveUsers,
    AnalyticsLimits,
    AnalyticsService,
    EventCount,
    FunnelStep,
    Period,
    Usage,
)

__all__ = [
    "CONSUMER",
    "TOPICS",
    "ActiveUsers",
    "AnalyticsLimits",
    "AnalyticsService",
    "EventCount",
    "FunnelStep",
    "Period",
    "Usage",
    "build_router",
    "clear_store",
    "record_batch",
    "record_event",
]
