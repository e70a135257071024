"""`haunted flags list`: every flag of the active source, in a table."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from haunted.cli import app


def test_lists_the_flags_file(tmp_path: Path) -> None:
    env = {"HAUNTED_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["flags", "list"], env=env)
    assert result.exit_code == 0, result.output
    for text in (
        "new-dashboard",
        "flexibleRollout(rollout=50",
        "plan IN pro,team",
        "blue, green",
        "billing:manage",
        "maintenance-banner",
    ):
        assert text in result.output


def test_malformed_flags_file_fails_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "flags.json"
    bad.write_text("{")
    env = {"HAUNTED_DATA_DIR": str(tmp_path), "HAUNTED_FLAGS_FILE": str(bad)}
    result = CliRunner().invoke(app, ["flags", "list"], env=env)
    assert result.exit_code == 2
    assert f"{bad}: not valid JSON" in result.output
