"""The web console in a real headless Chromium (Debian's, driven by Playwright): a viewer logs in with a token,
sees only their project's events on the timeline, opens an event's payload, the VM page renders properties,
history, fleece report and events, and a newly stored event appears without reloading. Every request off
127.0.0.1 is refused (no external assets). Screenshots: test-artifacts/console/ (or $STACKWATCH_TEST_ARTIFACTS).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from stackwatch.api.app import create_app
from stackwatch.api.auth.tokens import LocalTokens
from stackwatch.events.model import Event
from stackwatch.store.db import open_store
from stackwatch.store.events import EventQuery
from tests.api.conftest import PROJECTS, secured_settings
from tests.api.world import seed

CHROMIUM = os.environ.get("STACKWATCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("STACKWATCH_TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts")
ARTIFACTS = ARTIFACTS / "console"

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the [test] extra")
if not Path(CHROMIUM).exists():  # pragma: no cover - .ci/run installs Debian's chromium
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The API over a seeded SQLite store, served by uvicorn on a free port in this process."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('console') / 'sw.db'}")
    world = seed(store, PROJECTS, per_project=40)
    tokens = LocalTokens(store.engine)
    issued = {p: tokens.create("viewer", p)[0] for p in PROJECTS}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(secured_settings(), store), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store, world, issued
    server.should_exit = True
    thread.join(10)
    store.dispose()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1", "--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    blocked: list[str] = []
    context = browser.new_context(viewport={"width": 1400, "height": 900})

    def route(r) -> None:  # noqa: ANN001
        if urlsplit(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort("internetdisconnected")

    context.route("**/*", route)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert blocked == [] and errors == []


def shot(pg, name: str) -> None:  # noqa: ANN001
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def login(pg, base: str, token: str) -> None:  # noqa: ANN001
    pg.goto(f"{base}/console#/login")
    pg.fill("#token", token)
    pg.click("button[type=submit]")
    pg.wait_for_function("document.querySelector('#who').textContent.includes('viewer')")


def test_refused_token_stays_on_login(site, page) -> None:  # noqa: ANN001
    base, *_ = site
    page.goto(f"{base}/")
    page.wait_for_selector("#token")
    page.fill("#token", "sw_wrong")
    page.click("button[type=submit]")
    page.wait_for_selector(".status.error")
    assert "refused" in page.inner_text(".login")
    shot(page, "login-refused")


def test_viewer_timeline_shows_only_own_project_and_updates_live(site, page) -> None:  # noqa: ANN001
    base, store, world, tokens = site
    alpha, bravo = PROJECTS
    login(page, base, tokens[alpha])
    assert page.url.endswith(f"#/timeline?project={alpha}")
    page.wait_for_selector("circle.ev")
    mine = {e.message_id for e in world.events if e.project_id == alpha}
    shown = set(page.eval_on_selector_all("circle.ev", "els => els.map(e => e.dataset.id)"))
    assert shown == mine
    lanes = set(page.eval_on_selector_all("text.lane-label", "els => els.map(e => e.textContent)"))
    assert lanes == {e.group for e in world.events if e.project_id == alpha}
    shot(page, "timeline-project")
    # another project's timeline: nothing
    page.goto(f"{base}/console#/timeline?project={bravo}")
    page.wait_for_selector("#status")
    page.wait_for_function("document.querySelector('#status').textContent.includes('events') || "
                           "document.querySelector('#timeline').textContent.includes('no events')")
    assert page.locator("circle.ev").count() == 0
    # type filter and zoom
    page.goto(f"{base}/console#/timeline?project={alpha}&type=compute.instance.*")
    page.wait_for_selector("circle.ev")
    types = set(page.eval_on_selector_all("circle.ev", "els => els.map(e => e.dataset.type)"))
    assert types and all(t.startswith("compute.instance.") for t in types)
    before = page.locator("circle.ev").count()
    page.click("#zoom-in")
    page.click("#zoom-in")
    assert page.locator("circle.ev").count() < before
    page.click("#zoom-fit")
    assert page.locator("circle.ev").count() == before
    # click an event: its payload
    page.goto(f"{base}/console#/timeline?project={alpha}")
    page.wait_for_selector("circle.ev")
    first = page.locator("circle.ev").first
    event_id = first.get_attribute("data-id")
    first.click()
    page.wait_for_selector("#payload")
    event = next(e for e in world.events if e.message_id == event_id)
    assert f'"project": "{alpha}"' in page.inner_text("#payload") and event.event_type in page.inner_text("#panel")
    shot(page, "timeline-payload")
    page.click("#close-panel")
    # live: an event stored now appears; one of the other project does not
    now = datetime.now(UTC)
    new = [Event(message_id=f"live-{p}-{now.timestamp()}", provider="east", source="test",
                 event_type="compute.instance.reboot.end", timestamp=now, project_id=p, vm_ref=world.vms[p][0],
                 group="power", level="summary", payload={"live": p}) for p in (alpha, bravo)]
    store.write_batch(new)
    page.wait_for_selector(f'circle.ev[data-id="{new[0].message_id}"]', timeout=15_000)
    time.sleep(0.5)
    assert page.locator(f'circle.ev[data-id="{new[1].message_id}"]').count() == 0
    assert page.inner_text("#live").startswith("live:") and "off" not in page.inner_text("#live")
    shot(page, "timeline-live")


def test_vm_page(site, page) -> None:  # noqa: ANN001
    base, _store, world, tokens = site
    alpha, bravo = PROJECTS
    login(page, base, tokens[alpha])
    page.goto(f"{base}/console#/vm/web")  # a name both projects use: the viewer's own VM
    page.wait_for_selector("#properties")
    vm = world.vms[alpha][0]
    assert vm in page.inner_text("#properties") and alpha in page.inner_text("#properties")
    assert "created" in page.inner_text("#changes")
    page.wait_for_selector("#fleece table")
    assert f"instance:{vm}" in page.inner_text("#fleece")
    rows = page.locator("#events tr[data-id]").count()
    assert rows == len(_store.query(EventQuery(vm=vm, limit=10_000))) >= 1
    shot(page, "vm-page")
    page.goto(f"{base}/console#/vm/{world.vms[bravo][0]}")
    page.wait_for_selector("#main .status.error")
    assert "no VM" in page.inner_text("#main")
    page.goto(f"{base}/console#/inventory/servers")
    page.wait_for_selector("#inventory")
    assert set(page.eval_on_selector_all("#inventory a", "els => els.map(e => e.textContent)")) == set(world.vms[alpha])
    shot(page, "inventory")
