"""haunted/instance.py: every command finds the checkout's dev instance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from haunted.instance import absolute_database_url, checkout_root, instance_settings
from haunted.settings import ROOT


def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / ".haunted").mkdir(parents=True)
    (root / "web" / "src").mkdir(parents=True)
    return root


def test_a_subfolder_finds_the_dev_instance_below_explicit_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = checkout(tmp_path)
    (root / ".haunted" / "instance.json").write_text(
        json.dumps({"port": 19123, "embedded_kafka_port": 19124, "token": "never read"})
    )
    deeper = root / "web" / "src"
    monkeypatch.chdir(deeper)  # no .env here either

    settings = instance_settings()
    assert settings.port == 19123
    assert settings.kafka.servers == "127.0.0.1:19124"
    assert settings.data_dir == root / ".haunted"
    # The default SQLite file is the checkout's, not a fresh one in the cwd.
    assert settings.database_url == f"sqlite+aiosqlite:///{root}/.haunted/haunted.db"

    monkeypatch.setenv("HAUNTED_PORT", "19125")
    assert instance_settings().port == 19125  # an explicit variable wins
    assert instance_settings().kafka.embedded_port == 19124


def test_the_nearest_data_dir_wins_and_this_checkout_is_one(tmp_path: Path) -> None:
    outer = checkout(tmp_path)
    inner = outer / "web"
    (inner / ".haunted").mkdir()
    assert checkout_root(inner / "src") == inner
    assert checkout_root(outer / "docs") == outer
    assert checkout_root(ROOT / "services" / "auth") == ROOT


def test_a_relative_sqlite_path_becomes_absolute_to_the_root(tmp_path: Path) -> None:
    assert (
        absolute_database_url("sqlite+aiosqlite:///data/x.db", tmp_path)
        == f"sqlite+aiosqlite:///{tmp_path}/data/x.db"
    )
    for unchanged in (
        "sqlite+aiosqlite:////abs/x.db",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://u@h/db",
    ):
        assert absolute_database_url(unchanged, tmp_path) == unchanged
