"""Customer webhooks: a team's endpoints get its events, signed per Standard Webhooks."""

from services.webhooks.delivery import DeliveryWorker, Replayer
from services.webhooks.handlers import CONSUMER, DELIVERABLE, EVENT_TYPES, build_handlers
from services.webhooks.http import HttpDelivery, UrlPolicy
from services.webhooks.service import (
    SCHEDULE_S,
    DeliveryView,
    EndpointView,
    ReplayView,
    WebhooksConfig,
    WebhooksService,
)
from services.webhooks.signing import SecretBox

__all__ = [
    "CONSUMER",
    "DELIVERABLE",
    "EVENT_TYPES",
    "SCHEDULE_S",
    "DeliveryView",
    "DeliveryWorker",
    "EndpointView",
    "HttpDelivery",
    "ReplayView",
    "Replayer",
    "SecretBox",
    "UrlPolicy",
    "WebhooksConfig",
    "WebhooksService",
    "build_handlers",
]
