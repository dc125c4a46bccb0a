"""Wiring: the one place that builds catchers and handlers for `serve` and every `stackwatch worker`.

A provider's monitor is selected here (configuration errors surface before anything starts), its runner is
built here (thread or process writer), and the handler stage with its handlers (policy, refresh) and the
periodic full refresh is assembled here. The CLI only picks which of the two halves a process runs:

- `serve`: catchers + handlers + the API; `serve --no-catchers`: handlers + the API beside catcher workers;
- `worker catcher --provider P`: one provider's catcher; `worker handler`: the handlers alone;
- `worker metrics --provider P`: one provider's metrics capture loop (`serve` runs one per provider with `metrics`).

Catchers and handlers share nothing but the stored event stream, so any split across processes works.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackwatch.backoff import Backoff

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig, Settings
    from stackwatch.events.monitors.registry import Selection
    from stackwatch.events.runner import CatcherRunner
    from stackwatch.inventory.events import InventoryRefresher
    from stackwatch.metrics.loop import MetricsLoop
    from stackwatch.switchboard.periodic import PeriodicFullRefresh
    from stackwatch.switchboard.stage import HandlerStage

log = logging.getLogger(__name__)


# -- catchers --------------------------------------------------------------------------------------------
def select_monitors(settings: Settings, providers: list[str] | None = None) -> list[tuple[ProviderConfig, Selection]]:
    """Each chosen provider with its selected monitor; raises `MonitorSelectionError` before anything starts."""
    from stackwatch.events.monitors.registry import select

    chosen = [p for p in settings.providers if providers is None or p.name in providers]
    return [(p, select(p)) for p in chosen]


def build_runner(provider: ProviderConfig, store: Any, routes: Any = None, *, selection: Selection | None = None,
                 writer: str = "thread", database_url: str | None = None, routes_path: Any = None,
                 **kwargs: Any) -> CatcherRunner:
    """The selected monitor for `provider` wired to a catcher on `store` (writer="thread"), or to a writer
    process on `database_url` (writer="process")."""
    from stackwatch.events.monitors.registry import select

    selection = selection or select(provider)
    monitor = selection.monitor(provider)
    bind_store = getattr(monitor, "bind_store", None)
    if bind_store is not None:  # polling monitors persist their cursor, push receivers store through it
        if store is None and database_url is not None:
            from stackwatch.store.db import open_store

            store = open_store(database_url)
        bind_store(store)
    log.info("catcher %s: monitor %s (%s), writer %s", provider.name, selection.name,
             selection.verdicts[selection.name].reason, writer)
    if writer == "process" and selection.name != "null":
        if database_url is None:
            raise ValueError("writer='process' needs database_url")
        from stackwatch.events.process_runner import ProcessCatcherRunner

        return ProcessCatcherRunner(monitor, database_url, routes=routes_path, **kwargs)
    from stackwatch.events.catcher import Catcher
    from stackwatch.events.runner import CatcherRunner
    from stackwatch.switchboard.routes import RoutingTable

    # as many transactions in flight as the store can use: a store process takes the next batch while it
    # writes one (AMQP drain into SQLite 8.1k -> 10.0k ev/s, bench/RESULTS.md)
    kwargs.setdefault("writers", getattr(store, "concurrent_writers", 1))
    writer_processes = getattr(store, "writer", None)
    if writer_processes is not None:
        # spawn the store processes now: started on the first write, they held the first batch (and a
        # backlog's whole drain) 1-9 s behind the consumer (bench/amqp.py, bench/RESULTS.md session 7)
        writer_processes.start()
    return CatcherRunner(monitor, Catcher(store, provider, routes or RoutingTable.load(routes_path)), **kwargs)


@dataclass
class CatchersHandle:
    """What `start_catchers` returns: the running runners; `stop()` stops them all."""

    runners: list[CatcherRunner]
    store: Any = None

    def stop(self, timeout: float = 10.0) -> None:
        for runner in self.runners:
            runner._stop.set()
            runner.monitor.stop()
        deadline = time.monotonic() + timeout
        for runner in self.runners:
            runner.stop(max(0.1, deadline - time.monotonic()))
        if self.store is not None and hasattr(self.store, "dispose"):
            self.store.dispose()

    def stats(self) -> dict[str, Any]:
        return {r.provider: {"runner": vars(r.stats), "monitor": r.monitor.stats(), "alive": r.is_alive()}
                for r in self.runners}

    def __enter__(self) -> CatchersHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_catchers(settings: Settings, store: Any = None, providers: list[str] | None = None,
                   writer: str = "thread") -> CatchersHandle:
    """Start one catcher per configured provider (or the named ones) in background threads; return the handle.

    `writer="process"` converts and writes each provider's batches in a child process (see
    `ProcessCatcherRunner`). Providers whose monitor is `null` get no thread (they catch nothing). A provider
    whose monitor cannot be selected raises `MonitorSelectionError` before anything starts.
    """
    from stackwatch.switchboard.routes import RoutingTable

    selections = select_monitors(settings, providers)
    own_store = store is None
    if own_store:
        from stackwatch.store.db import open_store

        store = open_store(settings.database_url)
    routes = RoutingTable.load(settings.routes)
    runners = []
    for provider, selection in selections:
        if selection.name == "null":
            log.info("catcher %s: monitor null, no events caught", provider.name)
            continue
        runners.append(build_runner(provider, store, routes, selection=selection, writer=writer,
                                    database_url=settings.database_url, routes_path=settings.routes).start())
    return CatchersHandle(runners, store if own_store else None)


# -- handlers --------------------------------------------------------------------------------------------
@dataclass
class HandlersHandle:
    """The handler stage, the periodic full refresh and the inventory connections they share."""

    stage: HandlerStage
    periodic: PeriodicFullRefresh
    refresher: InventoryRefresher

    def stop(self) -> None:
        """Periodic refresh first, then the stage finishes its batches and saves positions; connections last."""
        self.periodic.stop()
        self.stage.stop()
        self.refresher.close()

    def stats(self) -> dict[str, Any]:
        return {name: {"handled": s.handled, "batches": s.batches, "failures": s.failures,
                       "held": sorted(p for p, st in s.partitions.items() if st.position is not None)}
                for name, s in self.stage.stats.items()}


def start_handlers(settings: Settings, store: Any) -> HandlersHandle:
    """Start the handler stage over the stored stream with every installed handler plugin (entry points
    `stackwatch.handlers`: policy for every provider, refresh for every provider with a `cloud`) and the
    periodic full refresh."""
    from stackwatch.inventory.events import make_refresher
    from stackwatch.store.stream import EventStream, HandlerPositions
    from stackwatch.switchboard.periodic import PeriodicFullRefresh
    from stackwatch.switchboard.plugins import HandlerContext, load_handlers
    from stackwatch.switchboard.routes import RoutingTable
    from stackwatch.switchboard.stage import HandlerStage

    cfg = settings.handlers
    refresher = make_refresher(settings, store.engine)
    plugins = load_handlers(HandlerContext(settings, store, RoutingTable.load(settings.routes), refresher))
    partitions = {p.handler.name: p.partitions for p in plugins}
    with_cloud = [p.name for p in settings.providers if p.cloud]
    stage = HandlerStage(
        EventStream(store.engine),
        HandlerPositions(store.engine, lease_seconds=cfg.lease_seconds),
        [p.handler for p in plugins],
        lambda handler: partitions.get(handler, ()),
        batch_size=cfg.batch_size,
        poll_seconds=cfg.poll_seconds,
        backoff=Backoff(0.5, cfg.retry_max_seconds),
    ).start()
    # the refresh lease holder of a provider also runs its full refreshes (one process lists a cloud)
    periodic = PeriodicFullRefresh(
        refresher, with_cloud if "refresh" in partitions else [], cfg.full_refresh_seconds,
        holds=lambda p: stage.holds("refresh", p),
        backoff=Backoff(2.0, max(cfg.retry_max_seconds, 2.0)),
    ).start()
    log.info("handlers started", extra={"partitions": {k: list(v) for k, v in partitions.items()},
                                        "full_refresh_seconds": cfg.full_refresh_seconds})
    return HandlersHandle(stage, periodic, refresher)


# -- metrics ---------------------------------------------------------------------------------------------
def start_metrics(settings: Settings, store: Any, providers: list[str] | None = None) -> list[MetricsLoop]:
    """One capture loop per provider (or the named ones) that has a `metrics` section (docs/metrics.md)."""
    from stackwatch.metrics.loop import start_loops

    chosen = [p for p in settings.providers if providers is None or p.name in providers]
    return start_loops(chosen, store.engine)


# -- serve -----------------------------------------------------------------------------------------------
@dataclass
class EventEngine:
    """What `serve` runs beside the API: catchers (unless `--no-catchers`), the handlers, and a metrics
    capture loop per provider with a `metrics` section.

    Stop order: catchers first (their last batches are stored and acknowledged), then the handlers finish the
    batches they hold and save their positions; whatever they did not reach stays in the stream for the next
    start, or for another handler process.
    """

    catchers: CatchersHandle | None
    handlers: HandlersHandle | None
    metrics: list[MetricsLoop] | None = None

    @classmethod
    def start(cls, settings: Settings, store: Any, *, catchers: bool = True, handlers: bool = True) -> EventEngine:
        """Select every provider's monitor first (a configuration error stops before anything starts)."""
        handle = start_catchers(settings, store) if catchers else None
        return cls(handle, start_handlers(settings, store) if handlers else None, start_metrics(settings, store))

    def stop(self) -> None:
        for loop in self.metrics or ():
            loop.stop()
        if self.catchers is not None:
            self.catchers.stop()
        if self.handlers is not None:
            self.handlers.stop()
