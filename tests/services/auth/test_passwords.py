"""Password policy and hashing."""

from __future__ import annotations

import pytest
from passlib.context import CryptContext

from services.auth.passwords import PasswordHasher, check_password_policy, common_passwords
from services.errors import BadUserInput


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 10"),
        ("x" * 1025, "at most 1024"),
        ("1234567890", "too common"),
        ("PassWord123", "too common"),
    ],
)
def test_policy_refuses(password: str, message: str) -> None:
    with pytest.raises(BadUserInput, match=message):
        check_password_policy(password)


def test_policy_accepts_a_long_unusual_password() -> None:
    check_password_policy("correct horse battery staple")
    check_password_policy("x" * 1024)
    assert len(common_passwords()) > 1000


async def test_long_passwords_are_not_truncated() -> None:
    hasher = PasswordHasher(rounds=4)
    base = "a" * 72
    hashed = await hasher.hash(base + "one")
    assert (await hasher.verify(base + "one", hashed))[0]
    # bcrypt alone would ignore everything after byte 72 and accept this:
    assert not (await hasher.verify(base + "two", hashed))[0]


async def test_hash_at_a_lower_cost_is_upgraded_at_login() -> None:
    old = CryptContext(schemes=["bcrypt_sha256"], bcrypt_sha256__rounds=4).hash("a long password")
    matches, upgraded = await PasswordHasher(rounds=5).verify("a long password", old)
    assert matches and upgraded is not None and upgraded != old
    assert (await PasswordHasher(rounds=5).verify("a long password", upgraded)) == (True, None)


async def test_unknown_user_still_costs_a_verification() -> None:
    assert await PasswordHasher(rounds=4).verify("anything at all", None) == (False, None)
