"""The email channel end to end: GraphQL in, mail out, caught by the real aiosmtpd catcher.

Each test runs a whole process (gateway, consumers, relay) on the embedded broker, with
HAUNTED_SMTP_HOST/PORT naming a catcher on a free port.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from events.broker import DLQ_SUFFIX
from events.envelope import Envelope
from events.outbox import OutboxRecord
from haunted.settings import Settings
from schemas import PasswordResetRequested
from services.notifications import CaughtMail, MailCatcher, caught_mail
from services.notifications.catcher import KeepInDirectory
from services.notifications.email import CONSUMER, MailServerUnavailable, SmtpConfig, SmtpMailer
from tests.conftest import (
    LOGIN,
    PASSWORD,
    Server,
    eventually,
    free_port,
    graphql_ok,
    register,
    serve,
    unique_email,
)
from tests.events.conftest import read_all

NEW_PASSWORD = "a whole new passphrase 42"
SIGN_UP = "mutation($e: String!, $p: String!) { signUp(email: $e, password: $p) }"
VERIFY = "mutation($t: String!) { verifyEmail(token: $t) }"
REQUEST_RESET = "mutation($e: String!) { requestPasswordReset(email: $e) }"
RESET = "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }"
CHANGE = "mutation($c: String!, $n: String!) { changePassword(current: $c, new: $n) }"
INVITE = """mutation($team: ID!, $e: String!) {
  inviteMember(teamId: $team, email: $e, role: "member") { id }
}"""
ACCEPT = "mutation($t: String!) { acceptInvite(token: $t) { role } }"


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[MailCatcher]:
    with MailCatcher(tmp_path / "caught", free_port()) as running:
        yield running


def mail_settings(settings: Settings, catcher: MailCatcher, **values: Any) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": catcher.port,
            "smtp_starttls": False,
            "mail_link_base_url": "https://app.example.test",
            **values,
        }
    )


@pytest.fixture
async def mail_server(settings: Settings, catcher: MailCatcher) -> AsyncIterator[Server]:
    async with serve(mail_settings(settings, catcher)) as running:
        yield running


async def mail_to(
    catcher: MailCatcher, address: str, subject: str, count: int = 1, timeout_s: float = 15
) -> list[CaughtMail]:
    """Waits until `count` mails with `subject` reached `address`; returns them."""

    async def arrived() -> list[CaughtMail] | None:
        found = [
            mail
            for mail in caught_mail(catcher.directory)
            if mail.to == address and mail.subject == subject
        ]
        return found if len(found) >= count else None

    found: list[CaughtMail] = await eventually(arrived, timeout_s=timeout_s)
    return found


def token_in(mail: CaughtMail, page: str) -> str:
    """The token of the link to `page`, in both the text and the HTML part."""
    pattern = rf"https://app\.example\.test/{page}\?token=([A-Za-z0-9_%\-]+)"
    text = re.search(pattern, mail.text)
    assert text is not None, mail.text
    assert mail.html is not None and text.group(0) in mail.html
    return unquote(text.group(1))


async def login(server: Server, email: str, password: str, agent: str = "tests") -> dict[str, Any]:
    async with server.client() as client:
        response = await client.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"email": email, "password": password}},
            headers={"User-Agent": agent},
        )
    body: dict[str, Any] = response.json()
    return body


async def outbox_values(server: Server) -> list[bytes]:
    async with server.haunted.db.read() as session:
        return [row.value for row in await session.scalars(select(OutboxRecord))]


async def test_sign_up_mails_a_verification_link_that_verifies(
    settings: Settings, catcher: MailCatcher
) -> None:
    email = unique_email()
    async with serve(mail_settings(settings, catcher, require_email_verification=True)) as server:
        assert (await graphql_ok(server, SIGN_UP, {"e": email, "p": PASSWORD}))["signUp"] is True
        (mail,) = await mail_to(catcher, email, "Confirm your email address")
        refused = await login(server, email, PASSWORD)
        assert refused["errors"][0]["extensions"]["reason"] == "EMAIL_NOT_VERIFIED"
        assert (await graphql_ok(server, VERIFY, {"t": token_in(mail, "verify-email")}))[
            "verifyEmail"
        ]
        assert "errors" not in await login(server, email, PASSWORD)
        # The address travelled sealed: no event holds it in clear.
        assert all(email.encode() not in value for value in await outbox_values(server))


async def test_password_reset_mail_resets_once_and_says_the_password_changed(
    mail_server: Server, catcher: MailCatcher
) -> None:
    email = unique_email()
    await register(mail_server, email)
    assert (await graphql_ok(mail_server, REQUEST_RESET, {"e": email}))["requestPasswordReset"]
    (mail,) = await mail_to(catcher, email, "Reset your password")
    token = token_in(mail, "reset-password")
    assert (await graphql_ok(mail_server, RESET, {"t": token, "p": NEW_PASSWORD}))["resetPassword"]
    again = await mail_server.graphql(RESET, {"t": token, "p": "yet another passphrase 7"})
    assert again["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "errors" not in await login(mail_server, email, NEW_PASSWORD)
    (notice,) = await mail_to(catcher, email, "Your password was changed")
    assert "reset" in notice.text


async def test_invite_mail_carries_the_accept_link(
    mail_server: Server, catcher: MailCatcher
) -> None:
    owner = await register(mail_server)
    team_id = owner["user"]["memberships"][0]["team"]["id"]
    invited = unique_email()
    await graphql_ok(mail_server, INVITE, {"team": team_id, "e": invited}, owner["token"])
    (mail,) = await mail_to(catcher, invited, "You are invited to a team on Haunted")
    assert "member" in mail.text
    newcomer = await register(mail_server, invited)
    accepted = await graphql_ok(
        mail_server, ACCEPT, {"t": token_in(mail, "accept-invite")}, newcomer["token"]
    )
    assert accepted["acceptInvite"]["role"] == "member"


async def test_a_lockout_is_mailed_with_a_way_back_in(
    mail_server: Server, catcher: MailCatcher
) -> None:
    email = unique_email()
    await register(mail_server, email)
    for _ in range(5):
        assert "errors" in await login(mail_server, email, "not the password at all")
    (notice,) = await mail_to(catcher, email, "Your account is locked")
    assert "https://app.example.test/forgot-password" in notice.text
    assert "errors" in await login(mail_server, email, PASSWORD)  # locked from this client
    # The way back in the notice points to: a reset, which unlocks.
    await graphql_ok(mail_server, REQUEST_RESET, {"e": email})
    (reset,) = await mail_to(catcher, email, "Reset your password")
    await graphql_ok(
        mail_server, RESET, {"t": token_in(reset, "reset-password"), "p": NEW_PASSWORD}
    )
    assert "errors" not in await login(mail_server, email, NEW_PASSWORD)


async def test_change_password_is_told_by_email(mail_server: Server, catcher: MailCatcher) -> None:
    email = unique_email()
    account = await register(mail_server, email)
    await graphql_ok(mail_server, CHANGE, {"c": PASSWORD, "n": NEW_PASSWORD}, account["token"])
    (notice,) = await mail_to(catcher, email, "Your password was changed")
    assert "changed" in notice.text
    assert "https://app.example.test/forgot-password" in notice.html  # type: ignore[operator]


async def test_a_sign_in_from_a_new_device_is_told_the_first_device_is_not(
    mail_server: Server, catcher: MailCatcher
) -> None:
    email = unique_email()
    await register(mail_server, email)
    assert "errors" not in await login(mail_server, email, PASSWORD, agent="laptop")
    assert "errors" not in await login(mail_server, email, PASSWORD, agent="laptop")
    assert "errors" not in await login(mail_server, email, PASSWORD, agent="phone")
    # One notice: the phone's (the laptop's two sign-ins came before it, in order).
    (notice,) = await mail_to(catcher, email, "New sign-in to your account")
    assert "new device" in notice.text
    assert "errors" not in await login(mail_server, email, PASSWORD, agent="tablet")
    await mail_to(catcher, email, "New sign-in to your account", count=2)


async def test_a_redelivered_event_sends_no_second_mail(
    mail_server: Server, catcher: MailCatcher
) -> None:
    first, second = unique_email(), unique_email()
    await register(mail_server, first)
    await register(mail_server, second)
    await graphql_ok(mail_server, REQUEST_RESET, {"e": first})
    await mail_to(catcher, first, "Reset your password")
    async with mail_server.haunted.db.read() as session:
        rows = list(await session.scalars(select(OutboxRecord)))
    (record,) = [row for row in rows if row.topic == PasswordResetRequested.topic]
    envelope = Envelope.from_record(record.headers, record.value)
    channel = mail_server.haunted.services.notifications.email
    assert channel is not None
    # Delivered again, as after a crash before the offset commit: nothing more is sent.
    outcome = await mail_server.haunted.consumers.apply(
        CONSUMER, envelope, envelope.decode(), channel.handlers.handle
    )
    assert outcome == "duplicate"
    # Even past the processed-event mark (a replay with it purged): the delivery row holds.
    async with mail_server.haunted.db.transaction() as session:
        await channel.handlers.handle(session, envelope.decode(), envelope)
    # A later mail is the marker that anything sent by the above would have arrived.
    await graphql_ok(mail_server, REQUEST_RESET, {"e": second})
    await mail_to(catcher, second, "Reset your password")
    assert len(await mail_to(catcher, first, "Reset your password")) == 1


class ComesBack(KeepInDirectory):
    """An SMTP server that answers "421 try again later" to the first `refusals`
    attempts (an outage, as a mail provider has them), then keeps mail as the catcher."""

    def __init__(self, directory: Path, refusals: int) -> None:
        super().__init__(directory)
        self.refusals = refusals
        self.refused = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refused < self.refusals:
            self.refused += 1
            return "421 4.3.2 Service not available, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_mail_waits_out_an_smtp_outage_and_dead_letters_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    directory = tmp_path / "caught"
    directory.mkdir()
    # More refusals than attempts a record that cannot be handled gets before its dead letter.
    smtp = ComesBack(directory, refusals=settings.kafka.consumer_max_attempts + 3)
    controller = Controller(smtp, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        catcher = MailCatcher(directory, controller.port)  # read only: never started
        email = unique_email()
        async with serve(mail_settings(settings, catcher)) as server:
            await register(server, email)
            await graphql_ok(server, REQUEST_RESET, {"e": email})
            (mail,) = await mail_to(catcher, email, "Reset your password", timeout_s=60)
            assert smtp.refused == smtp.refusals
            assert token_in(mail, "reset-password")
            dlq = await read_all(server.haunted.kafka, PasswordResetRequested.topic + DLQ_SUFFIX)
            assert dlq == []
    finally:
        controller.stop()


class Refuses:
    """An SMTP server that answers every recipient with `reply`."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        return self.reply


async def test_an_away_server_is_an_outage_and_a_refusal_is_not() -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.com", "b@example.com", "x"
    message.set_content("x")

    def mailer(port: int) -> SmtpMailer:
        return SmtpMailer(SmtpConfig("127.0.0.1", port, "a@example.com", starttls=False))

    with pytest.raises(ConnectionError):  # nothing listens: refused
        await mailer(free_port()).send(message)
    for reply, outage in (("421 4.3.2 try later", True), ("550 5.1.1 no such user", False)):
        controller = Controller(Refuses(reply), hostname="127.0.0.1", port=free_port())
        controller.start()
        try:
            with pytest.raises(Exception) as raised:
                await mailer(controller.port).send(message)
        finally:
            controller.stop()
        assert isinstance(raised.value, ConnectionError) is outage, repr(raised.value)
        assert isinstance(raised.value, MailServerUnavailable) is outage
