"""`python -m bench [outbox_relay] [login_to_push] [--backend ...] [--events N] [--logins N]`.

With no benchmark named, runs both with modest defaults (`make bench`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bench.common import BACKENDS, Backend

BENCHMARKS = ("outbox_relay", "login_to_push")


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of the foundation, each against a baseline measured in the run.",
    )
    parser.add_argument(
        "benchmarks", nargs="*", metavar="BENCHMARK", help=f"any of {', '.join(BENCHMARKS)}"
    )
    parser.add_argument(
        "--backend",
        choices=[*BACKENDS, "both"],
        default="embedded",
        help="embedded: SQLite + in-process Redis; real: PostgreSQL + Redis (default: embedded)",
    )
    parser.add_argument("--events", type=int, default=20_000, help="outbox_relay: events")
    parser.add_argument(
        "--batch", type=int, default=2000, help="outbox_relay: events per transaction and batch"
    )
    parser.add_argument(
        "--profile", action="store_true", help="outbox_relay: cProfile the relay's run"
    )
    parser.add_argument(
        "--logins", type=int, default=300, help="login_to_push: logins (the README: 1000)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.benchmarks if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    for option in ("events", "batch", "logins"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    backends: tuple[Backend, ...] = BACKENDS if args.backend == "both" else (args.backend,)
    for backend in backends:
        for name in args.benchmarks or BENCHMARKS:
            # Imported when run: one benchmark needs the whole app, the other the bus.
            module = importlib.import_module(f"bench.{name}")
            if name == "outbox_relay":
                module.main(backend, args.events, args.batch, args.profile)
            else:
                module.main(backend, args.logins)


if __name__ == "__main__":
    main()
