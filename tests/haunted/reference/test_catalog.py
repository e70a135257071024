"""haunted/reference/catalog.py: a page per topic, with readers and a valid example record."""

from __future__ import annotations

import json
import re

import pytest

from events.envelope import Envelope
from haunted.reference.catalog import consumer_groups, example_record, page_name, pages
from schemas import CATALOG, Event


@pytest.mark.parametrize("model", CATALOG.values(), ids=list(CATALOG))
def test_the_example_record_decodes_as_the_topic_s_event(model: type[Event]) -> None:
    record = example_record(model)
    envelope = Envelope.from_record(record["headers"], json.dumps(record["value"]).encode())
    assert envelope.type == model.topic
    assert envelope.subject == record["key"]
    assert envelope.dataschema == model.dataschema()
    assert isinstance(envelope.decode(), model)
    assert record["key"] == model.model_validate(record["value"]).key()


def test_examples_are_the_same_on_every_build() -> None:
    assert [example_record(m) for m in CATALOG.values()] == [
        example_record(m) for m in CATALOG.values()
    ]


def test_consumer_groups_are_the_services_subscriptions() -> None:
    groups = consumer_groups()
    # Analytics ingests every topic; notifications follows memberships; llm and flags plans.
    assert all("haunted.analytics" in groups[topic] for topic in CATALOG)
    assert "haunted.notifications" in groups["team.member_added"]
    assert {"haunted.llm", "haunted.flags"} <= set(groups["subscription.activated"])
    assert "haunted.notifications" not in groups["user.logged_in"]


def test_every_topic_has_a_page_with_its_facts_schema_and_example() -> None:
    generated = pages()
    index = generated["events/index.md"]
    for topic, model in CATALOG.items():
        page = generated[f"events/{page_name(topic)}.md"]
        assert f"({page_name(topic)}.md)" in index
        assert f"`{topic}.dlq`" in page
        assert f"`{model.key_field}`" in page
        assert f"### v{model.version}" in page
        assert f'"x-haunted-topic": "{topic}"' in page
        assert '"ce_specversion": "1.0"' in page


def test_pushable_topics_name_the_fan_out_and_internal_ones_do_not() -> None:
    generated = pages()
    row = re.compile(r"^\| read by \| (.*) \|$", re.M)
    read_by = {topic: row.search(generated[f"events/{page_name(topic)}.md"]) for topic in CATALOG}
    assert "fan-out" in read_by["user.logged_in"].group(1)  # type: ignore[union-attr]
    assert "fan-out" not in read_by["flag.evaluated"].group(1)  # type: ignore[union-attr]
