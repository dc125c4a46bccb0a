"""The REST API (FastAPI): events, timeline, quarantine, health, the web timeline page and the API docs.

Each part owns its router (inventory, fleece, the web pages); this module includes them. The store is opened
once per app; every request uses the engine's pool. FastAPI's own `/docs` and `/redoc` are turned off: they
load their scripts from a CDN, and web.py serves the same pages from a package, offline.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text

from stackwatch import __version__
from stackwatch.api import fleece, handlers, ingest, inventory, metrics_api, observability, rules, schemas, web
from stackwatch.api import stream as push_stream
from stackwatch.api import subscriptions as push_subscriptions
from stackwatch.api.identity import Caller, admin_caller, current_caller
from stackwatch.config.settings import Settings
from stackwatch.events.model import GROUPS
from stackwatch.inventory.timeline import AmbiguousReference, resolve_vm, vm_changes
from stackwatch.store.errors import StoreError, StoreUnavailable
from stackwatch.store.events import EventQuery, EventStore

log = logging.getLogger(__name__)
GROUP_PATTERN = "^(" + "|".join(GROUPS) + ")$"


def create_app(settings: Settings, store: EventStore, authenticator: Any = None) -> FastAPI:
    """The API over `store`; callers are authenticated by `authenticator`, else as `settings.api.auth` says
    (absent: the API is open, every caller the local admin)."""
    from stackwatch.api.auth.request import build_authenticator

    app = FastAPI(title="stackwatch", version=__version__, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.store = store
    app.state.authenticator = authenticator or build_authenticator(settings.api.auth, store.engine)

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        log.error("store unavailable", extra={"error": str(exc)})
        return JSONResponse({"detail": "database unavailable"}, status_code=503)

    @app.exception_handler(StoreError)
    async def _store_error(_request: Request, exc: StoreError) -> JSONResponse:
        log.error("store error", extra={"error": str(exc)})
        return JSONResponse({"detail": "database error"}, status_code=500)

    @app.get("/healthz", responses={503: {"description": "the database does not answer"}})
    def healthz() -> dict[str, Any]:
        """Whether the API and its database answer: one `SELECT 1`, the same cost whatever the store holds."""
        try:
            with store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return JSONResponse({"status": "degraded", "database": f"unavailable: {exc.__class__.__name__}"}, 503)
        return {"status": "ok", "version": __version__, "database": "ok"}

    @app.get("/api/v1/events", response_model=list[schemas.Event], responses=schemas.AUTH_ERRORS)
    def list_events(
        provider: str | None = None,
        vm: str | None = None,
        host: str | None = None,
        project: str | None = None,
        type: Annotated[str | None, Query(description="event type or glob")] = None,
        group: Annotated[str | None, Query(pattern=GROUP_PATTERN, description=f"one of {', '.join(GROUPS)}")] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        caller: Caller = Depends(current_caller),
    ) -> list[dict[str, Any]]:
        query = EventQuery(
            provider=provider, vm=vm, host=host, project=project, type_glob=type, group=group,
            since=since, until=until, limit=limit, projects=caller.visible_projects(),
        )
        return [ev.to_json_dict() for ev in store.query(query)]

    @app.get("/api/v1/events/{message_id}", response_model=schemas.Event,
             responses=schemas.AUTH_ERRORS | schemas.NOT_FOUND)
    def get_event(
        message_id: str, provider: str | None = None, caller: Caller = Depends(current_caller)
    ) -> dict[str, Any]:
        event = store.get(message_id, provider, caller.visible_projects())
        if event is None:
            raise HTTPException(404, f"no event with message_id {message_id!r}")
        return event.to_json_dict()

    @app.get("/api/v1/timeline", response_model=schemas.Timeline, responses=schemas.AUTH_ERRORS | {
        409: {"model": schemas.Error, "description": "a VM name that names several servers (give the uuid)"}})
    def timeline(
        vm: str | None = None,
        host: str | None = None,
        project: str | None = None,
        provider: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
        caller: Caller = Depends(current_caller),
    ) -> dict[str, Any]:
        if not any((vm, host, project, provider)):  # a 422 shaped as FastAPI's own (the documented one)
            raise RequestValidationError([{"type": "missing", "loc": ["query", "vm"], "input": None,
                                           "msg": "give vm, host, project or provider"}])
        projects = caller.visible_projects()
        changes: list[dict[str, Any]] = []
        if vm:
            try:
                vm = resolve_vm(store.engine, vm, provider, projects)
            except AmbiguousReference as exc:
                raise HTTPException(409, str(exc)) from None
            changes = vm_changes(store.engine, vm, provider, projects)
        events = store.query(
            EventQuery(provider=provider, vm=vm, host=host, project=project, since=since, until=until, limit=limit,
                       projects=projects)
        )
        groups: dict[str, int] = {}
        for ev in events:
            groups[ev.group] = groups.get(ev.group, 0) + 1
        return {"vm": vm, "groups": groups, "events": [ev.to_json_dict() for ev in events], "changes": changes}

    @app.get("/api/v1/quarantine", dependencies=[Depends(admin_caller)], response_model=list[schemas.Quarantined],
             responses=schemas.AUTH_ERRORS)
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
    app.include_router(rules.router)
    app.include_router(push_subscriptions.router)
    app.include_router(push_stream.router)
    app.include_router(observability.router)
    app.include_router(ingest.router)
    app.include_router(metrics_api.router)
    app.include_router(metrics_api.pages)
    return app
