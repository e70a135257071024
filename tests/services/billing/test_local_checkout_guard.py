"""The offline test checkout's webhook secret is public (issue 14, finding 6): it is
honoured only in dev and only when asked for, never on a staging or production box."""

from __future__ import annotations

import pytest

from haunted.runtime import Haunted
from haunted.settings import Settings
from services.billing import LOCAL_WEBHOOK_SECRET


@pytest.mark.parametrize(
    ("env", "asked", "honoured"),
    [("dev", True, True), ("dev", False, False), ("test", True, False), ("prod", True, False)],
)
async def test_the_public_secret_needs_dev_and_an_explicit_setting(
    settings: Settings, env: str, asked: bool, honoured: bool
) -> None:
    chosen = settings.model_copy(update={"env": env, "billing_local_checkout": asked})
    haunted = Haunted.build(chosen)
    try:
        billing = haunted.services.billing
        assert billing.local_checkout_enabled is honoured
        assert (billing.webhook_secret == LOCAL_WEBHOOK_SECRET) is honoured
    finally:
        await haunted.redis.aclose()
        await haunted.db.dispose()
