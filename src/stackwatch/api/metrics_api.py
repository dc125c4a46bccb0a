"""`GET /api/v1/metrics/{vm|host|project}/{ref}`: rollups captured from Gnocchi, scoped by the caller; and
the web console's VM metrics page (`/vm-metrics?vm=UUID-or-NAME`, apart from Prometheus' `/metrics`: inline SVG
charts, no external assets).

A non-admin caller sees an instance or a project only when it is in their project; host rollups mix every
project on the host, so they are for admins only.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from stackwatch.api import schemas
from stackwatch.api.identity import Caller, current_caller
from stackwatch.metrics.query import MetricsQueryError, granularity_seconds, resolve_instance, rows, since_time

router = APIRouter(prefix="/api/v1/metrics", tags=["metrics"], responses=schemas.AUTH_ERRORS | schemas.NOT_FOUND | {
    422: {"model": schemas.Error, "description": "a `since` or `granularity` that does not parse"}})
pages = APIRouter()
_PAGE = resources.files("stackwatch.api").joinpath("static/metrics.html")

Since = Annotated[str, Query(description="periods starting at or after: an age (24h, 7d) or an ISO 8601 time")]
Granularity = Annotated[Literal["5m", "hourly", "daily"], Query(description="5m, hourly or daily")]


def _read(request: Request, scope: str, ref: str, since: str, granularity: str, provider: str | None,
          metric: list[str] | None) -> list[dict[str, Any]]:
    try:
        return rows(request.app.state.store.engine, scope, ref, granularity_seconds(granularity), since_time(since),
                    provider, metric)
    except MetricsQueryError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/vm/{ref}")
def vm_metrics(request: Request, ref: str, since: Since = "24h", granularity: Granularity = "hourly",
               provider: str | None = None, metric: Annotated[list[str] | None, Query()] = None,
               caller: Caller = Depends(current_caller)) -> list[dict[str, Any]]:
    try:
        uuid, project = resolve_instance(request.app.state.store.engine, ref, provider)
    except MetricsQueryError as exc:
        raise HTTPException(409, str(exc)) from None
    if not caller.is_admin and not caller.may_see(project):
        raise HTTPException(404, f"no instance {ref!r}")  # not 403: do not confirm it exists
    return _read(request, "vm", uuid, since, granularity, provider, metric)


@router.get("/host/{ref}")
def host_metrics(request: Request, ref: str, since: Since = "24h", granularity: Granularity = "hourly",
                 provider: str | None = None, metric: Annotated[list[str] | None, Query()] = None,
                 caller: Caller = Depends(current_caller)) -> list[dict[str, Any]]:
    if not caller.is_admin:
        raise HTTPException(403, "host metrics cover every project on the host: admins only")
    return _read(request, "host", ref, since, granularity, provider, metric)


@router.get("/project/{ref}")
def project_metrics(request: Request, ref: str, since: Since = "24h", granularity: Granularity = "hourly",
                    provider: str | None = None, metric: Annotated[list[str] | None, Query()] = None,
                    caller: Caller = Depends(current_caller)) -> list[dict[str, Any]]:
    if not caller.may_see(ref):
        raise HTTPException(404, f"no project {ref!r}")
    return _read(request, "project", ref, since, granularity, provider, metric)


@pages.get("/vm-metrics", response_class=HTMLResponse, include_in_schema=False)
def metrics_page() -> str:
    """The VM metrics page: it reads `/api/v1/metrics/vm/...` from the browser, as the caller."""
    return _PAGE.read_text(encoding="utf-8")
