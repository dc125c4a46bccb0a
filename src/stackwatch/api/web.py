"""The web timeline page: one static HTML file that draws `/api/v1/timeline` as swim lanes per group.

No build step and no external assets: the machines stackwatch runs on often have no internet access.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

router = APIRouter()
_PAGE = resources.files("stackwatch.api").joinpath("static/timeline.html")


@router.get("/", include_in_schema=False)
def index() -> RedirectResponse:
    return RedirectResponse("/timeline")


@router.get("/timeline", response_class=HTMLResponse, include_in_schema=False)
def timeline_page() -> str:
    return _PAGE.read_text(encoding="utf-8")
