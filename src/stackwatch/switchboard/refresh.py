"""The refresh handler: events -> targets (routing table) -> one targeted inventory refresh per batch.

The handler stage hands it a batch of one provider's stored events (whatever arrived since the last read),
so a burst of 40 events about 3 servers costs 3 lookups, not 40. Past `full_threshold` distinct targets the
refresher is asked for a full refresh instead (cheaper than hundreds of single GETs). A refresh that fails
raises: the stage keeps the batch and retries it with back-off, so no refresh is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from stackwatch.events.model import Event
from stackwatch.switchboard.plugins import HandlerContext, HandlerPlugin
from stackwatch.switchboard.routes import RoutingTable
from stackwatch.switchboard.targets import Target, targets_for

log = logging.getLogger(__name__)

#: refresher(provider, targets, full) -> None; the inventory implements it
Refresher = Callable[[str, frozenset[Target], bool], None]


class RefreshHandler:
    name = "refresh"

    def __init__(self, routes: RoutingTable, refresher: Refresher, full_threshold: int = 200) -> None:
        self.routes = routes
        self.refresher = refresher
        self.full_threshold = full_threshold

    def handle(self, events: Sequence[Event]) -> None:
        by_provider: dict[str, set[Target]] = {}
        for event in events:
            targets = targets_for(event, self.routes)
            if targets:
                by_provider.setdefault(event.provider, set()).update(targets)
        for provider, targets in by_provider.items():
            self.refresher(provider, frozenset(targets), len(targets) > self.full_threshold)


def plugin(context: HandlerContext) -> HandlerPlugin | None:
    """Entry point `stackwatch.handlers: refresh`: the providers with a cloud (the others keep no inventory)."""
    providers = tuple(p.name for p in context.settings.providers if p.cloud)
    return HandlerPlugin(RefreshHandler(context.routes, context.refresher), providers) if providers else None
