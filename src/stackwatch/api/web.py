"""Pages for people: the web console (`/console`: timelines as lanes, inventory and VM pages, token login; three
static files, api/static/console.*), the older one-page timeline, and the API documentation (`/docs` Swagger UI,
`/redoc` ReDoc); `/api/v1/whoami` tells the console who the token is.

No build step and no external assets: the machines stackwatch runs on often have no internet access. The
Swagger UI and ReDoc scripts come from the `fastapi-offline` package (MIT; Swagger UI is Apache-2.0, ReDoc
MIT) and are served from `/docs-assets/`, where FastAPI's own pages would load them from a CDN and fonts
from Google.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from stackwatch.api import schemas
from stackwatch.api.identity import Caller, current_caller

router = APIRouter()
_PAGE = resources.files("stackwatch.api").joinpath("static/timeline.html")
_STATIC = resources.files("stackwatch.api").joinpath("static")
#: the console's files and their media types (nothing else under /console is served)
CONSOLE_ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
ASSETS_PATH = "/docs-assets"
#: the files the two documentation pages load, with their media types (nothing else is served)
DOC_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}


@router.get("/", include_in_schema=False)
def index() -> RedirectResponse:
    return RedirectResponse("/console")


@router.get("/console", response_class=HTMLResponse, include_in_schema=False)
def console_page() -> str:
    """The console's shell; it asks for a token itself (pages are public, the data behind them is not)."""
    return _STATIC.joinpath("console.html").read_text(encoding="utf-8")


@router.get("/console/{name}", include_in_schema=False)
def console_asset(name: str) -> Response:
    if name not in CONSOLE_ASSETS:
        raise HTTPException(404, f"no console asset {name!r}")
    return Response(_STATIC.joinpath(name).read_bytes(), media_type=CONSOLE_ASSETS[name],
                    headers={"Cache-Control": "no-cache"})


@router.get("/api/v1/whoami", tags=["auth"], response_model=schemas.Caller, responses=schemas.AUTH_ERRORS)
def whoami(caller: Caller = Depends(current_caller)) -> dict[str, Any]:
    """The caller this request's token stands for: name, role and project (None: every project)."""
    return {"name": caller.name, "role": caller.role, "project_id": caller.project_id}


@router.get("/timeline", response_class=HTMLResponse, include_in_schema=False)
def timeline_page() -> str:
    return _PAGE.read_text(encoding="utf-8")


def _openapi_url(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/") + (request.app.openapi_url or "/openapi.json")


def _asset_url(request: Request, name: str) -> str:
    return f"{request.scope.get('root_path', '').rstrip('/')}{ASSETS_PATH}/{name}"


@router.get("/docs", include_in_schema=False)
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - API",
        swagger_js_url=_asset_url(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset_url(request, "swagger-ui.css"),
        swagger_favicon_url=_asset_url(request, "favicon.png"),
        swagger_ui_parameters={"validatorUrl": None},  # Swagger UI would ask an online validator otherwise
    )


@router.get("/redoc", include_in_schema=False)
def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - API",
        redoc_js_url=_asset_url(request, "redoc.standalone.js"),
        redoc_favicon_url=_asset_url(request, "favicon.png"),
        with_google_fonts=False,
    )


#: ReDoc's sidebar always loads its maker's logo from their CDN (and hides it when that fails); served with
#: an empty inline image instead, so that no page here makes a request off the machine
_REDOC_LOGO = (b"https://cdn.redoc.ly/redoc/logo-mini.svg", b"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E")


@functools.cache
def _asset(name: str) -> bytes:
    data = resources.files("fastapi_offline").joinpath("static", name).read_bytes()
    return data.replace(*_REDOC_LOGO) if name == "redoc.standalone.js" else data


@router.get(ASSETS_PATH + "/{name}", include_in_schema=False)
def doc_asset(name: str) -> Response:
    if name not in DOC_ASSETS:
        raise HTTPException(404, f"no documentation asset {name!r}")
    return Response(_asset(name), media_type=DOC_ASSETS[name], headers={"Cache-Control": "public, max-age=86400"})
