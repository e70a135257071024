"""services/billing/plans.py: infra/plans.yaml is valid, and bad plan files are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.billing import PlansFileError, load_plans, parse_plans


def test_the_shipped_plans_load() -> None:
    plans = load_plans()
    assert plans.default.id == "free" and plans.default.price_cents == 0
    pro = plans.get("pro")
    assert pro is not None and pro.entitlements.llm_tokens_per_month > 0
    assert plans.by_stripe_price("price_pro_monthly") == pro
    assert pro.stripe_price("test") == "price_pro_monthly_test"
    assert plans.by_stripe_price("price_unknown") is None


def _plan(**values: Any) -> dict[str, Any]:
    plan: dict[str, Any] = {
        "id": "free",
        "name": "Free",
        "price_cents": 0,
        "currency": "usd",
        "interval": "month",
        "default": True,
        "entitlements": {
            "llm_tokens_per_month": 10,
            "llm_requests_per_minute": 1,
            "llm_tokens_per_minute": 100,
            "seats": 1,
        },
    }
    return {**plan, **values}


@pytest.mark.parametrize(
    ("plans", "problem"),
    [
        ([], "plans"),
        ([_plan(), _plan()], "unique"),
        ([_plan(default=False)], "default"),
        ([_plan(price_cents=100)], "free"),
        ([_plan(interval="week")], "interval"),
        ([_plan(currency="US Dollars")], "currency"),
        ([_plan(entitlements={"seats": 1})], "llm_tokens_per_month"),
        ([_plan(surprise=1)], "surprise"),
        (
            [
                _plan(stripe_prices={"prod": "price_1"}),
                _plan(id="pro", default=False, stripe_prices={"prod": "price_1"}),
            ],
            "two plans",
        ),
    ],
)
def test_bad_plans_are_refused_with_the_reason(plans: list[Any], problem: str) -> None:
    with pytest.raises(PlansFileError, match=problem):
        parse_plans({"plans": plans})


def test_an_unreadable_file_names_itself(tmp_path: Path) -> None:
    broken = tmp_path / "plans.yaml"
    broken.write_text("plans: [unclosed")
    with pytest.raises(PlansFileError, match=r"plans\.yaml"):
        load_plans(broken)
    with pytest.raises(PlansFileError, match=r"missing\.yaml"):
        load_plans(tmp_path / "missing.yaml")
