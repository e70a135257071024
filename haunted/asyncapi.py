"""`haunted docs asyncapi`: FastStream's AsyncAPI document of the catalog and consumers."""

from __future__ import annotations

from typing import Any

from faststream.specification import AsyncAPI

from events.broker import build_broker, declare_catalog
from haunted.runtime import kafka_settings
from haunted.settings import Settings


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    broker = build_broker(kafka_settings(settings))
    declare_catalog(broker)
    spec = AsyncAPI(
        broker,
        title="Haunted events",
        version="1.0.0",
        description="Every topic of the event catalog: CloudEvents 1.0 in Kafka binary mode "
        "(ce_* headers, JSON data as the value, the subject as the key).",
    )
    document: dict[str, Any] = spec.to_specification().to_jsonable()
    return document
