"""`GET /api/v1/inventory/{kind}` (and one object by uid or name); credentials never appear here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from stackwatch.api import schemas
from stackwatch.api.identity import Caller, current_caller
from stackwatch.inventory import query
from stackwatch.inventory.kinds import KINDS, kind_named

router = APIRouter(prefix="/api/v1/inventory", tags=["inventory"], responses=schemas.AUTH_ERRORS | schemas.NOT_FOUND)


def _kind(name: str):  # noqa: ANN202
    try:
        return kind_named(name)
    except KeyError:
        raise HTTPException(404, f"unknown kind {name!r}; kinds: {', '.join(k.name for k in KINDS)}") from None


@router.get("")
def kinds() -> list[dict[str, Any]]:
    return [{"kind": k.name, "service": k.service, "fields": list(k.fields)} for k in KINDS]


@router.get("/{kind}")
def list_kind(
    request: Request,
    kind: str,
    provider: str | None = None,
    deleted: bool = False,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    caller: Caller = Depends(current_caller),
) -> list[dict[str, Any]]:
    """Objects of a kind in the caller's projects (kinds that belong to no project, hypervisors say: admins)."""
    return query.items(request.app.state.store.engine, _kind(kind), provider=provider, deleted=deleted, limit=limit,
                       projects=caller.visible_projects())


@router.get("/{kind}/{ref}")
def get_one(request: Request, kind: str, ref: str, caller: Caller = Depends(current_caller)) -> list[dict[str, Any]]:
    found = query.find(request.app.state.store.engine, ref, _kind(kind), caller.visible_projects())
    if not found:
        raise HTTPException(404, f"no {kind} with id or name {ref!r}")
    return found
