"""The export parts each facade declares (ServiceSpec.export): checked at the facade."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from haunted.runtime import Haunted
from haunted.services import SPECS, export_sections, facades_of
from services.auth import ClientInfo
from services.errors import Forbidden, NotFound
from services.exports import FORMAT
from services.principal import ExportSubject, Operator, Principal
from tests.conftest import PASSWORD, unique_email


async def consume(part: Any) -> Any:
    if isinstance(part, AsyncIterator):
        return [item async for item in part]
    return await part


async def registered(facades: Haunted) -> Principal:
    result = await facades.services.auth.register(unique_email(), PASSWORD, client=ClientInfo())
    return await facades.services.auth.authenticate(result.token)


async def test_every_part_refuses_another_user_and_api_keys(facades: Haunted) -> None:
    owner = await registered(facades)
    intruder = await registered(facades)
    key = Principal(owner.user_id, "", teams=dict(owner.teams), api_key_id="k1", granted=None)
    subject = ExportSubject(owner.user_id, dict(owner.teams))
    sections = export_sections(facades_of(facades.services))
    assert {name for name, _ in sections} >= {"account", "notifications", "audit_entries"}
    for name, read in sections:
        for caller in (intruder, key):
            with pytest.raises(Forbidden):
                await consume(read(caller, subject))
        assert await consume(read(owner, subject)) is not None, name
        assert await consume(read(Operator("test"), subject)) is not None, name


async def test_the_archive_is_streamed_in_parts_and_checks_its_caller_first(
    facades: Haunted,
) -> None:
    owner = await registered(facades)
    intruder = await registered(facades)
    exports = facades.services.exports
    with pytest.raises(Forbidden):
        await exports.archive(intruder, owner.user_id)
    with pytest.raises(NotFound):
        await exports.archive(Operator("test"), "no-such-user")
    chunks = [chunk async for chunk in await exports.archive(owner, owner.user_id)]
    assert len(chunks) > len(exports.sections)  # written part by part, never whole
    archive = json.loads(b"".join(chunks))
    assert archive["format"] == FORMAT and archive["user_id"] == owner.user_id
    assert list(archive["sections"]) == [name for name, _ in exports.sections]


def test_each_service_declares_its_own_parts_and_no_two_share_a_name() -> None:
    declared = {spec.name for spec in SPECS if spec.export is not None}
    # Flags keeps plans per team and nothing about a person.
    assert declared == {spec.name for spec in SPECS} - {"flags"}
