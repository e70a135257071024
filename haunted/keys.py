"""The RS256 signing keys: mounted files in production, generated once in dev."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from haunted.settings import ConfigurationError, Settings
from services.auth import SigningKey, generate_signing_key

PRIVATE_NAME = "jwt-private.pem"
PUBLIC_NAME = "jwt-public.pem"


def load_signing_key(settings: Settings) -> SigningKey:
    """Reads the configured key pair; without one, generates it once into data_dir/keys."""
    private_file, public_file = (
        settings.auth.jwt_private_key_file,
        settings.auth.jwt_public_key_file,
    )
    if (private_file is None) != (public_file is None):
        raise ConfigurationError(
            "HAUNTED_JWT_PRIVATE_KEY_FILE and HAUNTED_JWT_PUBLIC_KEY_FILE go together"
        )
    if private_file is None or public_file is None:
        private_file = settings.keys_dir / PRIVATE_NAME
        public_file = settings.keys_dir / PUBLIC_NAME
        if not private_file.exists():
            _generate_into(settings.keys_dir)
    for name, path in (
        ("HAUNTED_JWT_PRIVATE_KEY_FILE", private_file),
        ("HAUNTED_JWT_PUBLIC_KEY_FILE", public_file),
    ):
        if not path.is_file():
            raise ConfigurationError(f"{name}: no file at {path}")
    return SigningKey(private_pem=private_file.read_bytes(), public_pem=public_file.read_bytes())


def _generate_into(keys_dir: Path) -> None:
    """Writes a new pair into a fresh directory, then renames it to keys_dir.

    The rename is atomic and fails when keys_dir already holds a pair, so processes
    starting together all end up with the same pair and nobody reads half of one.
    """
    key = generate_signing_key()
    keys_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".keys-", dir=keys_dir.parent))  # mode 0700
    try:
        fd = os.open(staging / PRIVATE_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.private_pem)
        (staging / PUBLIC_NAME).write_bytes(key.public_pem)
        try:
            staging.rename(keys_dir)
        except OSError:
            pass  # another process's pair is in place: that one is used
    finally:
        shutil.rmtree(staging, ignore_errors=True)
