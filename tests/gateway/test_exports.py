"""exportMyData and GET /exports/<id>: a user's data export over HTTP, on both backends,
and `haunted privacy export` against the same data."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from typer.testing import CliRunner

from haunted.cli import app
from haunted.settings import Settings
from services.exports import FORMAT
from services.principal import Operator
from tests.conftest import (
    LOGIN,
    PASSWORD,
    Server,
    eventually,
    graphql_ok,
    register,
    unique_email,
)
from tests.haunted import logging_restored

EXPORT = "mutation { exportMyData { url expiresAt } }"
TRACK = "mutation($name: String!, $p: JSON) { track(name: $name, properties: $p) }"
CALL = """mutation($path: String!, $variables: JSON) {
  callPrompt(path: $path, variables: $variables) { requestId promptTokens } }"""
API_KEY = """mutation($name: String!) {
  createApiKey(name: $name, permissions: ["team:read"]) { key apiKey { id } } }"""
INVITE = """mutation($team: ID!, $email: String!) {
  inviteMember(teamId: $team, email: $email, role: "member") { id token } }"""
ENDPOINT = """mutation($team: ID!, $url: String!) {
  createWebhookEndpoint(teamId: $team, url: $url, eventTypes: ["team.member_added"]) {
    id secret } }"""
ENROL = "mutation { enrolTwoFactor { secret } }"
CHECKOUT = "mutation($plan: ID!) { createCheckoutSession(planId: $plan) { id url } }"
SECTIONS = {
    "account",
    "sessions",
    "teams",
    "api_keys",
    "billing",
    "llm_plans",
    "notifications",
    "tracked_events",
    "llm_usage",
    "audit_entries",
    "webhook_endpoints",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The offline test checkout (dev, asked for): a subscription without Stripe."""
    return settings.model_copy(update={"env": "dev", "billing_local_checkout": True})


async def populate(server: Server) -> dict[str, Any]:
    """A user with data in every service; returns what they were shown (secrets too)."""
    email = unique_email()
    me = await register(server, email)
    token, user_id = me["token"], me["user"]["id"]
    team_id = me["user"]["memberships"][0]["team"]["id"]
    second = await graphql_ok(server, LOGIN, {"email": email, "password": PASSWORD})
    await graphql_ok(server, TRACK, {"name": "ghost_seen", "p": {"room": "attic"}}, token)
    await graphql_ok(server, CALL, {"path": "summarize", "variables": {"text": "boo"}}, token)
    key = (await graphql_ok(server, API_KEY, {"name": "ci"}, token))["createApiKey"]
    invite = (await graphql_ok(server, INVITE, {"team": team_id, "email": unique_email()}, token))[
        "inviteMember"
    ]
    hook_url = "http://127.0.0.1:9/hooks/T0KEN-IN-PATH?token=SECRET-IN-QUERY"
    endpoint = (await graphql_ok(server, ENDPOINT, {"team": team_id, "url": hook_url}, token))[
        "createWebhookEndpoint"
    ]
    totp = (await graphql_ok(server, ENROL, {}, token))["enrolTwoFactor"]["secret"]
    checkout = (await graphql_ok(server, CHECKOUT, {"plan": "pro"}, token))["createCheckoutSession"]
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(checkout["url"])).status_code == 303
    return {
        "email": email,
        "token": token,
        "user_id": user_id,
        "team_id": team_id,
        "session_ids": {me["sessionId"]},
        "secrets": [
            me["refreshToken"],
            second["login"]["token"],
            key["key"],
            invite["token"],
            endpoint["secret"],
            totp,
            "T0KEN-IN-PATH",
            "SECRET-IN-QUERY",
        ],
        "api_key_id": key["apiKey"]["id"],
        "invite_id": invite["id"],
        "endpoint_id": endpoint["id"],
    }


async def settled(server: Server, user_id: str) -> dict[str, Any]:
    """The archive once the consumers have caught up (events reach analytics, audit and
    the inbox through the broker): read as the operator, which no rate limit counts."""
    exports = server.haunted.services.exports

    async def archive() -> dict[str, Any] | None:
        body = b"".join([chunk async for chunk in await exports.archive(Operator("test"), user_id)])
        parts = json.loads(body)["sections"]
        types = {event["type"] for event in parts["tracked_events"]}
        actions = {entry["action"] for entry in parts["audit_entries"]}
        ready = (
            parts["notifications"]
            and parts["llm_usage"]
            and {"ghost_seen", "user.logged_in"} <= types
            and {"user.registered", "invite.created"} <= actions
        )
        return parts if ready else None

    parts: dict[str, Any] = await eventually(archive, timeout_s=30)
    return parts


REQUESTED = "user.data_export_requested"


def without_export_requests(archive: dict[str, Any]) -> dict[str, Any]:
    parts = dict(archive["sections"])
    parts["audit_entries"] = [e for e in parts["audit_entries"] if e["action"] != REQUESTED]
    parts["tracked_events"] = [e for e in parts["tracked_events"] if e["type"] != REQUESTED]
    return {**archive, "sections": parts}


async def download(server: Server, url: str, token: str | None = None) -> httpx.Response:
    async with server.client(token) as client:
        return await client.get(url)


async def test_the_archive_holds_every_section_of_the_user_and_nothing_of_another(
    server: Server, settings: Settings, tmp_path: Path
) -> None:
    mine = await populate(server)
    other = await populate(server)
    await settled(server, mine["user_id"])
    await settled(server, other["user_id"])

    link = (await graphql_ok(server, EXPORT, {}, mine["token"]))["exportMyData"]
    assert link["url"].startswith("/exports/")
    response = await download(server, link["url"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert "attachment" in response.headers["content-disposition"]
    assert response.headers["cache-control"] == "no-store"
    archive = response.json()
    assert archive["format"] == FORMAT and archive["user_id"] == mine["user_id"]
    parts = archive["sections"]
    assert set(parts) == SECTIONS

    account = parts["account"]
    assert account["id"] == mine["user_id"] and account["email"] == mine["email"]
    assert account["two_factor_enabled"] is False  # enrolled, not confirmed
    assert len(parts["sessions"]) == 2 and mine["session_ids"] <= {
        s["id"] for s in parts["sessions"]
    }
    (membership,) = parts["teams"]["memberships"]
    assert membership["team_id"] == mine["team_id"] and membership["role"] == "owner"
    assert [i["id"] for i in parts["teams"]["invites_sent"]] == [mine["invite_id"]]
    assert [k["id"] for k in parts["api_keys"]] == [mine["api_key_id"]]
    (billing,) = parts["billing"]
    assert billing["team_id"] == mine["team_id"]
    assert [s["plan_id"] for s in billing["subscriptions"]] == ["pro"]
    assert [p["team_id"] for p in parts["llm_plans"]] == [mine["team_id"]]
    assert parts["llm_plans"][0]["plan_id"] == "pro"
    assert [n["type"] for n in parts["notifications"]] == ["subscription.activated"]
    tracked = [e for e in parts["tracked_events"] if e["type"] == "ghost_seen"]
    assert [e["data"]["properties"] for e in tracked] == [{"room": "attic"}]
    (call,) = parts["llm_usage"]
    assert call["outcome"] == "completed" and call["prompt_path"] == "summarize"
    assert call["prompt_tokens"] > 0 and call["team_id"] == mine["team_id"]
    actions = {entry["action"] for entry in parts["audit_entries"]}
    assert {"user.registered", "user.logged_in", "invite.created"} <= actions
    (endpoint,) = parts["webhook_endpoints"]
    assert endpoint["id"] == mine["endpoint_id"]
    assert endpoint["url_origin"] == "http://127.0.0.1:9"

    text = response.text
    for secret in mine["secrets"]:
        assert secret not in text
    for forbidden in ("password", "$2b$", "secret", "token_hash", "sealed", "whsec_"):
        assert forbidden not in text, forbidden
    for theirs in (other["user_id"], other["email"], other["team_id"], other["endpoint_id"]):
        assert theirs not in text

    # `haunted privacy export` reads the same data through the same facades, as the operator.
    out = tmp_path / "export.json"
    env = {
        "HAUNTED_DATABASE_URL": settings.database_url,
        "HAUNTED_REDIS_URL": settings.redis_url,
        "HAUNTED_DATA_DIR": str(settings.data_dir),
        "HAUNTED_JWT_PRIVATE_KEY_FILE": str(settings.auth.jwt_private_key_file),
        "HAUNTED_JWT_PUBLIC_KEY_FILE": str(settings.auth.jwt_public_key_file),
        "HAUNTED_ENV": "test",
    }

    def run() -> Any:
        with logging_restored():
            return CliRunner().invoke(
                app, ["privacy", "export", mine["user_id"], "--output", str(out)], env=env
            )

    result = await asyncio.to_thread(run)
    assert result.exit_code == 0, result.output
    from_cli = json.loads(out.read_bytes())
    assert from_cli.pop("generated_at") and archive.pop("generated_at")
    # Asking for an export is itself recorded (audit, analytics): those records may land
    # between the two reads, so they are compared apart, below.
    assert without_export_requests(from_cli) == without_export_requests(archive)

    async def both_recorded() -> list[Any]:
        parts = await settled(server, mine["user_id"])
        asked = [e for e in parts["audit_entries"] if e["action"] == REQUESTED]
        return asked if len(asked) == 2 else []

    asked = await eventually(both_recorded)
    assert sorted(e["actor_id"] or "" for e in asked) == ["", mine["user_id"]]

    unknown = await asyncio.to_thread(
        lambda: CliRunner().invoke(app, ["privacy", "export", "no-such-user"], env=env)
    )
    assert unknown.exit_code == 2 and "no such user" in unknown.output


async def test_links_expire_on_the_clock_and_refuse_tampering_and_other_users(
    server: Server,
) -> None:
    mine = await register(server)
    other = await register(server)
    link = (await graphql_ok(server, EXPORT, {}, mine["token"]))["exportMyData"]
    url = urlsplit(link["url"])
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    export_id = url.path.rsplit("/", 1)[1]

    def with_(path: str = url.path, **changed: str) -> str:
        return path + "?" + "&".join(f"{k}={v}" for k, v in {**query, **changed}.items())

    flipped = query["sig"][:-2] + ("AA" if query["sig"][-2:] != "AA" else "BB")
    refused = [
        with_(sig=flipped),
        with_(exp=str(int(query["exp"]) + 3600)),
        with_(path=f"/exports/{export_id[:-1]}{'a' if export_id[-1] != 'a' else 'b'}"),
        with_(sig=""),
        with_(exp="soon"),
        url.path,
    ]
    for bad in refused:
        response = await download(server, bad)
        assert response.status_code == 403, (bad, response.text)
        assert mine["user"]["id"] not in response.text and "{" not in response.text
    # Another signed-in user holding the link: refused; its owner signed in: served.
    assert (await download(server, link["url"], other["token"])).status_code == 403
    assert (await download(server, link["url"], mine["token"])).status_code == 200

    exports = server.haunted.services.exports
    real_clock = exports.clock
    exports.clock = lambda: real_clock() + exports.ttl + timedelta(seconds=1)
    try:
        expired = await download(server, link["url"])
        assert expired.status_code == 410, expired.text
        assert mine["user"]["id"] not in expired.text
        # A tampered link says 403 whatever its time: the signature is checked first.
        assert (await download(server, with_(sig=flipped))).status_code == 403
    finally:
        exports.clock = real_clock
    assert (await download(server, link["url"])).status_code == 200

    # Signing out ends the session's links.
    await graphql_ok(server, "mutation { logout }", {}, mine["token"])
    ended = await download(server, link["url"])
    assert ended.status_code == 410, ended.text
    assert mine["user"]["id"] not in ended.text


async def test_export_is_rate_limited_and_never_for_an_api_key_or_anonymous(
    server: Server,
) -> None:
    mine = await register(server)
    limit = int(server.haunted.settings.export.rate_limit.split("/")[0])
    for _ in range(limit):
        await graphql_ok(server, EXPORT, {}, mine["token"])
    body = await server.graphql(EXPORT, token=mine["token"])
    error = body["errors"][0]
    assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryAfter"] > 0

    key = (await graphql_ok(server, API_KEY, {"name": "ci"}, mine["token"]))["createApiKey"]
    refused = await server.graphql(EXPORT, token=key["key"])
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    anonymous = await server.graphql(EXPORT)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
