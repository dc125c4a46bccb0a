"""`/docs` and `/redoc` render in a real headless Chromium with every request off this machine refused.

`stackwatch serve` runs as a user starts it; Chromium (Debian's, driven by Playwright) loads the pages. Each
request the page makes to a host other than 127.0.0.1 is aborted and recorded: the pages must render with
none (FastAPI's defaults load Swagger UI from a CDN and fonts from Google, and render nothing offline).
Screenshots go to test-artifacts/docs/ (or $STACKWATCH_TEST_ARTIFACTS/docs/) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

CHROMIUM = os.environ.get("STACKWATCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("STACKWATCH_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts") / "docs"

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the [test] extra")
if not Path(CHROMIUM).exists():  # pragma: no cover - .ci/run installs Debian's chromium
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A real `stackwatch serve` on SQLite (no providers), given its configuration after the sub-command."""
    tmp = tmp_path_factory.mktemp("docs")
    config = tmp / "stackwatch.yaml"
    config.write_text(f"database: sqlite:///{tmp / 'sw.db'}\n")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKWATCH_")}
    proc = subprocess.Popen([sys.executable, "-m", "stackwatch", "serve", "--config", str(config), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # a second fence behind the request routing: names other than localhost do not resolve
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1", "--no-sandbox"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _offline_page(browser, blocked: list[str]):
    context = browser.new_context(viewport={"width": 1280, "height": 1600})

    def route(request_route) -> None:
        host = urlsplit(request_route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or request_route.request.url.startswith(("data:", "blob:")):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort("internetdisconnected")

    context.route("**/*", route)
    return context, context.new_page()


def _operations(base: str) -> list[tuple[str, str]]:
    spec = httpx.get(f"{base}/openapi.json").json()
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item]


def test_swagger_ui_renders_every_operation_offline(served, browser):
    blocked: list[str] = []
    context, page = _offline_page(browser, blocked)
    try:
        page.goto(f"{served}/docs", wait_until="load")
        page.wait_for_selector(".opblock", timeout=30_000)
        rendered = sorted(
            (block.locator(".opblock-summary-method").inner_text().strip(),
             block.locator(".opblock-summary-path").get_attribute("data-path"))
            for block in page.locator(".opblock").all()
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "swagger-ui.png"), full_page=False)
    finally:
        context.close()
    assert rendered == sorted(_operations(served))
    assert ("GET", "/api/v1/events") in rendered
    assert blocked == []


def test_redoc_renders_offline(served, browser):
    blocked: list[str] = []
    context, page = _offline_page(browser, blocked)
    try:
        page.goto(f"{served}/redoc", wait_until="load")
        page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
        sections = {e.get_attribute("data-section-id") for e in page.locator("[data-section-id^='operation/']").all()}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "redoc.png"), full_page=False)
    finally:
        context.close()
    spec = httpx.get(f"{served}/openapi.json").json()
    assert sections == {f"operation/{op['operationId']}" for item in spec["paths"].values() for op in item.values()}
    assert blocked == []


def test_fastapi_cdn_pages_are_not_what_is_served(served):
    """The HTML names only this server's assets: no CDN or font host is left in it."""
    for path in ("/docs", "/redoc"):
        html = httpx.get(served + path).text
        assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html
        assert "/docs-assets/" in html
    assert httpx.get(served + "/docs-assets/swagger-ui-bundle.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(served + "/docs-assets/../../etc/passwd").status_code == 404
