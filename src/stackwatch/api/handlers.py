"""`GET /api/v1/handlers`: each handler's position in the stored stream, its owner and its backlog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from stackwatch.store.stream import handler_status

router = APIRouter(prefix="/api/v1/handlers", tags=["handlers"])


@router.get("")
def handlers(request: Request) -> list[dict[str, Any]]:
    return handler_status(request.app.state.store.engine)
