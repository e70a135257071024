"""The table `make bench` ends with: every goal a benchmark checked, met or not.

Each benchmark calls `goal(...)` once per row of issue 19's table (or any goal
it measures). The rows are appended to one JSON-lines file, so the modules can
run as separate processes; `python -m bench.summary` prints them and starts the
file afresh. A row measured twice (two backends, say) is printed twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULTS = Path(os.environ.get("HAUNTED_BENCH_RESULTS", ".bench-results.jsonl"))

# Issue 19's rows: one that no benchmark recorded (it failed, or was skipped)
# is shown as not measured, so the table never looks complete when it is not.
# A row may carry a backend suffix (" [embedded]").
ISSUE_ROWS = (
    "LLM callPrompt, 16 concurrent: throughput",
    "LLM callPrompt, 16 concurrent: added p99",
    "LLM callPrompt, 64 concurrent: throughput",
    "LLM callPrompt, 64 concurrent: p99 / raw's",
    "LLM added latency, one at a time: p50",
    "LLM added latency, one at a time: p99",
    "{ me { id } } with a bearer",
    "{ __typename } with a bearer",
    "{ __typename }",
    "mixed document",
    "login → Socket.IO push p50",
    "login → Socket.IO push p99",
    "outbox relay",
    "logins/s at cost 12",
    "analytics live ingest",
    "Stripe webhooks (PostgreSQL)",
)


def goal(
    path: str,
    figure: str,
    value: float,
    target: float,
    *,
    at_most: bool = False,
    unit: str = "x",
) -> bool:
    """Record one goal: `value` against `target` (`at_most` for latencies).

    `figure` is the human reading, e.g. "14.7k ev/s vs raw 34.6k/s", so the
    table shows what the ratio was made of. Returns whether the goal was met.
    """
    met = value <= target if at_most else value >= target
    row = {
        "path": path,
        "figure": figure,
        "value": value,
        "goal": f"{'<' if at_most else '≥'} {target:g}{unit}",
        "unit": unit,
        "met": met,
        "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
    return met


def main() -> None:
    rows = (
        [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line]
        if RESULTS.exists()
        else []
    )
    table = Table(title="make bench: goals")
    for column in ("path", "measured", "value", "goal", "met", "load"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["path"],
            row["figure"],
            f"{row['value']:.3g}{row['unit']}",
            row["goal"],
            "yes" if row["met"] else "NO",
            f"{row['load']:.1f}" if row["load"] is not None else "-",
        )
    recorded = {row["path"].split(" [")[0] for row in rows}
    missing = [path for path in ISSUE_ROWS if path not in recorded]
    for path in missing:
        table.add_row(path, "not measured", "-", "-", "NO", "-")
    Console().print(table)
    met = sum(row["met"] for row in rows)
    print(f"{met} of {len(rows) + len(missing)} goals met")
    RESULTS.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
