"""`haunted docs asyncapi`: the AsyncAPI 3.0 document of the event catalog.

Built from `schemas.CATALOG`, the committed snapshots and the consumer groups,
never from a running broker: the document is the same whatever the settings,
and every channel, message and operation comes in catalog order.
"""

from __future__ import annotations

import re
from typing import Any

from events.broker import DLQ_SUFFIX
from events.envelope import CONTENT_TYPE, SPECVERSION, Envelope
from haunted.reference.catalog import (
    DLQ_HEADERS,
    EXAMPLE_TIME,
    consumer_groups,
    example_record,
    versions,
)
from schemas import CATALOG, Event

KAFKA_BINDING = "0.5.0"
# JSON Schema keywords of the snapshots that AsyncAPI's schema object does not take
# (the facts they carry are said by the message itself).
_SNAPSHOT_ONLY = ("$schema", "$id")


def _id(topic: str) -> str:
    """An AsyncAPI component id for a topic name (ids allow letters, digits, _ and -)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", topic)


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0 attributes, in Kafka's binary content mode.",
        # What every record carries: the headers of an envelope with nothing optional.
        "required": list(Envelope("", "", "", EXAMPLE_TIME, "", {}).headers()),
        "properties": {
            "ce_specversion": {"type": "string", "const": SPECVERSION},
            "ce_id": {
                "type": "string",
                "format": "uuid",
                "description": "The event's id: deduplicate on it (delivery is at least once).",
            },
            "ce_source": {
                "type": "string",
                "pattern": "^haunted/[a-z]+$",
                "description": "`haunted/<service>`: the service that owns the topic.",
            },
            "ce_type": {"type": "string", "description": "The event type: the topic's name."},
            "ce_time": {
                "type": "string",
                "format": "date-time",
                "description": "When the fact happened, RFC 3339 UTC.",
            },
            "ce_subject": {
                "type": "string",
                "description": "The subject: the same as the record's key.",
            },
            "content-type": {"type": "string", "const": CONTENT_TYPE},
            "ce_dataschema": {
                "type": "string",
                "pattern": "^urn:haunted:[a-z_.]+:v[0-9]+$",
                "description": "`urn:haunted:<type>:v<N>`: the version of `data`.",
            },
            "traceparent": {
                "type": "string",
                "description": "W3C trace context of the request that caused the event, if any.",
            },
        },
    }


def _dlq_headers_schema() -> dict[str, Any]:
    base = _headers_schema()
    return {
        "type": "object",
        "description": "The original record's headers (as they came, so possibly not a "
        "valid CloudEvent: that may be why it is here), plus the dlq_* headers.",
        "required": list(DLQ_HEADERS),
        "properties": {
            **base["properties"],
            **{name: {"type": "string", "description": text} for name, text in DLQ_HEADERS.items()},
        },
    }


def _payload(model: type[Event]) -> dict[str, Any]:
    history = versions(model.topic)
    schema = dict(history[-1][1]) if history else model.model_json_schema(mode="validation")
    for key in _SNAPSHOT_ONLY:
        schema.pop(key, None)
    # A nested model's `#/$defs/...` would resolve against the AsyncAPI document's root,
    # not the payload: inline each definition where it is used (none is recursive).
    definitions = schema.pop("$defs", {})
    inlined: dict[str, Any] = _inline(schema, definitions)
    return inlined


def _inline(node: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            rest = {key: value for key, value in node.items() if key != "$ref"}
            return {**_inline(definitions[ref.removeprefix("#/$defs/")], definitions), **rest}
        return {key: _inline(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, definitions) for item in node]
    return node


def _message(model: type[Event]) -> dict[str, Any]:
    record = example_record(model)
    return {
        "name": model.topic,
        "title": model.topic,
        "summary": (model.__doc__ or model.topic).strip().splitlines()[0],
        "description": (
            f"Owned by the `{model.source}` service. Version {model.version} "
            f"(`ce_dataschema` `{model.dataschema()}`). Audience `{model.audience}`: who may "
            "see it pushed to clients."
        ),
        "contentType": CONTENT_TYPE,
        "headers": {"$ref": "#/components/schemas/CloudEventHeaders"},
        "payload": _payload(model),
        "bindings": {
            "kafka": {
                "key": {
                    "type": "string",
                    "description": f"The partition key: `data.{model.key_field}` "
                    "(records with one key keep their order).",
                },
                "bindingVersion": KAFKA_BINDING,
            }
        },
        "examples": [{"name": "example", "headers": record["headers"], "payload": record["value"]}],
    }


def _dead_letter(model: type[Event]) -> dict[str, Any]:
    return {
        "name": model.topic + DLQ_SUFFIX,
        "title": model.topic + DLQ_SUFFIX,
        "summary": f"A record of {model.topic} that a consumer gave up on.",
        "description": "The original record, key and value unchanged, with the dlq_* headers "
        "added. Written after the last retry, or at once for a record that does not "
        "decode. The value may not match the schema.",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": "The original record's value, unchanged."},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": "The original record's key."},
                "bindingVersion": KAFKA_BINDING,
            }
        },
    }


def asyncapi_document() -> dict[str, Any]:
    groups = consumer_groups()
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic, model in CATALOG.items():
        ident, dlq = _id(topic), _id(topic + DLQ_SUFFIX)
        messages[ident] = _message(model)
        messages[dlq] = _dead_letter(model)
        channels[ident] = {
            "address": topic,
            "title": topic,
            "description": (model.__doc__ or topic).strip(),
            "messages": {ident: {"$ref": f"#/components/messages/{ident}"}},
            "bindings": {"kafka": {"topic": topic, "bindingVersion": KAFKA_BINDING}},
        }
        channels[dlq] = {
            "address": topic + DLQ_SUFFIX,
            "title": topic + DLQ_SUFFIX,
            "description": f"Dead letters of {topic}.",
            "messages": {dlq: {"$ref": f"#/components/messages/{dlq}"}},
            "bindings": {"kafka": {"topic": topic + DLQ_SUFFIX, "bindingVersion": KAFKA_BINDING}},
        }
        operations[f"publish_{ident}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{ident}"},
            "title": f"{model.source} publishes {topic}",
            "summary": "Through the transactional outbox: once the change it reports commits.",
            "messages": [{"$ref": f"#/channels/{ident}/messages/{ident}"}],
        }
        for group in groups.get(topic, []):
            name = _id(group.removeprefix("haunted."))
            operations[f"consume_{ident}_{name}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{ident}"},
                "title": f"{group} reads {topic}",
                "messages": [{"$ref": f"#/channels/{ident}/messages/{ident}"}],
                "bindings": {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [group]},
                        "bindingVersion": KAFKA_BINDING,
                    }
                },
            }
            operations[f"dead_letter_{ident}_{name}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{dlq}"},
                "title": f"{group} dead-letters {topic}",
                "messages": [{"$ref": f"#/channels/{dlq}/messages/{dlq}"}],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Haunted events",
            "version": "1.0.0",
            "description": "Every topic of the event catalog and its dead-letter twin. Each "
            "record is a CloudEvent 1.0 in Kafka's binary content mode: the `ce_*` headers "
            "carry the attributes, the value is `data` as a JSON object, the key is the "
            "subject. Delivery is at least once: deduplicate on `ce_id`.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "Your Kafka cluster (`HAUNTED_KAFKA_BOOTSTRAP`).",
                "variables": {
                    "bootstrap": {
                        "default": "localhost:9092",
                        "description": "A bootstrap server, host:port.",
                    }
                },
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {
                "CloudEventHeaders": _headers_schema(),
                "DeadLetterHeaders": _dlq_headers_schema(),
            },
            "messages": messages,
        },
    }
