"""The RS256 signing keys: mounted files in production, generated once in dev."""

from __future__ import annotations

import os
from pathlib import Path

from haunted.settings import ConfigurationError, Settings
from services.auth import SigningKey, generate_signing_key

PRIVATE_NAME = "jwt-private.pem"
PUBLIC_NAME = "jwt-public.pem"


def load_signing_key(settings: Settings) -> SigningKey:
    """Reads the configured key pair; without one, generates it once into data_dir/keys."""
    private_file, public_file = settings.jwt_private_key_file, settings.jwt_public_key_file
    if (private_file is None) != (public_file is None):
        raise ConfigurationError(
            "HAUNTED_JWT_PRIVATE_KEY_FILE and HAUNTED_JWT_PUBLIC_KEY_FILE go together"
        )
    if private_file is None or public_file is None:
        private_file = settings.keys_dir / PRIVATE_NAME
        public_file = settings.keys_dir / PUBLIC_NAME
        if not private_file.exists():
            _write_generated(private_file, public_file)
    for name, path in (
        ("HAUNTED_JWT_PRIVATE_KEY_FILE", private_file),
        ("HAUNTED_JWT_PUBLIC_KEY_FILE", public_file),
    ):
        if not path.is_file():
            raise ConfigurationError(f"{name}: no file at {path}")
    return SigningKey(private_pem=private_file.read_bytes(), public_pem=public_file.read_bytes())


def _write_generated(private_file: Path, public_file: Path) -> None:
    key = generate_signing_key()
    private_file.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary name first so that two processes starting together
    # never read half a key.
    tmp = private_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_pem)
    public_file.write_bytes(key.public_pem)
    tmp.replace(private_file)
