"""POST /api/v1/ingest/ceilometer/{provider}: the receiving end of Ceilometer's `http://` event publisher.

Answers 2xx only after the events are stored (the ceilometer-http monitor's runner acknowledges them), 4xx
with a quarantine entry for what cannot be converted, 401 without the configured Basic credentials, 404 for a
provider that is not configured to receive them, 503 when the events could not be stored in time. Its own
HTTP Basic auth (Ceilometer's publisher has no other), not the API's token auth.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from stackwatch.events.model import RawMessage
from stackwatch.events.monitors.http_receiver import RECEIVERS, ReceiverStopped, config
from stackwatch.events.panko_convert import publisher_body
from stackwatch.store.events import QuarantineItem

router = APIRouter()
SOURCE = "ceilometer-http"


def _answer(status: int, detail: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="stackwatch"'} if status == 401 else None
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def _authorized(request: Request, username: str | None, password: str | None) -> bool:
    if not username:
        return True
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        user, _, given = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return False
    return hmac.compare_digest(user.encode(), username.encode()) and hmac.compare_digest(
        given.encode(), (password or "").encode())


async def _read(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, at most `limit` bytes of it; (bytes, whether it was longer)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: max(0, limit - (size - len(chunk)))])
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


_ANSWERS: dict[int | str, dict[str, object]] = {
    400: {"description": "not JSON, or not the publisher's shape: kept in the quarantine"},
    401: {"description": "the configured HTTP Basic credentials are missing or wrong"},
    404: {"description": "the provider is not configured to receive Ceilometer's http publisher"},
    413: {"description": "larger than events.max_event_bytes: kept in the quarantine"},
    503: {"description": "the events could not be stored in time (Ceilometer requeues when configured to)"},
}


@router.post("/api/v1/ingest/ceilometer/{provider}", status_code=200, responses=_ANSWERS)
async def ceilometer_events(provider: str, request: Request) -> JSONResponse:
    """Store the events of one Ceilometer http-publisher POST, then answer."""
    settings = request.app.state.settings
    prov = next((p for p in settings.providers if p.name == provider), None)
    receiver = RECEIVERS.get(provider)
    if prov is None or (receiver is None and prov.events.monitor != SOURCE and prov.events.ceilometer_http is None):
        return _answer(404, f"provider {provider!r} does not receive Ceilometer's http publisher "
                            "(set its events.monitor to ceilometer-http)")
    cfg = config(prov)
    if not _authorized(request, cfg.username, cfg.basic_password()):
        return _answer(401, "HTTP Basic credentials required (events.ceilometer_http.username/password)")
    if receiver is None or not receiver.running:
        return _answer(503, f"no ceilometer-http receiver runs for {provider!r} in this process (it runs where "
                            "the catchers run: `stackwatch serve` without --no-catchers)")
    body, too_big = await _read(request, cfg.max_body_bytes)
    now = datetime.now(UTC)
    if too_big:
        reason = f"ceilometer http body larger than max_body_bytes={cfg.max_body_bytes} (first bytes kept)"
        refused, good = [(reason, body)], []
    else:
        raw_type = request.query_params.get("event_type") or cfg.raw_only_event_type
        good, refused = publisher_body(body, raw_type)
        limit = prov.events.max_event_bytes
        if any(len(b) > limit for b in good):  # the catcher would quarantine it after a 2xx: refuse it now
            too_big = True
            refused += [(f"event of {len(b)} bytes exceeds max_event_bytes={limit}", b) for b in good
                        if len(b) > limit]
            good = [b for b in good if len(b) <= limit]
    loop = asyncio.get_running_loop()
    if refused:
        items = [QuarantineItem(provider, SOURCE, reason, raw, now) for reason, raw in refused]
        try:
            await loop.run_in_executor(None, receiver.quarantine, items)
        except Exception:  # noqa: BLE001 - cannot keep it: say so, the publisher logs the loss
            return _answer(503, "could not quarantine the refused body")
    stored = 0
    if good:
        fut = receiver.submit([RawMessage(b, SOURCE, received_at=now) for b in good])
        try:
            await asyncio.wait_for(asyncio.wrap_future(fut), cfg.store_timeout_seconds)
        except (TimeoutError, ReceiverStopped):
            return _answer(503, "events not stored in time", accepted=0)
        stored = len(good)
    if refused:
        status = 413 if too_big else 400
        return _answer(status, refused[0][0][:300], stored=stored, quarantined=len(refused))
    return JSONResponse({"stored": stored}, status_code=200)
