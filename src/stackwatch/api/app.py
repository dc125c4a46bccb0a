"""The REST API (FastAPI): events, timeline, quarantine, health, the web timeline page and the API docs.

Each part owns its router (inventory, fleece, the web pages); this module includes them. The store is opened
once per app; every request uses the engine's pool. FastAPI's own `/docs` and `/redoc` are turned off: they
load their scripts from a CDN, and web.py serves the same pages from a package, offline.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from stackwatch import __version__
from stackwatch.api import fleece, handlers, inventory, metrics_api, web
from stackwatch.config.settings import Settings
from stackwatch.events.model import GROUPS
from stackwatch.inventory.timeline import AmbiguousReference, resolve_vm, vm_changes
from stackwatch.store.errors import StoreError, StoreUnavailable
from stackwatch.store.events import EventQuery, EventStore

log = logging.getLogger(__name__)


def create_app(settings: Settings, store: EventStore) -> FastAPI:
    app = FastAPI(title="stackwatch", version=__version__, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.store = store

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.error("store unavailable", extra={"error": str(exc)})
        return JSONResponse({"detail": "database unavailable"}, status_code=503)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error", extra={"error": str(exc)})
        return JSONResponse({"detail": "database error"}, status_code=500)

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Whether the API and its database answer: one `SELECT 1`, the same cost whatever the store holds."""
        try:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return JSONResponse({"status": "degraded", "database": f"unavailable: {exc.__class__.__name__}"}, 503)
        return {"status": "ok", "version": __version__, "database": "ok"}

    @app.get("/api/v1/events")
    def list_events(
        provider: str | None = None,
        vm: str | None = None,
        host: str | None = None,
        project: str | None = None,
        type: Annotated[str | None, Query(description="event type or glob")] = None,
        group: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[dict[str, Any]]:
        if group is not None and group not in GROUPS:
            raise HTTPException(422, f"group must be one of {', '.join(GROUPS)}")
        query = EventQuery(
            provider=provider, vm=vm, host=host, project=project, type_glob=type, group=group,
            since=since, until=until, limit=limit,
        )
        return [ev.to_json_dict() for ev in store.query(query)]

    @app.get("/api/v1/events/{message_id}")
    def get_event(message_id: str, provider: str | None = None) -> dict[str, Any]:
        event = store.get(message_id, provider)
        if event is None:
            raise HTTPException(404, f"no event with message_id {message_id!r}")
        return event.to_json_dict()

    @app.get("/api/v1/timeline")
    def timeline(
        vm: str | None = None,
        host: str | None = None,
        project: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
    ) -> dict[str, Any]:
        if not any((vm, host, project, provider)):
            raise HTTPException(422, "give vm, host, project or provider")
        changes: list[dict[str, Any]] = []
        if vm:
            try:
                vm = resolve_vm(store.engine, vm, provider)
            except AmbiguousReference as exc:
                raise HTTPException(409, str(exc)) from None
            changes = vm_changes(store.engine, vm, provider)
        events = store.query(
            EventQuery(provider=provider, vm=vm, host=host, project=project, since=since, until=until, limit=limit)
        )
        groups: dict[str, int] = {}
        for ev in events:
            groups[ev.group] = groups.get(ev.group, 0) + 1
        return {"vm": vm, "groups": groups, "events": [ev.to_json_dict() for ev in events], "changes": changes}

    @app.get("/api/v1/quarantine")
    def quarantine(provider: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> list[dict]:
        return [
            {"id": r.id, "provider": r.provider, "source": r.source, "received_at": r.received_at,
             "reason": r.reason, "size": r.size, "sha256": r.digest}
            for r in store.quarantined(provider, limit)
        ]

    app.include_router(web.router)
    app.include_router(inventory.router)
    app.include_router(fleece.router)
    app.include_router(handlers.router)
    app.include_router(metrics_api.router)
    app.include_router(metrics_api.pages)
    return app
