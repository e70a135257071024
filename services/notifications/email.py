"""The email channel: events in, email out, through an SMTP server (aiosmtplib).

Its own consumer group (`notifications.email`), so that an SMTP outage holds back mail
only, never the in-app inboxes. Each handler opens the recipient's address (and the
single-use code, where there is one) sealed in the event with the PII key ring, renders
the event's template (HTML with a plain-text alternative) and sends it. One row per
(event id, recipient) in `email_deliveries`, written in the consumer's transaction
(the one that marks the event processed), so a redelivered event sends nothing.

The row is written before the send and the send happens before the commit: a send that
fails rolls the row back and the event is tried again. A server that is away (refused,
reset, timed out, or answering 4xx) raises a `ConnectionError`, which the consumer
treats as an outage it waits out; only a crash between the server's acceptance and the
commit can send a mail twice (at least once, as every SMTP client).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosmtplib
import structlog
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from events.envelope import Envelope
from events.handlers import Handlers
from schemas import (
    EmailVerificationRequested,
    Event,
    InviteCreated,
    PasswordChanged,
    PasswordResetRequested,
    UserLocked,
    UserLoggedIn,
)
from services.notifications.models import EmailDelivery, KnownDevice

log = structlog.get_logger(__name__)

CONSUMER = "notifications.email"  # the consumer group's name: deployed state, never renamed
TEMPLATES_DIR = Path(__file__).parent / "templates" / "email"
# The associated data the sealed fields were bound to (schemas/auth.py).
ADDRESS_CONTEXT = "email"


def code_context(request_id: str) -> str:
    return f"account-code\0{request_id}"


# Opens a sealed value: (key id, ciphertext, associated data) -> plaintext. The
# composition root passes the PII key ring's; this service holds no key itself.
# None: the value was sealed with the data key of a user since erased (docs/privacy.md).
# Given the handler's session: the key store is read in the handler's transaction.
Unseal = Callable[[AsyncSession, str, bytes, str], Awaitable[str | None]]


class MailServerUnavailable(ConnectionError):
    """The SMTP server answered "try again later" (4xx): an outage, waited out."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout_s: float = 30.0


class SmtpMailer:
    """Sends one message per connection: mail is rare next to events, and a held-open
    connection would only add a failure mode."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    @property
    def sender(self) -> str:
        return self._config.sender

    async def send(self, message: EmailMessage) -> None:
        config = self._config
        try:
            await aiosmtplib.send(
                message,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                start_tls=config.starttls,
                timeout=config.timeout_s,
            )
        except aiosmtplib.SMTPResponseException as error:
            if 400 <= error.code < 500:
                raise MailServerUnavailable(f"SMTP {error.code}: {error.message}") from error
            raise
        except aiosmtplib.SMTPRecipientsRefused as error:
            if all(400 <= refused.code < 500 for refused in error.recipients):
                raise MailServerUnavailable("SMTP refused the recipient for now") from error
            raise


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    text: str
    html: str


class EmailTemplates:
    """`<name>.html` (extends layout.html, defines the subject block) and `<name>.txt`."""

    def __init__(self, directory: Path = TEMPLATES_DIR) -> None:
        loader = FileSystemLoader(directory)
        self._html = Environment(
            loader=loader, autoescape=select_autoescape(["html"]), undefined=StrictUndefined
        )
        self._text = Environment(loader=loader, autoescape=False, undefined=StrictUndefined)  # noqa: S701 - plain text

    def render(self, name: str, context: Mapping[str, Any]) -> Mail:
        html = self._html.get_template(f"{name}.html")
        subject = "".join(html.blocks["subject"](html.new_context(dict(context)))).strip()
        return Mail(
            subject=subject,
            text=self._text.get_template(f"{name}.txt").render(context),
            html=html.render(context),
        )


# The events that mail a single-use link: their template and the web page the link opens.
_CODE_MAILS: dict[type[Event], tuple[str, str]] = {
    EmailVerificationRequested: ("verify_email", "verify-email"),
    PasswordResetRequested: ("reset_password", "reset-password"),
}


def _human(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class EmailChannel:
    """The email channel's handlers, built with what they send through."""

    def __init__(
        self,
        mailer: SmtpMailer,
        unseal: Unseal,
        link_base_url: str,
        templates: EmailTemplates | None = None,
    ) -> None:
        self._mailer = mailer
        self._unseal = unseal
        self._links = link_base_url.rstrip("/")
        self._templates = templates or EmailTemplates()
        self.handlers = Handlers(CONSUMER)
        self.handlers.on(*_CODE_MAILS)(self.on_code_requested)
        self.handlers.on(InviteCreated)(self.on_invite_created)
        self.handlers.on(UserLocked)(self.on_locked)
        self.handlers.on(PasswordChanged)(self.on_password_changed)
        self.handlers.on(UserLoggedIn)(self.on_logged_in)

    def link(self, page: str, token: str | None = None) -> str:
        return f"{self._links}/{page}" + (f"?token={quote(token)}" if token else "")

    async def _address(self, session: AsyncSession, event: Event) -> str | None:
        key_id, sealed = (
            getattr(event, "address_key_id", None),
            getattr(event, "sealed_address", None),
        )
        if key_id is None or sealed is None:
            return None  # an event published before addresses were sealed in: nobody to mail
        # None too when its owner was erased since: nobody to mail.
        return await self._unseal(session, key_id, base64.b64decode(sealed), ADDRESS_CONTEXT)

    async def _code(self, session: AsyncSession, event: Event, request_id: str) -> str | None:
        key_id, sealed = getattr(event, "code_key_id", None), getattr(event, "sealed_code", None)
        assert key_id is not None and sealed is not None
        context = code_context(request_id)
        return await self._unseal(session, key_id, base64.b64decode(sealed), context)

    async def on_code_requested(
        self, session: AsyncSession, event: Event, envelope: Envelope
    ) -> None:
        """A single-use link (verification or reset) for the account's own address."""
        assert isinstance(event, EmailVerificationRequested | PasswordResetRequested)
        template, page = _CODE_MAILS[type(event)]
        token = await self._code(session, event, event.request_id)
        await self._send(
            session,
            envelope,
            event.user_id,
            await self._address(session, event),
            template,
            link=self.link(page, token),
            expires_at=_human(event.expires_at),
        )

    async def on_invite_created(
        self, session: AsyncSession, event: Event, envelope: Envelope
    ) -> None:
        assert isinstance(event, InviteCreated)
        if event.sealed_code is None:
            return  # published before invites carried their token: no link to send
        token = await self._code(session, event, event.invite_id)
        await self._send(
            session,
            envelope,
            f"invite:{event.invite_id}",
            await self._address(session, event),
            "invite",
            link=self.link("accept-invite", token),
            role=event.role,
            expires_at=_human(event.expires_at),
        )

    async def on_locked(self, session: AsyncSession, event: Event, envelope: Envelope) -> None:
        assert isinstance(event, UserLocked)
        await self._send(
            session,
            envelope,
            event.user_id,
            await self._address(session, event),
            "account_locked",
            link=self.link("forgot-password"),
            locked_until=_human(event.locked_until),
            everywhere=event.scope == "account",
        )

    async def on_password_changed(
        self, session: AsyncSession, event: Event, envelope: Envelope
    ) -> None:
        assert isinstance(event, PasswordChanged)
        await self._send(
            session,
            envelope,
            event.user_id,
            await self._address(session, event),
            "password_changed",
            link=self.link("forgot-password"),
            reset=event.reason == "reset",
            at=_human(envelope.time),
        )

    async def on_logged_in(self, session: AsyncSession, event: Event, envelope: Envelope) -> None:
        """A sign-in from a device the user has not signed in from before; the first
        device of all is only remembered (nothing to compare it with)."""
        assert isinstance(event, UserLoggedIn)
        if event.device is None:
            return
        if event.sealed_address is not None and await self._address(session, event) is None:
            return  # its user was erased since: nothing of theirs is remembered again
        if await session.get(KnownDevice, (event.user_id, event.device)) is not None:
            return
        known = await session.scalar(
            select(func.count()).where(KnownDevice.user_id == event.user_id)
        )
        session.add(
            KnownDevice(user_id=event.user_id, device=event.device, first_seen_at=envelope.time)
        )
        if not known:
            return
        await self._send(
            session,
            envelope,
            event.user_id,
            await self._address(session, event),
            "new_sign_in",
            link=self.link("forgot-password"),
            at=_human(envelope.time),
        )

    async def _send(
        self,
        session: AsyncSession,
        envelope: Envelope,
        recipient: str,
        address: str | None,
        template: str,
        **context: Any,
    ) -> None:
        """Sends once per (event, recipient): the row first (a concurrent delivery of the
        same event collides on it before sending), then the mail, then the commit."""
        if address is None:
            return
        if await session.get(EmailDelivery, (envelope.id, recipient)) is not None:
            return
        session.add(
            EmailDelivery(
                event_id=envelope.id,
                recipient=recipient,
                template=template,
                sent_at=datetime.now(UTC),
            )
        )
        await session.flush()
        mail = self._templates.render(template, context)
        message = EmailMessage()
        message["From"] = self._mailer.sender
        message["To"] = address
        message["Subject"] = mail.subject
        # The same id for the same (event, recipient): a resend after a crash is one
        # thread to the reader's client.
        message["Message-ID"] = f"<{envelope.id}.{recipient.replace(':', '-')}@haunted.mail>"
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        await self._mailer.send(message)
        log.info("email sent", template=template, event_id=envelope.id)


__all__ = [
    "CONSUMER",
    "EmailChannel",
    "EmailTemplates",
    "Mail",
    "MailServerUnavailable",
    "SmtpConfig",
    "SmtpMailer",
    "Unseal",
]
