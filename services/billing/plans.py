"""Plans as code: infra/plans.yaml, loaded and validated once at start."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas import Entitlements as EventEntitlements

DEFAULT_PLANS_FILE = Path(__file__).resolve().parents[2] / "infra" / "plans.yaml"


class Entitlements(BaseModel):
    """What a plan lets a team do; carried in subscription events to other services."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    llm_tokens_per_month: int = Field(ge=0)
    llm_requests_per_minute: int = Field(ge=1)
    llm_tokens_per_minute: int = Field(ge=1)
    seats: int = Field(ge=1)
    features: tuple[str, ...] = ()

    def for_event(self) -> EventEntitlements:
        """As the subscription events carry them."""
        return EventEntitlements(**self.model_dump())


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    name: str = Field(min_length=1, max_length=100)
    price_cents: int = Field(ge=0)
    currency: str = Field(pattern=r"^[a-z]{3}$")
    interval: Literal["month", "year"]
    default: bool = False
    stripe_prices: dict[str, str] = Field(default_factory=dict)
    entitlements: Entitlements

    @property
    def is_default(self) -> bool:
        """`default`, by the name the API gives it (isDefault)."""
        return self.default

    def stripe_price(self, env: str) -> str | None:
        return self.stripe_prices.get(env)


class PlanCatalog(BaseModel):
    """Every plan, in file order; exactly one default (free) plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plans: tuple[Plan, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> PlanCatalog:
        ids = [plan.id for plan in self.plans]
        if len(set(ids)) != len(ids):
            raise ValueError("plan ids must be unique")
        if sum(plan.default for plan in self.plans) != 1:
            raise ValueError("exactly one plan must be the default (default: true)")
        owner: dict[str, str] = {}
        for plan in self.plans:
            for price in plan.stripe_prices.values():
                if owner.setdefault(price, plan.id) != plan.id:
                    raise ValueError(f"Stripe price {price} belongs to two plans")
        for plan in self.plans:
            if plan.default and plan.price_cents != 0:
                raise ValueError(f"the default plan {plan.id} must be free")
        return self

    def __iter__(self) -> Iterator[Plan]:  # type: ignore[override]
        return iter(self.plans)

    @property
    def by_id(self) -> Mapping[str, Plan]:
        return {plan.id: plan for plan in self.plans}

    def get(self, plan_id: str) -> Plan | None:
        return self.by_id.get(plan_id)

    @property
    def default(self) -> Plan:
        return next(plan for plan in self.plans if plan.default)

    def by_stripe_price(self, price_id: str) -> Plan | None:
        for plan in self.plans:
            if price_id in plan.stripe_prices.values():
                return plan
        return None


class PlansFileError(ValueError):
    """The plans file is missing or invalid; the message names the file and the problem."""


def parse_plans(data: Any, source: str = "plans") -> PlanCatalog:
    try:
        return PlanCatalog.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise PlansFileError(f"{source}: {where}: {first['msg']}") from None


def load_plans(path: Path | None = None) -> PlanCatalog:
    path = path or DEFAULT_PLANS_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise PlansFileError(f"{path}: {error}") from None
    return parse_plans(data, str(path))
