"""haunted/asyncapi.py: an AsyncAPI 3 document the official parser accepts, that says
what the records really carry.

The parser is `@asyncapi/parser` from site/package-lock.json (`make docs-build`
installs it with `npm ci`), run by site/validate-asyncapi.mjs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from events.broker import DLQ_SUFFIX
from haunted.asyncapi import asyncapi_document
from haunted.reference.catalog import example
from schemas import CATALOG

SITE = Path(__file__).resolve().parents[2] / "site"
VALIDATOR = SITE / "validate-asyncapi.mjs"


def validate(document: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node is not None, "node is needed to run the AsyncAPI parser"
    assert (SITE / "node_modules" / "@asyncapi" / "parser").is_dir(), (
        "run `make docs-build` (npm ci in site/) to install the AsyncAPI parser"
    )
    path = tmp_path / "asyncapi.json"
    path.write_text(json.dumps(document))
    return subprocess.run(
        [node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def test_the_official_parser_accepts_it(document: dict[str, Any], tmp_path: Path) -> None:
    result = validate(document, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{2 * len(CATALOG)} channels" in result.stdout


def test_the_parser_refuses_a_broken_document(document: dict[str, Any], tmp_path: Path) -> None:
    """The validation can fail: a message pointing at a schema that does not exist."""
    broken = json.loads(json.dumps(document))
    first = next(iter(broken["components"]["messages"].values()))
    first["headers"] = {"$ref": "#/components/schemas/NoSuchHeaders"}
    result = validate(broken, tmp_path)
    assert result.returncode == 1
    assert "NoSuchHeaders" in result.stdout + result.stderr


def test_every_topic_and_its_dead_letters_in_catalog_order(document: dict[str, Any]) -> None:
    addresses = [channel["address"] for channel in document["channels"].values()]
    expected = [name for topic in CATALOG for name in (topic, topic + DLQ_SUFFIX)]
    assert addresses == expected


def test_headers_describe_what_a_record_carries(document: dict[str, Any]) -> None:
    headers = document["components"]["schemas"]["CloudEventHeaders"]
    for model in CATALOG.values():
        sent = example(model).headers()
        assert set(sent) <= set(headers["properties"]), model.topic
        assert set(headers["required"]) <= set(sent), model.topic


def test_nothing_points_at_a_header_never_sent(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert "correlationId" not in text
    sent = {name for model in CATALOG.values() for name in example(model).headers()}
    for location in re.findall(r"\$message\.header#/([\w-]+)", text):
        assert location in sent


def test_each_message_has_its_key_schema_and_an_example(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    for topic, model in CATALOG.items():
        message = messages[topic.replace(".", "_")]
        assert f"data.{model.key_field}" in message["bindings"]["kafka"]["key"]["description"]
        assert message["payload"]["x-haunted-topic"] == topic
        assert set(message["payload"]["required"]) <= set(message["examples"][0]["payload"])


def test_consumer_groups_receive_and_dead_letter(document: dict[str, Any]) -> None:
    operations = document["operations"]
    receive = operations["consume_team_member_added_notifications"]
    assert receive["action"] == "receive"
    assert receive["bindings"]["kafka"]["groupId"]["enum"] == ["haunted.notifications"]
    dead = operations["dead_letter_team_member_added_notifications"]
    assert dead["channel"] == {"$ref": "#/channels/team_member_added_dlq"}
    assert operations["publish_user_logged_in"]["action"] == "send"
