"""The service declarations against what else must agree with them."""

from __future__ import annotations

import tomllib
from pathlib import Path

from alembic.script import ScriptDirectory

from events.handlers import BatchHandlers, Handlers
from gateway.graphql import graphql_module
from haunted.migrations import alembic_config
from haunted.runtime import Haunted
from haunted.services import NAMES, SPECS, facades_of, replay_targets
from schemas import CATALOG
from services.billing import load_plans

ROOT = Path(__file__).resolve().parents[2]


def registries(app: Haunted) -> list[Handlers | BatchHandlers]:
    facades = facades_of(app.services)
    return [registry for spec in SPECS for registry in spec.registries(facades)]


def test_import_linter_keeps_exactly_the_declared_services_independent() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (independence,) = [c for c in contracts if c["type"] == "independence"]
    assert sorted(independence["modules"]) == sorted(f"services.{name}" for name in NAMES)


def test_every_declared_service_is_a_package() -> None:
    assert len(set(NAMES)) == len(NAMES)
    for name in NAMES:
        assert (ROOT / "services" / name / "__init__.py").is_file(), name


def test_every_handled_event_class_is_in_the_catalog(facades: Haunted) -> None:
    handled = [event for registry in registries(facades) for event in registry.events]
    assert handled
    for event in handled:
        assert CATALOG.get(event.topic) is event, f"{event.__name__} is not in schemas.CATALOG"
    for target in replay_targets().values():
        assert set(target.topics) <= set(CATALOG)


def test_consumer_group_names_are_unchanged(facades: Haunted) -> None:
    # Deployed state: a renamed group would consume every topic again from the start.
    # A new service adds its own group (named after it); none of these may change.
    groups = {registry.consumer for registry in registries(facades)}
    # (auth's is new: it deletes ended sessions from Redis once more, after an outage.)
    deployed = {"auth", "llm", "notifications", "analytics", "flags", "audit", "webhooks"}
    assert deployed <= groups
    assert groups - deployed <= set(NAMES)
    replayable = {
        "llm",
        "notifications",
        "notifications.memberships",
        "analytics",
        "flags",
        "audit",
        "webhooks",
    }
    assert replayable <= set(replay_targets())
    assert set(replay_targets()) - replayable <= set(NAMES)
    # After a restore, every group is fed again (haunted restore): its target is live.
    # Auth's group keeps no rows (it repeats Redis deletions): nothing to rebuild.
    live = {target.consumer for target in replay_targets().values() if target.live}
    assert live == groups - {"auth"}


def test_analytics_consumes_every_catalog_topic(facades: Haunted) -> None:
    (analytics,) = [r for r in registries(facades) if r.consumer == "analytics"]
    assert set(analytics.topics) == set(CATALOG)


def test_migration_branches_and_graphql_files_are_declared_ones() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite:///unused.db"))
    labels = {label for revision in script.walk_revisions() for label in revision.branch_labels}
    assert {spec.migrations for spec in SPECS if spec.migrations} == labels
    schema = ROOT / "gateway" / "schema"
    files = {path.stem for path in schema.glob("*.graphql")} - {"contract"}
    declared = [spec.graphql for spec in SPECS if spec.graphql]
    # exports: the data export spans every service (ServiceSpec.export): bound beside them.
    assert sorted(declared) == sorted(files - {"exports"})
    for name in [*declared, "exports"]:  # each one's resolvers, bound by the gateway
        module = graphql_module(name)  # none: every field binds to its facade by name
        assert module is None or callable(module.bindables), name


async def test_llm_limits_of_a_team_without_plan_are_the_default_plans_entitlements(
    facades: Haunted,
) -> None:
    default = load_plans(facades.settings.billing.plans_file).default
    limits = await facades.services.llm.limits("a-team-without-subscription")
    assert limits.plan_id == default.id
    assert (
        limits.tokens_per_period,
        limits.requests_per_minute,
        limits.tokens_per_minute,
    ) == (
        default.entitlements.llm_tokens_per_month,
        default.entitlements.llm_requests_per_minute,
        default.entitlements.llm_tokens_per_minute,
    )
