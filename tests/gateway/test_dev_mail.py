"""/dev/mail (gateway/dev_mail.py): the caught mail in dev, escaped; a 404 elsewhere."""

from __future__ import annotations

from email.message import EmailMessage

import aiosmtplib

from haunted.settings import Settings
from services.notifications import MailCatcher
from tests.conftest import free_port
from tests.gateway.conftest import gateway_in_process

HOSTILE = '<script>alert("mail")</script>'


async def catch(settings: Settings, subject: str, text: str) -> None:
    """One message through a real catcher keeping mail where the gateway reads it."""
    with MailCatcher(settings.mail_dir, free_port()) as catcher:
        message = EmailMessage()
        message["From"] = "Haunted <no-reply@localhost>"
        message["To"] = "someone@example.com"
        message["Subject"] = subject
        message.set_content(text)
        await aiosmtplib.send(message, hostname="127.0.0.1", port=catcher.port)


async def test_dev_mail_lists_caught_mail_escaped(settings: Settings) -> None:
    dev = settings.model_copy(update={"env": "dev"})
    await catch(dev, f"Hello {HOSTILE}", f"Body with {HOSTILE} & more")
    async with gateway_in_process(dev) as client:
        page = await client.get("/dev/mail")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "someone@example.com" in page.text
    assert "Hello &lt;script&gt;alert(&quot;mail&quot;)&lt;/script&gt;" in page.text
    assert "Body with &lt;script&gt;" in page.text
    assert "<script>" not in page.text


async def test_outside_dev_there_is_no_dev_mail(settings: Settings) -> None:
    assert settings.env == "test"
    await catch(settings, "Something caught", "text")
    async with gateway_in_process(settings) as client:
        page = await client.get("/dev/mail")
    assert page.status_code == 404
    assert "Something caught" not in page.text
