"""/dev/mail: the mail the dev catcher caught, as one HTML page (dev only).

Everything shown came from outside (addresses, subjects, bodies): all of it is
escaped, and the HTML bodies are shown as text, never rendered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from services.notifications import CaughtMail

CaughtMailSource = Callable[[], Sequence[CaughtMail]]


def page(mails: Sequence[CaughtMail]) -> str:
    rows = "\n".join(
        "<tr>"
        f"<td>{escape(f'{mail.received_at:%Y-%m-%d %H:%M:%S}')}</td>"
        f"<td>{escape(mail.to)}</td>"
        f"<td>{escape(mail.subject)}</td>"
        f"<td><pre>{escape(mail.text)}</pre></td>"
        "</tr>"
        for mail in mails
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>Caught mail</title></head><body>"
        f"<h1>Caught mail ({len(mails)})</h1>"
        '<table border="1" cellpadding="4"><thead><tr><th>received</th><th>to</th>'
        f"<th>subject</th><th>text</th></tr></thead><tbody>{rows}</tbody></table>"
        "</body></html>"
    )


def add_dev_mail_route(app: FastAPI, source: CaughtMailSource) -> None:
    @app.get("/dev/mail", response_class=HTMLResponse)
    async def dev_mail() -> HTMLResponse:
        return HTMLResponse(page(source()), headers={"Cache-Control": "no-store"})
