"""The dev instance a checkout runs, so that every command finds it from anywhere inside.

`haunted dev` writes `<data dir>/instance.json` (its ports and URLs). Other commands
find the checkout's data dir by walking up from the working directory, and take its
values as defaults: an explicit `HAUNTED_*` variable (or `.env` line) still wins.
Without this, a command run from a subfolder would start a fresh, empty SQLite
database there and look for the broker on the default port.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from haunted.settings import ROOT, Settings, load_settings

DATA_DIR = ".haunted"
INSTANCE_FILE = "instance.json"
# What an instance file may set: where the parts are, never a secret.
SHARED = (
    "host",
    "port",
    "kafka_bootstrap",
    "embedded_kafka_port",
    "database_url",
    "redis_url",
    "mail_catcher_port",
    "web_port",
)


def checkout_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds a `.haunted/` data dir, or
    the checkout this package runs from when `start` is inside it."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / DATA_DIR).is_dir() or folder == ROOT:
            return folder
    return None


def absolute_database_url(url: str, root: Path) -> str:
    """A SQLite URL with a relative path made absolute to `root` (not to the cwd)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or not database or database == ":memory:":
        return url
    if Path(database).is_absolute():
        return url
    return parsed.set(database=str(root / database)).render_as_string(hide_password=False)


def instance_settings(start: Path | None = None) -> Settings:
    """Settings as the CLI uses them: HAUNTED_* first, then the dev instance's file,
    then defaults anchored at the checkout root. Raises ConfigurationError."""
    settings = load_settings()
    explicit = settings.flat_fields_set
    root = checkout_root(start or Path.cwd())
    defaults: dict[str, Any] = {}
    if root is not None and "data_dir" not in explicit:
        defaults["data_dir"] = root / DATA_DIR
    data_dir = defaults.get("data_dir", settings.data_dir)
    defaults |= {
        name: value for name, value in read_instance(data_dir).items() if name not in explicit
    }
    if root is not None and "database_url" not in explicit:
        url = defaults.get("database_url", settings.database_url)
        defaults["database_url"] = absolute_database_url(url, root)
    return load_settings(**defaults) if defaults else settings


def read_instance(data_dir: Path) -> dict[str, Any]:
    """What `haunted dev` wrote into `data_dir`; nothing when there is no such file."""
    try:
        values = json.loads((data_dir / INSTANCE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(values, dict):
        return {}
    return {name: values[name] for name in SHARED if name in values}


def write_instance(settings: Settings) -> Path:
    """Records where this dev instance's parts are (`haunted dev` calls it at start)."""
    values: dict[str, Any] = {name: settings.flat_value(name) for name in SHARED}
    try:
        if make_url(settings.database_url).password is not None:
            del values["database_url"]  # a password stays in the variables that gave it
    except ArgumentError:
        del values["database_url"]
    values["urls"] = dict(urls(settings))
    values["pid"] = os.getpid()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / INSTANCE_FILE
    path.write_text(json.dumps(values, indent=2) + "\n")
    return path


def gateway_url(settings: Settings) -> str:
    """The gateway's base URL as a local client reaches it."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://{host}:{settings.port}"


def urls(settings: Settings, *, gateway: bool = True) -> list[tuple[str, str]]:
    """Where each part of a process answers, to print at its start."""
    base = gateway_url(settings)
    found: list[tuple[str, str]] = []
    if gateway:
        found.append(("GraphQL", f"{base}/graphql"))
        if settings.env == "dev":
            found.append(("GraphiQL", f"{base}/graphql (in a browser)"))
        found.append(("Socket.IO", f"{base}/socket.io/"))
        found.append(("Health", f"{base}/healthz, {base}/readyz"))
        found.append(("Metrics", f"{base}/metrics"))
    found.append(("Broker", settings.kafka.servers))
    if settings.env == "dev" and settings.smtp_host is None:
        mail = f"smtp://127.0.0.1:{settings.mail_catcher_port}"
        found.append(("Mail catcher", f"{mail}, {base}/dev/mail" if gateway else mail))
    found.append(("Web app (make dev)", f"http://localhost:{settings.web_port}"))
    return found
