"""haunted/keys.py: mounted key files in production, a pair generated once in dev."""

from __future__ import annotations

import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from haunted.keys import PRIVATE_NAME, PUBLIC_NAME, load_signing_key
from haunted.settings import ConfigurationError, Settings
from services.auth import SigningKey
from tests.conftest import make_settings


def _matches(key: SigningKey) -> bool:
    """The public key is the private key's."""
    private = serialization.load_pem_private_key(key.private_pem, password=None)
    derived = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public = serialization.load_pem_public_key(key.public_pem).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return derived == public


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_pair_is_generated_once_and_reused(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path / "data")
    first = load_signing_key(settings)
    private_file = settings.keys_dir / PRIVATE_NAME
    assert private_file.read_bytes() == first.private_pem
    assert (settings.keys_dir / PUBLIC_NAME).read_bytes() == first.public_pem
    assert _mode(private_file) == 0o600
    assert _mode(settings.keys_dir) == 0o700
    assert _matches(first)

    again = load_signing_key(make_settings(data_dir=tmp_path / "data"))
    assert again.kid == first.kid
    assert again.private_pem == first.private_pem
    assert sorted(p.name for p in settings.keys_dir.iterdir()) == [PRIVATE_NAME, PUBLIC_NAME]
    assert sorted(p.name for p in settings.data_dir.iterdir()) == ["keys"]


def test_processes_starting_together_agree_on_one_pair(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path / "data")
    start = threading.Barrier(4)

    def load() -> SigningKey:
        start.wait()
        return load_signing_key(settings)

    with ThreadPoolExecutor(4) as pool:
        keys = list(pool.map(lambda _: load(), range(4)))
    assert len({key.kid for key in keys}) == 1
    assert all(key.private_pem == keys[0].private_pem for key in keys)
    assert _matches(keys[0])
    assert load_signing_key(settings).kid == keys[0].kid
    assert sorted(p.name for p in settings.data_dir.iterdir()) == ["keys"]  # no staging left


def test_mounted_files_are_used_as_they_are(
    tmp_path: Path, signing_key_files: tuple[Path, Path]
) -> None:
    settings = make_settings(
        data_dir=tmp_path / "data",
        jwt_private_key_file=signing_key_files[0],
        jwt_public_key_file=signing_key_files[1],
    )
    key = load_signing_key(settings)
    assert key.private_pem == signing_key_files[0].read_bytes()
    assert key.public_pem == signing_key_files[1].read_bytes()
    assert not settings.keys_dir.exists()


@pytest.mark.parametrize("given", ["jwt_private_key_file", "jwt_public_key_file"])
def test_one_key_file_without_the_other_is_refused(
    tmp_path: Path, signing_key_files: tuple[Path, Path], given: str
) -> None:
    path = signing_key_files[0] if given == "jwt_private_key_file" else signing_key_files[1]
    settings = make_settings(data_dir=tmp_path / "data", **{given: path})
    with pytest.raises(ConfigurationError) as error:
        load_signing_key(settings)
    assert "HAUNTED_JWT_PRIVATE_KEY_FILE" in str(error.value)
    assert "HAUNTED_JWT_PUBLIC_KEY_FILE" in str(error.value)
    assert not settings.keys_dir.exists()


@pytest.mark.parametrize("missing", ["HAUNTED_JWT_PRIVATE_KEY_FILE", "HAUNTED_JWT_PUBLIC_KEY_FILE"])
def test_a_missing_key_file_names_its_variable(
    tmp_path: Path, signing_key_files: tuple[Path, Path], missing: str
) -> None:
    private, public = signing_key_files
    if missing == "HAUNTED_JWT_PRIVATE_KEY_FILE":
        private = tmp_path / "nowhere" / "private.pem"
    else:
        public = tmp_path / "nowhere" / "public.pem"
    settings: Settings = make_settings(
        data_dir=tmp_path / "data", jwt_private_key_file=private, jwt_public_key_file=public
    )
    with pytest.raises(ConfigurationError) as error:
        load_signing_key(settings)
    assert str(error.value).startswith(f"{missing}: ")
    assert "nowhere" in str(error.value)


def test_rotation_signs_with_a_new_key_and_keeps_verifying_old_tokens(tmp_path: Path) -> None:
    from datetime import timedelta

    from haunted.keyring import load_previous_public_keys, rotate_signing_key
    from services.auth import TokenIssuer

    settings = make_settings(data_dir=tmp_path / ".haunted")
    old_key = load_signing_key(settings)
    old_token, _ = TokenIssuer(
        old_key, issuer="haunted", audience="haunted", ttl=timedelta(hours=1)
    ).issue("u1", "s1")
    new_kid = rotate_signing_key(settings)
    assert new_kid != old_key.kid
    rotated = TokenIssuer(
        load_signing_key(settings),
        verify_only=load_previous_public_keys(settings),
        issuer="haunted",
        audience="haunted",
        ttl=timedelta(hours=1),
    )
    assert rotated.verify(old_token).user_id == "u1"
    assert {key["kid"] for key in rotated.jwks()["keys"]} == {old_key.kid, new_kid}
