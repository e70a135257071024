"""The Unleash adapter: where flag definitions come from, and the SDK that evaluates them.

Definitions are Unleash's client-features document (`/api/client/features`),
from an Unleash server or from `infra/flags.json`. Each version is handed to a
fresh `UnleashClient` bootstrapped from memory: its Rust engine evaluates
locally, and it never registers, sends metrics or polls on its own, since the
service does the fetching (async, with the last good copy in Redis).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from UnleashClient import UnleashClient
from UnleashClient.cache import BaseCache
from UnleashClient.constants import FEATURES_URL
from UnleashClient.utils import InstanceAllowType
from yggdrasil_engine.engine import UnleashEngine

from events.metrics import external_call

# The permission a flag requires, declared beside its definition in the flags file.
PERMISSION_KEY = "requiredPermission"


class FlagsSourceError(Exception):
    """Definitions that cannot be read or parsed, said in one line naming where they came from."""


@dataclass(frozen=True, slots=True)
class FlagDefinitions:
    """One version of the definitions: the raw document and each feature by name."""

    raw: str
    features: dict[str, dict[str, Any]]

    def permissions(self) -> dict[str, str]:
        return {
            name: str(feature[PERMISSION_KEY])
            for name, feature in self.features.items()
            if feature.get(PERMISSION_KEY)
        }

    def changed(self, previous: FlagDefinitions | None) -> dict[str, bool]:
        """Flags whose definition differs from `previous`, with their new on/off state."""
        before = previous.features if previous is not None else {}
        names = set(before) | set(self.features)
        return {
            name: bool(self.features.get(name, {}).get("enabled", False))
            for name in sorted(names)
            if before.get(name) != self.features.get(name)
        }


EMPTY = FlagDefinitions('{"version": 2, "features": []}', {})


def parse_definitions(raw: str, origin: str) -> FlagDefinitions:
    """Validates a client-features document the way the SDK's engine reads it."""
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as error:
        raise FlagsSourceError(f"{origin}: not valid JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("features"), list):
        raise FlagsSourceError(f"{origin}: expected an object with a 'features' list")
    features: dict[str, dict[str, Any]] = {}
    for index, feature in enumerate(document["features"]):
        if not isinstance(feature, dict) or not isinstance(feature.get("name"), str):
            raise FlagsSourceError(f"{origin}: features[{index}] needs a string 'name'")
        features[feature["name"]] = feature
    try:
        warnings = UnleashEngine().take_state(raw)
    except Exception as error:  # the engine raises KeyError, ValueError, ... on bad shapes
        raise FlagsSourceError(f"{origin}: not a client-features document ({error!r})") from None
    if warnings:
        raise FlagsSourceError(f"{origin}: the Unleash engine rejected parts of it: {warnings}")
    return FlagDefinitions(raw, features)


class _MemoryCache(BaseCache):
    """The SDK's cache interface over a dict: definitions are kept in Redis by the service."""

    def __init__(self, raw: str) -> None:
        self._values: dict[str, Any] = {FEATURES_URL: raw}
        self.bootstrapped = True

    def set(self, key: str, value: Any) -> None:
        self._values[key] = value

    def mset(self, data: dict[str, Any]) -> None:
        self._values.update(data)

    def get(self, key: str, default: Any | None = None) -> Any:
        return self._values.get(key, default)

    def exists(self, key: str) -> bool:
        return key in self._values

    def destroy(self) -> None:
        self._values.clear()


def build_client(definitions: FlagDefinitions, app_name: str, environment: str) -> UnleashClient:
    """An SDK client that evaluates `definitions` in-process and talks to no server."""
    return UnleashClient(
        url="http://unleash.invalid/api",  # never called: no registration, metrics or polling
        app_name=app_name,
        environment=environment,
        disable_metrics=True,
        disable_registration=True,
        cache=_MemoryCache(definitions.raw),
        multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,  # one client per version
    )


class FileSource:
    """Definitions from a flags file in the repository (offline and dev)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file {path}"

    def read(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except OSError as error:
            raise FlagsSourceError(f"{self.path}: cannot be read ({error.strerror})") from None

    async def fetch(self) -> str:
        return self.read()


class UnleashServerSource:
    """Definitions from an Unleash server's client API, with a backend token."""

    def __init__(self, url: str, token: str, app_name: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.name = f"unleash {self.url}"
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            headers={"Authorization": token, "UNLEASH-APPNAME": app_name},
        )

    async def fetch(self) -> str:
        try:
            with external_call("unleash"):
                response = await self._client.get(f"{self.url}/client/features")
                response.raise_for_status()
        except httpx.HTTPError as error:
            raise FlagsSourceError(f"{self.name}: {error!r}") from None
        return response.text

    async def aclose(self) -> None:
        await self._client.aclose()
