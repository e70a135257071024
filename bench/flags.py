"""In-process flag evaluations per second: the flags facade against raw UnleashClient.is_enabled.

Same definitions (infra/flags.json), same flag, same context; the facade adds
the permission guard, the plan read model (cached), the context and the
folded count. Run: python -m bench.flags [--evaluations N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from events.db import Database
from haunted import migrations
from haunted.logging import configure_logging
from haunted.runtime import build_redis
from haunted.services import build_flags
from haunted.settings import MEMORY, Settings
from services.flags.unleash import build_client, parse_definitions
from services.principal import Principal

FLAG = "new-dashboard"  # flexibleRollout with a plan constraint


async def run(evaluations: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        await migrations.upgrade(url)
        settings = Settings(_env_file=None, env="test", database_url=url, redis_url=MEMORY)
        db, redis = Database(url), build_redis(MEMORY)
        service = build_flags(settings, db, redis)
        principal = Principal("user-1", "session-1", {"team-1": "owner"})
        raw = build_client(
            parse_definitions(settings.flags.file.read_text(), "bench"), "bench", "test"
        )
        context = {
            "userId": "user-1",
            "sessionId": "session-1",
            "environment": "test",
            "properties": {"teamId": "team-1", "role": "owner", "plan": "free"},
        }
        await service.is_enabled(principal, FLAG)  # warm the plan cache
        start = time.perf_counter()
        for _ in range(evaluations):
            raw.is_enabled(FLAG, context)
        raw_rate = evaluations / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(evaluations):
            await service.is_enabled(principal, FLAG)
        service_rate = evaluations / (time.perf_counter() - start)
        await redis.aclose()
        await db.dispose()
    return raw_rate, service_rate


def main(evaluations: int = 50_000) -> None:
    configure_logging("WARNING", json=False)
    raw_rate, service_rate = asyncio.run(run(evaluations))
    print(f"raw UnleashClient.is_enabled: {raw_rate:,.0f}/s")
    print(f"FlagsService.is_enabled:      {service_rate:,.0f}/s")
    print(f"ratio (service / raw):        {service_rate / raw_rate:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.flags")
    parser.add_argument("--evaluations", type=int, default=50_000)
    main(parser.parse_args().evaluations)
