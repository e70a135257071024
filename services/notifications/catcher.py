"""The dev mail catcher (aiosmtpd): an SMTP server on a local port that keeps every
message it receives as a file, for `haunted mail list` and the gateway's /dev/mail.

Files, not memory: the catcher runs in `haunted dev`, and `haunted mail list` is
another process.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True, slots=True)
class CaughtMail:
    id: str
    received_at: datetime
    sender: str
    to: str
    subject: str
    text: str
    html: str | None


class KeepInDirectory:
    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        # Time first in the name: a listing sorts by arrival.
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
        partial = self._directory / f".{name}"
        partial.write_bytes(content)
        partial.rename(self._directory / name)  # never seen half-written
        return "250 Message accepted for delivery"


class MailCatcher:
    """`start()` listens on 127.0.0.1:`port`; `stop()` closes it."""

    def __init__(self, directory: Path, port: int, host: str = "127.0.0.1") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.port = port
        self._controller = Controller(KeepInDirectory(directory), hostname=host, port=port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


def _parse(path: Path) -> CaughtMail:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    stamp = path.name.split("-", 1)[0]
    return CaughtMail(
        id=path.stem,
        received_at=datetime.strptime(stamp, "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC),
        sender=str(message.get("From", "")),
        to=str(message.get("To", "")),
        subject=str(message.get("Subject", "")),
        text=text.get_content() if text is not None else "",
        html=html.get_content() if html is not None else None,
    )


def caught_mail(directory: Path, limit: int = 200) -> list[CaughtMail]:
    """What the catcher kept in `directory`, newest first."""
    if not directory.is_dir():
        return []
    paths = sorted(directory.glob("[0-9]*.eml"), reverse=True)[:limit]
    return [_parse(path) for path in paths]


__all__ = ["CaughtMail", "MailCatcher", "caught_mail"]
