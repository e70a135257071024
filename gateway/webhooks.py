"""`POST /webhooks/stripe`, and the offline test checkout pages (dev only).

The webhook route answers 2xx only once the event's effects are committed;
a bad signature, stale timestamp, malformed or oversized body is 400 with
nothing written; any other failure is 500, so Stripe delivers again.
"""

from __future__ import annotations

import html

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from events.metrics import STRIPE_WEBHOOKS
from services.billing import BillingService, InvalidWebhook
from services.errors import DomainError

log = structlog.get_logger(__name__)


async def _capped_body(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def stripe_webhook_router(billing: BillingService) -> APIRouter:
    router = APIRouter()

    @router.post("/webhooks/stripe")
    async def stripe_webhook(request: Request) -> Response:
        body = await _capped_body(request, billing.config.webhook_max_body_bytes)
        if body is None:
            return JSONResponse({"error": "the body is too large"}, status_code=400)
        try:
            outcome = await billing.handle_webhook(body, request.headers.get("stripe-signature"))
        except InvalidWebhook as error:
            log.warning("stripe webhook refused", reason=str(error))
            STRIPE_WEBHOOKS.labels("invalid").inc()
            return JSONResponse({"error": str(error)}, status_code=400)
        except Exception:
            log.exception("stripe webhook failed; Stripe will deliver it again")
            STRIPE_WEBHOOKS.labels("failed").inc()
            return JSONResponse({"error": "processing failed"}, status_code=500)
        STRIPE_WEBHOOKS.labels(outcome.status).inc()
        return JSONResponse({"received": True, "status": outcome.status})

    @router.get("/billing/test-checkout/{session_id}")
    async def test_checkout_page(session_id: str) -> Response:
        checkout = await billing.local_checkout(session_id)
        if checkout is None:
            return HTMLResponse("<h1>No such test checkout</h1>", status_code=404)
        plan = checkout.plan
        state = (
            "<p>Already completed.</p>"
            if checkout.completed
            else '<form method="post"><button type="submit">Confirm test payment</button></form>'
        )
        price = f"{plan.price_cents / 100:.2f} {plan.currency.upper()} / {plan.interval}"
        return HTMLResponse(
            "<!doctype html><title>Test checkout</title>"
            "<h1>Local test checkout (development only, no money moves)</h1>"
            f"<p>Plan: {html.escape(plan.name)}, {html.escape(price)}</p>{state}"
        )

    @router.post("/billing/test-checkout/{session_id}")
    async def confirm_test_checkout(session_id: str, request: Request) -> Response:
        """Delivers a signed checkout.session.completed to our own webhook route,
        so offline dev runs the same code path as Stripe."""
        try:
            payload, signature = await billing.complete_local_checkout(session_id)
        except DomainError as error:
            return HTMLResponse(f"<h1>{html.escape(error.message)}</h1>", status_code=409)
        url = str(request.url_for("stripe_webhook"))
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                url,
                content=payload,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            )
        if response.status_code != 200:
            return HTMLResponse("<h1>The webhook failed</h1>", status_code=502)
        # Back to the web app, as Stripe's checkout would send the buyer.
        return RedirectResponse(f"{billing.return_url}?checkout=success", status_code=303)

    return router
