"""`stackwatch worker ...`: run one part alone (at scale each part is its own process).

`stackwatch worker catcher --config FILE --provider NAME` runs the provider's selected monitor into the
catcher until SIGTERM / SIGINT; a stop lets the batch being written finish and be acknowledged, the rest
stays on the broker. `stackwatch worker handler --config FILE` runs the handlers (policy, refresh, the
periodic full refresh) over the stored stream; a stop finishes the batches being handled and saves their
positions. `stackwatch worker metrics --provider NAME` runs the provider's metrics capture loop (Gnocchi ->
rollups); a stop lets the batch being written finish. stackwatch/wiring.py builds all three.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer

from stackwatch import selfmetrics
from stackwatch.cli.common import ConfigGroup, friendly_errors
from stackwatch.cli.output import err_console
from stackwatch.config.settings import load_settings
from stackwatch.gctune import tune_for_intake
from stackwatch.logs import setup_logging
from stackwatch.masking import mask_url

log = logging.getLogger(__name__)

app = typer.Typer(cls=ConfigGroup, help="Run one part of stackwatch as its own process.", no_args_is_help=True)



@app.callback()
def _group() -> None:
    """Run one part of stackwatch as its own process."""

@app.command("catcher")
@friendly_errors
def catcher(
    provider: Annotated[str, typer.Option("--provider", "-p", help="provider name from the configuration")],
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
    stats_every: Annotated[float, typer.Option(help="seconds between progress log lines (0: never)")] = 30.0,
    writer: Annotated[str, typer.Option(help="thread: convert and write in threads of this process; "
                                             "process: in a child process (another core)")] = "thread",
) -> None:
    """Catch one provider's events: monitor -> catcher -> store, acknowledged only once stored."""
    from stackwatch.events.monitors.registry import MonitorSelectionError, select
    from stackwatch.store.db import choose_writer, open_store
    from stackwatch.switchboard.routes import RoutingTable
    from stackwatch.wiring import build_runner

    setup_logging(log_level)
    if log_level.lower() != "debug":
        logging.getLogger("pika").setLevel(logging.WARNING)
    cfg = load_settings()  # --config (cli.common's one option) has set $STACKWATCH_CONFIG
    selfmetrics.configure(cfg.data_dir)  # counted here, served by `serve`'s /metrics (stackwatch/selfmetrics.py)
    prov = cfg.provider(provider)
    if writer not in ("process", "thread"):
        err_console.print(f"[red]error:[/red] --writer must be process or thread, not {writer!r}", highlight=False)
        raise typer.Exit(2)
    try:
        selection = select(prov)  # configuration errors first, before touching the database
    except MonitorSelectionError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    # the process writer converts in a child already; a store process would be a third one on the same cores
    store = open_store(cfg.database_url, writer=choose_writer(cfg.store_writer, long_running=writer == "thread"))
    runner = build_runner(prov, store, routes=RoutingTable.load(cfg.routes), selection=selection, writer=writer,
                          database_url=cfg.database_url, routes_path=cfg.routes)
    tune_for_intake()
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping catcher", signal.Signals(signum).name, extra={"provider": prov.name})
        stopping.set()
        runner.stop(timeout=0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("catcher starting", extra={"provider": prov.name, "monitor": runner.monitor.name,
                                        "database": mask_url(cfg.database_url)})
    runner.start()
    interval = stats_every if stats_every > 0 else 3600.0
    while runner.is_alive():
        if stopping.wait(interval) or not runner.is_alive():
            break
        log.info("catcher progress", extra={"provider": prov.name, **vars(runner.stats),
                                            "monitor_stats": runner.monitor.stats()})
    runner.stop(timeout=15)
    store.dispose()
    log.info("catcher stopped", extra={"provider": prov.name, **vars(runner.stats)})
    if runner.error is not None:
        raise typer.Exit(1)


@app.command("handler")
@friendly_errors
def handler(
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
    stats_every: Annotated[float, typer.Option(help="seconds between progress log lines (0: never)")] = 30.0,
) -> None:
    """Handle the stored event stream: policy events, targeted refreshes, the periodic full refresh."""
    from stackwatch.store.db import open_store
    from stackwatch.wiring import start_handlers

    setup_logging(log_level)
    cfg = load_settings()  # --config (cli.common's one option) has set $STACKWATCH_CONFIG
    selfmetrics.configure(cfg.data_dir)  # counted here, served by `serve`'s /metrics (stackwatch/selfmetrics.py)
    store = open_store(cfg.database_url)
    handlers = start_handlers(cfg, store)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping handlers", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("handlers running", extra={"database": mask_url(cfg.database_url)})
    interval = stats_every if stats_every > 0 else 3600.0
    while not stopping.wait(interval):
        log.info("handler progress", extra={"handlers": handlers.stats()})
    handlers.stop()
    store.dispose()
    log.info("handlers stopped", extra={"handlers": handlers.stats()})


@app.command("metrics")
@friendly_errors
def metrics(
    provider: Annotated[str, typer.Option("--provider", "-p", help="provider with a metrics section")],
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Capture one provider's metrics from Gnocchi every `metrics.interval_seconds` until SIGTERM / SIGINT."""
    from stackwatch.store.db import open_store
    from stackwatch.wiring import start_metrics

    setup_logging(log_level)
    cfg = load_settings()  # --config (cli.common's one option) has set $STACKWATCH_CONFIG
    if cfg.provider(provider).metrics is None:
        err_console.print(f"[red]error:[/red] provider {provider} has no metrics section", highlight=False)
        raise typer.Exit(2)
    store = open_store(cfg.database_url)
    loops = start_metrics(cfg, store, [provider])
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping metrics capture", signal.Signals(signum).name, extra={"provider": provider})
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("metrics capture running", extra={"provider": provider, "database": mask_url(cfg.database_url)})
    stopping.wait()
    for loop in loops:
        loop.stop()
    store.dispose()
    log.info("metrics capture stopped", extra={"provider": provider, **{"stats": [lp.stats() for lp in loops]}})
