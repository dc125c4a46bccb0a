"""`/metrics` (Prometheus text, admins) and `/readyz` (database reachable, each provider's monitor).

Counters come from every stackwatch process through stackwatch.selfmetrics (multiprocess files); the monitor lag
(now - newest stored event time, per configured provider) is read from the store at scrape time: one indexed
`max(sort_time)` per provider, the same cost whatever the table holds.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select, text

from stackwatch import selfmetrics
from stackwatch.api import schemas
from stackwatch.api.identity import admin_caller
from stackwatch.store.models import EventRow

router = APIRouter(tags=["observability"])


def newest_events(request: Request) -> dict[str, float | None]:
    """Per configured provider: the newest stored event's time (epoch seconds), None when it has none."""
    store = request.app.state.store
    out: dict[str, float | None] = {}
    with store.engine.connect() as conn:
        for provider in request.app.state.settings.providers:
            newest = conn.execute(
                select(func.max(EventRow.sort_time)).where(EventRow.provider == provider.name)
            ).scalar()
            out[provider.name] = newest.timestamp() if newest is not None else None
    return out


def _lag_lines(newest: dict[str, float | None], now: float) -> bytes:
    lines = ["# HELP stackwatch_monitor_lag_seconds now - the newest stored event time, per provider",
             "# TYPE stackwatch_monitor_lag_seconds gauge"]
    for provider, when in sorted(newest.items()):
        if when is not None:
            name = provider.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'stackwatch_monitor_lag_seconds{{provider="{name}"}} {max(0.0, now - when):.3f}')
    return ("\n".join(lines) + "\n").encode()


@router.get("/metrics", dependencies=[Depends(admin_caller)], response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}}
            | schemas.AUTH_ERRORS)
def prometheus(request: Request) -> Response:
    body, content_type = selfmetrics.exposition()
    body += _lag_lines(newest_events(request), time.time())
    return Response(body, media_type=content_type)


@router.get("/readyz", responses={503: {"description": "the database does not answer"}})
def readyz(request: Request) -> Any:
    """Ready when the database answers; each provider's monitor and the age of its newest event, for people."""
    try:
        with request.app.state.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        newest = newest_events(request)
    except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
        return JSONResponse({"ready": False, "database": f"unavailable: {exc.__class__.__name__}"}, 503)
    now = time.time()
    monitors = [
        {"provider": p.name, "monitor": p.events.monitor,
         "newest_event_age_seconds": None if newest[p.name] is None else round(now - newest[p.name], 3)}
        for p in request.app.state.settings.providers
    ]
    return {"ready": True, "database": "ok", "monitors": monitors}
