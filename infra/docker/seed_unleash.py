"""Seeds an Unleash server with the flags of infra/flags.json, through its admin API.

    python infra/docker/seed_unleash.py --url http://unleash:4242 \\
        --token '*:*.admin-token' --environment development --file infra/flags.json

compose's one-shot `unleash-seed` service runs it on every start. A flag that is
not on the server is created with its strategies, variants and state in the
environment; a flag that is there already is left alone (an operator may have
changed it since). Standard library only: it runs in any Python 3.11 image.
`requiredPermission` is Haunted's, not Unleash's: the script prints the
HAUNTED_FLAGS_REQUIRED_PERMISSIONS value that carries it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote


class SeedError(Exception):
    pass


class Admin:
    def __init__(self, url: str, token: str, project: str = "default") -> None:
        self.base = f"{url.rstrip('/')}/api/admin/projects/{quote(project)}/features"
        self.token = token

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (main accepts http(s) URLs only)
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": self.token, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http only: main)
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")[:500]
            if error.code == 404 and method == "GET":
                return 404, None
            raise SeedError(f"{method} {path or '/'}: HTTP {error.code}: {detail}") from None


def wait_until_up(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            health = f"{url.rstrip('/')}/health"
            with urllib.request.urlopen(health, timeout=5) as response:  # noqa: S310 (http only)
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SeedError(f"Unleash at {url} did not answer /health in {timeout_s:.0f} s")
        time.sleep(1)


def seed(admin: Admin, features: list[dict[str, Any]], environment: str) -> list[str]:
    """Creates the flags the server lacks; returns their names."""
    created = []
    for feature in features:
        name = feature["name"]
        status, _ = admin.call("GET", f"/{quote(name)}")
        if status == 200:
            continue
        admin.call(
            "POST",
            "",
            {
                "name": name,
                "type": feature.get("type", "release"),
                "description": feature.get("description", ""),
                "impressionData": feature.get("impressionData", False),
            },
        )
        where = f"/{quote(name)}/environments/{quote(environment)}"
        for strategy in feature.get("strategies", []):
            admin.call(
                "POST",
                f"{where}/strategies",
                {
                    "name": strategy["name"],
                    "parameters": strategy.get("parameters", {}),
                    "constraints": strategy.get("constraints", []),
                    # Unleash 5+ keeps variants on strategies (environment variants are
                    # refused): the flag's variants go on each of its strategies.
                    "variants": strategy.get("variants") or feature.get("variants", []),
                },
            )
        if feature.get("enabled", False):
            admin.call("POST", f"{where}/on")
        created.append(name)
    return created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the server, e.g. http://unleash:4242")
    parser.add_argument("--token", required=True, help="an admin API token")
    parser.add_argument("--environment", default="development")
    parser.add_argument("--file", type=Path, default=Path("infra/flags.json"))
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for /health")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        print(f"error: --url {args.url!r} is not an http(s) URL", file=sys.stderr)
        return 2
    try:
        document = json.loads(args.file.read_text())
        features = document["features"]
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {args.file}: not a flags file ({error})", file=sys.stderr)
        return 2
    try:
        wait_until_up(args.url, args.wait)
        created = seed(Admin(args.url, args.token), features, args.environment)
    except SeedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    kept = len(features) - len(created)
    print(f"created {len(created)} flags ({', '.join(created) or 'none'}), {kept} were there")
    permissions = {
        f["name"]: f["requiredPermission"] for f in features if f.get("requiredPermission")
    }
    if permissions:
        print(f"HAUNTED_FLAGS_REQUIRED_PERMISSIONS={json.dumps(permissions)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
