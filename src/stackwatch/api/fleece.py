"""`/api/v1/fleece`: kept fleece reports. The app includes this router when the module exists.

`GET /api/v1/fleece` lists report summaries (newest first; filter by target, image_id, vm_id, provider);
`GET /api/v1/fleece/{id}` returns the report itself, as `stackwatch fleece --format json` printed it.
Reports are read through the app's store engine (its pool), never a second connection setup.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from stackwatch.api import schemas
from stackwatch.api.identity import Caller, current_caller
from stackwatch.fleece.reports import FleeceReports

router = APIRouter(prefix="/api/v1/fleece", tags=["fleece"], responses=schemas.AUTH_ERRORS | schemas.NOT_FOUND)


def _reports(request: Request) -> FleeceReports:
    return FleeceReports(request.app.state.store.engine)


@router.get("")
def list_reports(
    request: Request,
    target: str | None = None,
    image_id: str | None = None,
    vm_id: str | None = None,
    provider: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    caller: Caller = Depends(current_caller),
) -> list[dict[str, Any]]:
    rows = _reports(request).list(target=target, image_id=image_id, vm_id=vm_id, provider=provider, limit=limit,
                                  projects=caller.visible_projects())
    return [r.to_json_dict() for r in rows]


@router.get("/{report_id}")
def get_report(
    request: Request,
    report_id: Annotated[int, Path(ge=1, le=2**63 - 1)],  # a BIGINT id (a larger one is a 422, not a 500)
    caller: Caller = Depends(current_caller),
) -> dict[str, Any]:
    report = _reports(request).get(report_id, caller.visible_projects())
    if report is None:
        raise HTTPException(404, f"no fleece report with id {report_id}")
    return report
