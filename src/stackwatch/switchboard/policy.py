"""The policy handler: raises the generic policy event (vm_start, vm_destroy, ...) the routing table names.

Listeners (automation rules, push subscriptions) receive `PolicyEvent`s; with none registered the handler
still logs each one, so an operator can see what automation would be triggered by.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stackwatch.events.model import Event
from stackwatch.switchboard.plugins import HandlerContext, HandlerPlugin
from stackwatch.switchboard.routes import RoutingTable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PolicyEvent:
    name: str
    event: Event


class PolicyHandler:
    name = "policy"

    def __init__(self, routes: RoutingTable, listeners: Sequence[Callable[[PolicyEvent], None]] = ()) -> None:
        self.routes = routes
        self.listeners = list(listeners)

    def handle(self, events: Sequence[Event]) -> None:
        for event in events:
            policy = self.routes.route(event.event_type).policy
            if policy is None:
                continue
            raised = PolicyEvent(policy, event)
            log.info("policy event", extra={"policy": policy, "provider": event.provider,
                                             "message_id": event.message_id, "vm_ref": event.vm_ref})
            for listener in self.listeners:
                listener(raised)


def plugin(context: HandlerContext) -> HandlerPlugin:
    """Entry point `stackwatch.handlers: policy`: every configured provider."""
    return HandlerPlugin(PolicyHandler(context.routes), tuple(p.name for p in context.settings.providers))
