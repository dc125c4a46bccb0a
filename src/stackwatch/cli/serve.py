"""`stackwatch serve` (API, catchers -> switchboard -> inventory refresh) and `stackwatch demo` (bundled samples)."""

from __future__ import annotations

import logging
import threading
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stackwatch.cli.common import friendly_errors, open_store_for, routes_for, settings
from stackwatch.cli.output import console, err_console
from stackwatch.events.monitors.registry import MonitorSelectionError
from stackwatch.gctune import tune_for_intake
from stackwatch.logs import setup_logging
from stackwatch.masking import mask_url

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import Settings
    from stackwatch.events.runner import CatchersHandle
    from stackwatch.inventory.events import InventoryRefresher
    from stackwatch.switchboard.dispatch import Switchboard

log = logging.getLogger(__name__)
DEMO_VM = "178b0921-8f85-4257-88b6-2e743b5a975c"


@friendly_errors
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default from config: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default from config: 8470)")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Run stackwatch: migrate the store, catch each provider's events into the switchboard (policy events,
    targeted inventory refreshes), refresh every provider with a cloud once in full, serve the REST API."""
    import uvicorn

    from stackwatch.api.app import create_app
    from stackwatch.events.retention import RetentionWorker

    setup_logging(log_level)
    if log_level.lower() != "debug":
        logging.getLogger("pika").setLevel(logging.WARNING)
    cfg = settings()
    store = open_store_for(cfg, long_running=True)
    try:
        engine = EventEngine.start(cfg, store)
    except MonitorSelectionError as exc:  # a provider's events section names a monitor that cannot serve it
        store.dispose()
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    tune_for_intake()
    retention = RetentionWorker(cfg, store).start()
    bind_host = host or cfg.api.host
    bind_port = port or cfg.api.port
    log.info(
        "serving",
        extra={
            "url": f"http://{bind_host}:{bind_port}",
            "database": mask_url(cfg.database_url),
            "providers": [p.name for p in cfg.providers],
        },
    )
    try:
        uvicorn.run(create_app(cfg, store), host=bind_host, port=bind_port, log_level=log_level, log_config=None)
    finally:
        retention.stop()
        engine.stop()
        store.dispose()


class EventEngine:
    """What `serve` runs beside the API: catchers -> switchboard (policy, refresh) -> inventory.

    Kept as one object because the stop order matters: catchers stop first (nothing new is submitted), then
    the switchboard handles what is queued and the refresh handler flushes its pending targets, and only then
    do the inventory connections close. While a provider's full refresh runs, its targeted refreshes wait
    for it (one connection per provider, used by one refresh at a time).
    """

    def __init__(
        self,
        catchers: CatchersHandle | None,
        switchboard: Switchboard,
        refresher: InventoryRefresher,
        initial: list[threading.Thread],
    ) -> None:
        self.catchers = catchers
        self.switchboard = switchboard
        self.refresher = refresher
        self.initial = initial

    @classmethod
    def start(cls, cfg: Settings, store: Any) -> EventEngine:
        """Select every provider's monitor first (a configuration error stops `serve` before anything
        starts, as `start_catchers` does), then start the switchboard, the catchers and one background full
        refresh per provider that names a `cloud` (the API must not wait for a slow cloud)."""
        from stackwatch.events.monitors.registry import select
        from stackwatch.events.runner import CatchersHandle, build_runner
        from stackwatch.inventory.events import make_refresher
        from stackwatch.switchboard.dispatch import Switchboard
        from stackwatch.switchboard.policy import PolicyHandler
        from stackwatch.switchboard.refresh import RefreshHandler

        routes = routes_for(cfg)
        selections = [(p, select(p)) for p in cfg.providers]
        refresher = make_refresher(cfg, store.engine)
        switchboard = Switchboard([PolicyHandler(routes), RefreshHandler(routes, refresher)]).start()

        def to_switchboard(_batch: Any, report: Any, _seconds: float) -> None:
            # a report from a split batch carries counts only (no events): nothing to route then
            switchboard.submit(getattr(report, "stored_events", None) or [])

        runners = []
        for provider, selection in selections:
            if selection.name == "null":
                log.info("catcher %s: monitor null, no events caught", provider.name)
                continue
            runners.append(build_runner(provider, store, routes, on_stored=to_switchboard).start())
        catchers = CatchersHandle(runners, None) if runners else None
        initial = []
        for provider in cfg.providers:
            if provider.cloud:
                thread = threading.Thread(
                    target=_first_full_refresh,
                    args=(refresher, provider.name),
                    name=f"full-refresh-{provider.name}",
                    daemon=True,
                )
                thread.start()
                initial.append(thread)
        return cls(catchers, switchboard, refresher, initial)

    def stop(self) -> None:
        if self.catchers is not None:
            self.catchers.stop()
        self.switchboard.stop()
        self.refresher.close()


def _first_full_refresh(refresher: InventoryRefresher, provider: str) -> None:
    """The inventory starts from the API's full view; events keep it current from then on."""
    try:
        refresher(provider, frozenset(), True)
    except Exception:  # noqa: BLE001 - logged; events still refresh their targets, `stackwatch refresh` retries
        log.exception("first full refresh failed", extra={"provider": provider})


@friendly_errors
def demo(
    provider: Annotated[str, typer.Option(help="provider name the demo events are stored under")] = "demo",
) -> None:
    """Ingest the bundled real OpenStack notifications and show the instance's timeline."""
    from stackwatch.cli.events import timeline
    from stackwatch.cli.output import OutputFormat
    from stackwatch.events.catcher import Catcher
    from stackwatch.events.model import RawMessage

    cfg = settings()
    store = open_store_for(cfg)
    catcher = Catcher(store, cfg.provider_or_default(provider), routes_for(cfg))
    folder = resources.files("stackwatch.demo")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
    # oslo captures first (they carry real timestamps), then nova's lifecycle in order
    ordered = [n for n in names if n[0].isdigit()] + [n for n in _lifecycle_order() if n in names]
    batch = [RawMessage(body=folder.joinpath(n).read_bytes(), source="demo") for n in ordered]
    report = catcher.catch(batch)
    console.print(
        f"demo: {report.stored} new events stored ({report.duplicates} already there) in {mask_url(cfg.database_url)}"
    )
    timeline(
        vm=DEMO_VM,
        host=None,
        project=None,
        provider=provider,
        group=None,
        since=None,
        until=None,
        detail=True,
        limit=500,
        format=OutputFormat.table,
    )
    console.print("next: `stackwatch serve` and open http://127.0.0.1:8470/api/v1/events")


def _lifecycle_order() -> list[str]:
    steps = [
        "create-start",
        "create-end",
        "power_off-start",
        "power_off-end",
        "power_on-start",
        "power_on-end",
        "reboot-start",
        "reboot-end",
        "snapshot-start",
        "snapshot-end",
        "volume_attach-end",
        "live_migration_post-end",
        "delete-start",
        "delete-end",
    ]
    return [f"instance-{s}.json" for s in steps]
