"""Analytics: every event in its own store, product questions, rebuildable by replay."""

from services.analytics.handlers import CONSUMER, build_router, record_event
from services.analytics.service import AnalyticsService, EventCount

__all__ = ["CONSUMER", "AnalyticsService", "EventCount", "build_router", "record_event"]
