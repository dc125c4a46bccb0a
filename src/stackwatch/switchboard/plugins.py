"""Handler plugins, loaded from the `stackwatch.handlers` entry-point group.

A plugin is a factory `(HandlerContext) -> HandlerPlugin | None`: the handler and the partitions (providers)
it reads, or None when it has nothing to do with this configuration. The handler stage gives each its own
positions in the stored stream, so a third party (or our own rules and push) adds a handler by declaring an
entry point, without touching the catchers, the wiring or the other handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import Settings
    from stackwatch.switchboard.refresh import Refresher
    from stackwatch.switchboard.routes import RoutingTable
    from stackwatch.switchboard.stage import StreamHandler

log = logging.getLogger(__name__)

GROUP = "stackwatch.handlers"


@dataclass(frozen=True)
class HandlerContext:
    """What a handler factory may use: the settings, the store, the routing table, the inventory refresher."""

    settings: Settings
    store: Any
    routes: RoutingTable
    refresher: Refresher


@dataclass(frozen=True)
class HandlerPlugin:
    handler: StreamHandler
    partitions: tuple[str, ...]


Factory = Callable[[HandlerContext], "HandlerPlugin | None"]


def load_handlers(context: HandlerContext) -> list[HandlerPlugin]:
    """Every installed handler that has work under `context`, by entry-point name. A plugin that fails to
    load or build is logged and skipped: one broken third-party handler must not stop the others."""
    plugins = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            plugin = ep.load()(context)
        except Exception:  # noqa: BLE001
            log.exception("handler plugin failed to load; skipped", extra={"plugin": ep.name, "target": ep.value})
            continue
        if plugin is None:
            continue
        if plugin.handler.name != ep.name:
            log.error("handler plugin %r names its handler %r; skipped (positions are kept by name)",
                      ep.name, plugin.handler.name)
            continue
        plugins.append(plugin)
    return plugins
