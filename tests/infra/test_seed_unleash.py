"""infra/docker/seed_unleash.py (compose's `unleash-seed`) against the real Unleash
server the flags tests run (tests/services/flags/test_unleash_server.py)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from services.flags import parse_definitions
from services.flags.unleash import build_client
from tests.conftest import eventually
from tests.services.flags import test_unleash_server as flags_server
from tests.services.flags.test_unleash_server import ADMIN_TOKEN, BACKEND_TOKEN, UnleashServer

unleash_server = flags_server.unleash_server  # the flags tests' fixture, used here too

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "docker" / "seed_unleash.py"
FLAGS = ROOT / "infra" / "flags.json"


async def seed(server: UnleashServer, flags: Path = FLAGS) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), "--url", server.base_url, "--token", ADMIN_TOKEN,
               "--environment", "development", "--file", str(flags)]  # fmt: skip
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)


async def client_features(server: UnleashServer) -> dict[str, dict[str, Any]]:
    """What a Haunted process sees: the client API with the backend token."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        response = await client.get(
            "/api/client/features", headers={"Authorization": BACKEND_TOKEN}
        )
    response.raise_for_status()
    return {feature["name"]: feature for feature in response.json()["features"]}


async def test_the_flags_file_seeds_the_server_once(unleash_server: UnleashServer) -> None:
    await unleash_server.start()
    wanted = json.loads(FLAGS.read_text())["features"]
    first = await seed(unleash_server)
    assert first.returncode == 0, first.stderr
    assert f"created {len(wanted)} flags" in first.stdout
    assert 'HAUNTED_FLAGS_REQUIRED_PERMISSIONS={"billing-admin-tools": "billing:manage"}' in (
        first.stdout
    )

    async def seeded() -> dict[str, dict[str, Any]] | None:
        # The client API caches per revision: poll until the last change shows.
        found = await client_features(unleash_server)
        return found if all(f["name"] in found for f in wanted) else None

    served = await eventually(seeded)
    for feature in wanted:
        got = served[feature["name"]]
        assert got["enabled"] == feature["enabled"], feature["name"]
        assert got["type"] == feature["type"]
        assert [s["name"] for s in got["strategies"]] == [s["name"] for s in feature["strategies"]]
        for mine, theirs in zip(feature["strategies"], got["strategies"], strict=True):
            assert theirs["parameters"] == mine["parameters"]
            assert [c["values"] for c in theirs["constraints"]] == [
                c["values"] for c in mine["constraints"]
            ]
            assert [(v["name"], v["weight"]) for v in theirs.get("variants") or []] == [
                (v["name"], v["weight"]) for v in feature["variants"]
            ]

    # Haunted's own evaluation (the SDK client the flags service builds) of the served
    # definitions: the file's variants come out, now from the strategy.
    async with httpx.AsyncClient(base_url=unleash_server.base_url, timeout=10) as client:
        raw = (
            await client.get("/api/client/features", headers={"Authorization": BACKEND_TOKEN})
        ).text
    evaluator = build_client(parse_definitions(raw, "unleash"), "haunted", "development")
    try:
        chosen = {
            evaluator.get_variant("checkout-button", {"userId": f"user-{i}"})["name"]
            for i in range(40)
        }
    finally:
        evaluator.destroy()
    assert chosen == {"blue", "green"}

    # An operator turns one off; seeding again (every compose start) leaves it so.
    await unleash_server.toggle(wanted[0]["name"], on=False)
    again = await seed(unleash_server)
    assert again.returncode == 0, again.stderr
    assert f"created 0 flags (none), {len(wanted)} were there" in again.stdout

    async def still_off() -> bool:
        return (await client_features(unleash_server))[wanted[0]["name"]]["enabled"] is False

    await eventually(still_off)


async def test_a_bad_file_or_token_fails_clearly(
    unleash_server: UnleashServer, tmp_path: Path
) -> None:
    await unleash_server.start()
    broken = tmp_path / "flags.json"
    broken.write_text("{not json")
    done = await seed(unleash_server, broken)
    assert done.returncode == 2 and "not a flags file" in done.stderr
    command = [sys.executable, str(SCRIPT), "--url", unleash_server.base_url,
               "--token", "*:*.wrong", "--file", str(FLAGS)]  # fmt: skip
    refused = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr
