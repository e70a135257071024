"""Key material beyond the current signing pair: retired signing keys and the PII keys.

Kept apart from keys_dir, which holds exactly the current pair (see haunted/keys.py).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path

from haunted.keys import PRIVATE_NAME, PUBLIC_NAME, load_signing_key
from haunted.settings import ConfigurationError, Settings
from services.auth import generate_signing_key, new_key_ring_spec, parse_key_ring
from services.auth.crypto import KeyRingError

PII_KEYS_NAME = "pii-keys.json"


def retired_keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "retired-keys"


def pii_keys_file(settings: Settings) -> Path:
    return settings.data_dir / PII_KEYS_NAME


def load_previous_public_keys(settings: Settings) -> list[bytes]:
    """Public keys that still verify: configured files, and keys rotated out less than
    one token lifetime ago (older ones can no longer have a valid token)."""
    keys = []
    for path in settings.auth.jwt_previous_public_key_files:
        if not path.is_file():
            raise ConfigurationError(f"HAUNTED_JWT_PREVIOUS_PUBLIC_KEY_FILES: no file at {path}")
        keys.append(path.read_bytes())
    retired = retired_keys_dir(settings)
    if retired.is_dir():
        horizon = time.time() - settings.auth.access_token_ttl_s
        for path in sorted(retired.glob("*.pem")):
            if path.stat().st_mtime >= horizon:
                keys.append(path.read_bytes())
    return keys


def rotate_signing_key(settings: Settings) -> str:
    """`haunted keys rotate`: a new key signs from now on; the old one keeps verifying
    until the tokens it signed expire. Returns the new key id."""
    if settings.auth.jwt_private_key_file is not None:
        raise ConfigurationError(
            "HAUNTED_JWT_PRIVATE_KEY_FILE is set: rotate by mounting a new key pair and listing "
            "the old public key in HAUNTED_JWT_PREVIOUS_PUBLIC_KEY_FILES"
        )
    current = load_signing_key(settings)
    retired = retired_keys_dir(settings)
    retired.mkdir(parents=True, exist_ok=True)
    (retired / f"{current.kid}.pem").write_bytes(current.public_pem)
    shutil.rmtree(settings.keys_dir)
    return load_signing_key(settings).kid


def load_pii_keys(settings: Settings) -> tuple[dict[str, bytes], bytes]:
    """The AES-GCM key ring and the HMAC lookup key; generated once in dev."""
    encryption, lookup_setting = settings.auth.pii_encryption_keys, settings.auth.pii_lookup_key
    if settings.auth.pii_keys_file is not None:
        if encryption is not None or lookup_setting is not None:
            raise ConfigurationError(
                "HAUNTED_PII_KEYS_FILE: give it or HAUNTED_PII_ENCRYPTION_KEYS and "
                "HAUNTED_PII_LOOKUP_KEY, not both"
            )
        ring_spec, lookup = _pii_keys_from(settings.auth.pii_keys_file)
    elif encryption is not None and lookup_setting is not None:
        ring_spec, lookup = encryption.get_secret_value(), lookup_setting.get_secret_value()
    elif encryption is None and lookup_setting is None:
        ring_spec, lookup = _generated_pii_keys(pii_keys_file(settings))
    else:
        raise ConfigurationError(
            "HAUNTED_PII_ENCRYPTION_KEYS and HAUNTED_PII_LOOKUP_KEY go together"
        )
    try:
        ring = parse_key_ring(ring_spec)
    except KeyRingError as error:
        raise ConfigurationError(f"HAUNTED_PII_ENCRYPTION_KEYS: {error}") from None
    try:
        lookup_key = base64.b64decode(lookup, validate=True)
    except ValueError:
        raise ConfigurationError("HAUNTED_PII_LOOKUP_KEY: not base64") from None
    if len(lookup_key) < 32:
        raise ConfigurationError("HAUNTED_PII_LOOKUP_KEY: must be at least 32 bytes")
    return ring, lookup_key


def _pii_keys_from(path: Path) -> tuple[str, str]:
    try:
        record = json.loads(path.read_text())
        return str(record["ring"]), str(record["lookup"])
    except FileNotFoundError:
        raise ConfigurationError(f"HAUNTED_PII_KEYS_FILE: no file at {path}") from None
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f'HAUNTED_PII_KEYS_FILE: {path} is not {{"ring": ..., "lookup": ...}}'
        ) from None


def init_keys(directory: Path) -> list[str]:
    """`haunted keys init`: the JWT pair and the PII keys for a deployment, written once
    into `directory` (a volume): what is there already is kept. Returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    written = []
    if private.exists() != public.exists():
        raise ConfigurationError(f"{directory} holds half a JWT key pair: remove it or complete it")
    if not private.exists():
        key = generate_signing_key()
        _write_new(public, key.public_pem, 0o644)
        _write_new(private, key.private_pem, 0o600)
        written += [PRIVATE_NAME, PUBLIC_NAME]
    pii = directory / PII_KEYS_NAME
    if not pii.exists():
        _write_new(pii, _new_pii_record(), 0o600)
        written.append(PII_KEYS_NAME)
    return written


def _write_new(path: Path, content: bytes, mode: int) -> None:
    """Written under a temporary name, then linked into place: never half a file, and
    never over one another process wrote first."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def _new_pii_record() -> bytes:
    record = {"ring": new_key_ring_spec(), "lookup": base64.b64encode(os.urandom(32)).decode()}
    return json.dumps(record).encode()


def _generated_pii_keys(path: Path) -> tuple[str, str]:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_new(path, _new_pii_record(), 0o600)  # no-clobber: the first process wins
    record = json.loads(path.read_text())
    return record["ring"], record["lookup"]
