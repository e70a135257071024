"""The flags facade: in-process evaluation, plan and role awareness, folded telemetry, refresh."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from haunted.runtime import Haunted
from haunted.settings import Settings
from services.errors import Forbidden
from services.flags import FlagsService, FlagsSourceError
from services.flags.models import TeamPlan
from services.principal import ROLES, Principal
from tests.services.flags.conftest import (
    FEATURES,
    TOKEN,
    FakeUnleash,
    build,
    document,
    feature,
    outbox,
)

TEAM = "team-1"


def member(role: str = "owner", user: str = "user-1") -> Principal:
    return Principal(user_id=user, session_id="session-1", teams={TEAM: role})


async def set_plan(app: Haunted, plan: str, status: str = "active") -> None:
    async with app.db.transaction() as session:
        session.add(TeamPlan(team_id=TEAM, plan_id=plan, status=status, as_of=datetime.now(UTC)))


async def test_plan_constraint_follows_the_teams_plan(
    flags_app: Haunted, flags: FlagsService
) -> None:
    assert await flags.is_enabled(member(), "pro-reports") is False  # no subscription: free
    await set_plan(flags_app, "pro")
    assert await flags.is_enabled(member(), "pro-reports") is True


async def test_canceled_plan_is_the_default_plan(flags_app: Haunted, flags: FlagsService) -> None:
    await set_plan(flags_app, "pro", status="canceled")
    assert await flags.is_enabled(member(), "pro-reports") is False


@pytest.mark.parametrize("role", ROLES)
async def test_permission_gated_flag_for_each_role(flags: FlagsService, role: str) -> None:
    expected = role in ("owner", "admin")  # the roles that grant billing:manage
    assert await flags.is_enabled(member(role), "billing-tools") is expected
    assert (await flags.variant(member(role), "billing-tools")).enabled is False  # no variants


async def test_api_key_without_the_permission_sees_the_flag_off(flags: FlagsService) -> None:
    key = Principal("user-1", "key", {TEAM: "owner"}, granted=frozenset({"flags:read"}))
    assert await flags.is_enabled(key, "billing-tools") is False


async def test_caller_without_flags_read_is_refused(flags: FlagsService) -> None:
    outsider = Principal(user_id="user-2", session_id="s")
    with pytest.raises(Forbidden):
        await flags.is_enabled(outsider, "banner")


async def test_unknown_flag_is_off_and_logged_once(flags: FlagsService) -> None:
    with capture_logs() as logs:
        assert await flags.is_enabled(member(), "no-such-flag") is False
        assert await flags.is_enabled(member(), "no-such-flag") is False
        variant = await flags.variant(member(), "no-such-flag")
    assert (variant.name, variant.enabled) == ("disabled", False)
    unknown = [entry for entry in logs if entry.get("flag") == "no-such-flag"]
    assert len(unknown) == 1


async def test_variants_are_sticky_per_user_with_payload(flags: FlagsService) -> None:
    seen = {}
    for index in range(40):
        variant = await flags.variant(member(user=f"user-{index}"), "button")
        again = await flags.variant(member(user=f"user-{index}"), "button")
        assert variant == again
        seen[variant.name] = variant
    assert set(seen) == {"blue", "green"}
    assert seen["blue"].payload == {"type": "json", "value": '{"color": "blue"}'}
    assert seen["green"].payload is None
    disabled = await flags.variant(member(), "banner")
    assert (disabled.name, disabled.enabled) == ("disabled", False)


async def test_evaluations_are_folded_into_one_record_per_outcome(
    flags_app: Haunted, flags: FlagsService
) -> None:
    for _ in range(3):
        await flags.is_enabled(member(), "banner")
    await flags.is_enabled(member(), "no-such-flag")  # unknown names are not counted
    assert await flags.flush() == 1
    assert await flags.flush() == 0  # nothing new
    records = await outbox(flags_app, "flag.evaluated")
    assert records == [{"flag": "banner", "enabled": False, "count": 3}]


async def test_file_change_is_installed_and_announced_once(
    flags_app: Haunted, flags: FlagsService, flags_settings: Settings, flags_file: Path
) -> None:
    other = build(flags_app, flags_settings)  # a second process on the same Redis
    assert await flags.refresh(initial=True) is False  # first copy: nothing to announce
    assert await other.refresh(initial=True) is False
    changed = [feature("banner", enabled=True), *FEATURES[:3]]
    flags_file.write_text(document(changed))
    assert await flags.refresh() is True
    assert await flags.is_enabled(member(), "banner") is True
    assert await other.refresh() is False  # already announced by the first process
    assert await other.is_enabled(member(), "banner") is True
    assert await outbox(flags_app, "flag.updated") == [{"flag": "banner", "enabled": True}]


async def test_bad_file_on_refresh_keeps_the_current_definitions(
    flags: FlagsService, flags_file: Path
) -> None:
    flags_file.write_text("{ not json")
    assert await flags.refresh() is False
    assert await flags.is_enabled(member(), "billing-tools") is True


def test_malformed_flags_file_fails_start_with_a_clear_message(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "flags.json"
    on_file = settings.model_copy(
        update={"flags": settings.flags.model_copy(update={"file": path})}
    )
    path.write_text('{"version": 2, "features": [{"name": "x", "enabled": true}')
    with pytest.raises(FlagsSourceError, match=f"{path}: not valid JSON"):
        Haunted.build(on_file)
    path.write_text('{"version": 2, "features": [{"enabled": true}]}')
    with pytest.raises(FlagsSourceError, match=r"features\[0\] needs a string 'name'"):
        Haunted.build(on_file)
    path.write_text('{"version": 2, "features": [{"name": "x", "enabled": "yes"}]}')
    with pytest.raises(FlagsSourceError, match="not a client-features document"):
        Haunted.build(on_file)


async def test_server_source_survives_an_outage_and_cold_starts_from_redis(
    flags_app: Haunted, flags_settings: Settings, unleash: FakeUnleash
) -> None:
    server_settings = flags_settings.model_copy(
        update={"unleash_url": unleash.url, "unleash_api_token": SecretStr(TOKEN)}
    )
    first = build(flags_app, server_settings)
    await first.refresh(initial=True)
    assert first.source_name == f"unleash {unleash.url}"
    assert await first.is_enabled(member(), "billing-tools") is True
    unleash.stop()
    assert await first.refresh() is False
    assert await first.is_enabled(member(), "billing-tools") is True  # evaluation continues
    cold = build(flags_app, server_settings)  # a new process while Unleash is down
    assert await cold.is_enabled(member(), "billing-tools") is False  # nothing loaded yet
    await cold.refresh(initial=True)
    assert await cold.is_enabled(member(), "billing-tools") is True  # from the Redis copy
    await first.stop()
    await cold.stop()


async def test_server_source_refuses_a_wrong_token_and_starts_empty(
    flags_app: Haunted, flags_settings: Settings, unleash: FakeUnleash
) -> None:
    wrong = flags_settings.model_copy(
        update={
            "unleash_url": unleash.url,
            "unleash_api_token": SecretStr("default:development.wrong"),
        }
    )
    service = build(flags_app, wrong)
    with capture_logs() as logs:
        await service.refresh(initial=True)
    assert unleash.requests == 1
    assert any("401" in str(entry.get("error")) for entry in logs)
    assert service.flags() == []
    assert await service.is_enabled(member(), "billing-tools") is False
    await service.stop()
