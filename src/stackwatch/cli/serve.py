"""`stackwatch serve` (API, catchers, handlers over the stored stream; stackwatch/wiring.py builds them) and
`stackwatch demo` (bundled samples)."""

from __future__ import annotations

import logging
from importlib import resources
from typing import Annotated

import typer

from stackwatch.cli.common import friendly_errors, open_store_for, routes_for, settings
from stackwatch.cli.output import console, err_console
from stackwatch.events.monitors.registry import MonitorSelectionError
from stackwatch.gctune import tune_for_intake
from stackwatch.logs import setup_logging
from stackwatch.masking import mask_url

log = logging.getLogger(__name__)
DEMO_VM = "178b0921-8f85-4257-88b6-2e743b5a975c"


@friendly_errors
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default from config: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default from config: 8470)")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
    catchers: Annotated[bool, typer.Option(
        "--catchers/--no-catchers",
        help="catch the providers' events here; --no-catchers when `stackwatch worker catcher` processes do it",
    )] = True,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="serve an address other than loopback without `api.auth` (anyone reaching it sees all)",
    )] = False,
) -> None:
    """Run stackwatch: migrate the store, catch each provider's events, run the handlers over the stored
    stream (policy events, targeted inventory refreshes, a periodic full refresh), serve the REST API."""
    import uvicorn

    from stackwatch.api.app import create_app
    from stackwatch.api.auth.request import build_authenticator
    from stackwatch.events.retention import RetentionWorker
    from stackwatch.wiring import EventEngine

    setup_logging(log_level)
    if log_level.lower() != "debug":
        logging.getLogger("pika").setLevel(logging.WARNING)
    cfg = settings()
    bind_host = host or cfg.api.host
    refusal = open_bind_refusal(bind_host, cfg.api.auth is not None, insecure)
    if refusal:
        err_console.print(f"[red]error:[/red] {refusal}", highlight=False)
        raise typer.Exit(2)
    from stackwatch import selfmetrics

    selfmetrics.configure(cfg.data_dir)  # before anything counts: catchers and their children share the files
    store = open_store_for(cfg, long_running=catchers)
    try:  # before any catcher starts: a broken api.auth (an unknown Keystone cloud, say) stops here
        authenticator = build_authenticator(cfg.api.auth, store.engine)
    except Exception:
        store.dispose()
        raise
    try:
        engine = EventEngine.start(cfg, store, catchers=catchers)
    except MonitorSelectionError as exc:  # a provider's events section names a monitor that cannot serve it
        store.dispose()
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    if catchers:
        tune_for_intake()
    retention = RetentionWorker(cfg, store).start()
    bind_port = port or cfg.api.port
    log.info(
        "serving",
        extra={
            "url": f"http://{bind_host}:{bind_port}",
            "database": mask_url(cfg.database_url),
            "providers": [p.name for p in cfg.providers],
            "catchers": catchers,
        },
    )
    try:
        uvicorn.run(create_app(cfg, store, authenticator), host=bind_host, port=bind_port, log_level=log_level,
                    log_config=None, timeout_keep_alive=cfg.api.keep_alive_seconds)
    finally:
        retention.stop()
        engine.stop()
        store.dispose()


def is_loopback(host: str) -> bool:
    """Whether binding `host` serves this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def open_bind_refusal(host: str, auth: bool, insecure: bool) -> str | None:
    """Why serve must not start (an open API on a reachable address), or None."""
    if auth or insecure or is_loopback(host):
        return None
    return (f"refusing to serve {host} without authentication: configure api.auth (docs/api.md) "
            "or pass --insecure")


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
