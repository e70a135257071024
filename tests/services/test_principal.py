"""Principal and the `requires` guard, without any backend."""

from __future__ import annotations

from typing import Any

import pytest

from services.errors import Forbidden, Unauthenticated
from services.principal import ROLE_PERMISSIONS, Principal, guarded_permission, requires


def user(**teams: str) -> Principal:
    return Principal(user_id="u1", session_id="s1", teams=teams)


class Facade:
    @requires("billing:manage")
    async def charge(
        self, principal: Principal, amount: int, *, team_id: str | None = None
    ) -> tuple[str | None, int]:
        return team_id, amount

    @requires("team:read")
    async def read(self, principal: Principal, team_id: str | None = None) -> str | None:
        return team_id  # team_id may come positionally: the guard binds the signature

    async def open(self, principal: Principal) -> str:
        return principal.user_id


def test_default_team_prefers_an_owned_team() -> None:
    assert user(b="viewer", c="owner", a="member").default_team_id == "c"
    assert user(b="viewer", a="admin").default_team_id == "a"  # none owned: the first by id
    assert user().default_team_id is None


def test_permissions_are_per_team() -> None:
    principal = user(t1="owner", t2="viewer")
    assert principal.permissions("t1") == ROLE_PERMISSIONS["owner"]
    assert principal.permissions("t2") == ROLE_PERMISSIONS["viewer"]
    assert principal.permissions() == ROLE_PERMISSIONS["owner"]  # the default team
    assert principal.permissions("elsewhere") == frozenset()
    assert user().permissions() == frozenset()
    assert user(t1="superuser").permissions("t1") == frozenset()  # an unknown role grants nothing


def test_api_keys_have_exactly_their_granted_permissions_in_their_team() -> None:
    key = Principal(
        user_id="apikey:k1",
        session_id="apikey:k1",
        teams={"t1": "api"},
        granted=frozenset({"analytics:read"}),
        api_key_id="k1",
    )
    assert key.permissions() == {"analytics:read"}
    assert key.permissions("t1") == {"analytics:read"}
    assert key.permissions("t2") == frozenset()
    assert key.require("analytics:read") == "t1"
    with pytest.raises(Forbidden):
        key.require("team:read", "t1")


async def test_requires_passes_the_resolved_team() -> None:
    principal = user(t1="viewer", t2="admin", t3="owner")
    assert await Facade().charge(principal, 5) == ("t3", 5)  # the default team
    assert await Facade().charge(principal, 5, team_id="t2") == ("t2", 5)
    assert await Facade().read(principal) == "t3"
    assert await Facade().read(principal, "t1") == "t1"
    assert await Facade().read(principal, team_id="t2") == "t2"
    with pytest.raises(Forbidden):
        await Facade().read(principal, "t9")


@pytest.mark.parametrize(
    ("teams", "team_id"),
    [
        ({"t1": "viewer"}, None),  # the default team's role lacks it
        ({"t1": "viewer", "t2": "owner"}, "t1"),  # allowed elsewhere, not in the named team
        ({"t1": "owner"}, "t9"),  # not a member of the named team
        ({}, None),  # no team at all
    ],
)
async def test_requires_raises_forbidden(teams: dict[str, str], team_id: str | None) -> None:
    with pytest.raises(Forbidden) as caught:
        await Facade().charge(user(**teams), 5, team_id=team_id)
    assert caught.value.code == "FORBIDDEN"
    assert caught.value.extensions == {"permission": "billing:manage"}


async def test_requires_without_a_principal_is_unauthenticated() -> None:
    anonymous: Any = None
    with pytest.raises(Unauthenticated) as caught:
        await Facade().charge(anonymous, 5)
    assert caught.value.code == "UNAUTHENTICATED"


def test_requires_on_a_method_without_team_id_fails_at_decoration() -> None:
    async def unscoped(self: object, principal: Principal) -> None:
        return None

    with pytest.raises(TypeError, match="team_id"):
        requires("team:read")(unscoped)


def test_guarded_permission_names_the_guard() -> None:
    assert guarded_permission(Facade.charge) == "billing:manage"
    assert guarded_permission(Facade.open) is None
