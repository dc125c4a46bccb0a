"""`GET /api/v1/handlers`: each handler's position in the stored stream, its owner and its backlog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from stackwatch.api import schemas
from stackwatch.api.identity import admin_caller
from stackwatch.store.stream import handler_status

#: handler positions and backlogs describe the whole stream, every project's: admins only
router = APIRouter(prefix="/api/v1/handlers", tags=["handlers"], dependencies=[Depends(admin_caller)],
                   responses=schemas.AUTH_ERRORS)


@router.get("")
def handlers(request: Request) -> list[dict[str, Any]]:
    return handler_status(request.app.state.store.engine)
