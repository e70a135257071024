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


def test_keys_init_writes_a_deployment_s_keys_once(tmp_path: Path) -> None:
    """`haunted keys init` is compose's one-shot `keys` service: run on every start,
    it writes the keys the first time and keeps them afterwards."""
    import subprocess
    import sys

    from haunted.keyring import load_pii_keys

    haunted = Path(sys.executable).parent / "haunted"
    keys = tmp_path / "volume"
    env = {"PATH": "/usr/bin:/bin"}
    first = subprocess.run([str(haunted), "keys", "init", str(keys)], env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert "wrote jwt-private.pem, jwt-public.pem, pii-keys.json" in first.stderr
    assert sorted(p.name for p in keys.iterdir()) == [
        "jwt-private.pem", "jwt-public.pem", "pii-keys.json"
    ]  # fmt: skip
    assert (keys / "jwt-private.pem").stat().st_mode & 0o077 == 0
    assert (keys / "pii-keys.json").stat().st_mode & 0o077 == 0
    contents = {p.name: p.read_bytes() for p in keys.iterdir()}

    again = subprocess.run([str(haunted), "keys", "init", str(keys)], env=env,
                           capture_output=True, text=True)  # fmt: skip
    assert again.returncode == 0 and "nothing new" in again.stderr
    assert {p.name: p.read_bytes() for p in keys.iterdir()} == contents

    settings = Settings(
        _env_file=None,
        env="prod",
        database_url="postgresql+asyncpg://haunted@db/haunted",
        redis_url="redis://redis:6379/0",
        kafka_bootstrap="kafka:9092",
        jwt_private_key_file=keys / "jwt-private.pem",
        jwt_public_key_file=keys / "jwt-public.pem",
        pii_keys_file=keys / "pii-keys.json",
    )
    assert load_signing_key(settings).private_pem == contents["jwt-private.pem"]
    ring, lookup = load_pii_keys(settings)
    assert ring and len(lookup) == 32

    (keys / "jwt-public.pem").unlink()
    half = subprocess.run([str(haunted), "keys", "init", str(keys)], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert half.returncode == 2 and "half a JWT key pair" in half.stderr
    assert not (keys / "jwt-public.pem").exists()


def test_a_pii_keys_file_and_the_variables_are_refused_together(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from haunted.keyring import load_pii_keys

    settings = Settings(
        _env_file=None,
        pii_keys_file=tmp_path / "missing.json",
        pii_lookup_key=SecretStr("x"),
    )
    with pytest.raises(ConfigurationError, match="not both"):
        load_pii_keys(settings)
    with pytest.raises(ConfigurationError, match="no file at"):
        load_pii_keys(settings.model_copy(update={"pii_lookup_key": None}))
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(ConfigurationError, match="is not"):
        load_pii_keys(Settings(_env_file=None, pii_keys_file=tmp_path / "bad.json"))
