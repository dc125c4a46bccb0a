"""The `push` handler: stored events -> the subscriptions they belong to -> deliveries in the outbox.

It runs in the handler stage (`serve` and `worker handler` run it by default) over each provider's stored
stream from its own position, so an event is pushed only once it is stored, whichever process caught it.
For each event it picks the provider's subscriptions whose scope admits it and whose filter matches
(push/filters.py) and enqueues one delivery per subscription (push/outbox.py): unique per (subscription,
message_id), so a batch replayed after a crash enqueues nothing twice; lane = the event's VM, so a
subscription receives a VM's events in order while a retry holds back nothing else. The stage moves the
position only once the deliveries are committed: nothing caught is left undelivered by a crash.

The dispatcher that sends them runs beside it (its own thread pool, fair per subscription, so a dead
subscriber never delays the others) and is started with the handler, so deliveries left pending by a
previous run go out at once after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson

from stackwatch.events.model import Event
from stackwatch.push.catalog import SubscriptionCatalog
from stackwatch.push.dispatcher import Dispatcher
from stackwatch.push.filters import selects
from stackwatch.push.outbox import NewDelivery, Outbox
from stackwatch.push.sender import KINDS, PROJECT_QUEUE_KIND, PushSender
from stackwatch.push.subscriptions import SubscriptionStore
from stackwatch.push.zaqar import PROJECT_QUEUE, ZaqarDestinations
from stackwatch.switchboard.plugins import HandlerContext, HandlerPlugin

log = logging.getLogger(__name__)
SOURCE = "subscription"
#: PostgreSQL plans the outbox's claim from `deliveries`' statistics; taken while the table was nearly empty (a
#: new `serve`) they make every claim scan it quadratically: 7-8 s per claim at 5,000 pending rows instead of 50 ms
#: (bench/push_claim_plan.py). Until the outbox refreshes them itself, this handler runs ANALYZE after enqueueing
#: this many rows, then 8 times as many each time (as the store does for `events`).
ANALYZE_FIRST_AT = 1000


def lane_of(event: Event) -> str:
    """A VM's events share a lane (kept in order); an event of no VM is a lane of its own."""
    return f"vm:{event.vm_ref}" if event.vm_ref else f"event:{event.message_id}"


class PushHandler:
    name = "push"

    def __init__(self, catalog: SubscriptionCatalog, outbox: Outbox, dispatcher: Dispatcher | None = None, *,
                 project_queues: bool = False) -> None:
        self.catalog = catalog
        self.outbox = outbox
        self.dispatcher = dispatcher
        self.project_queues = project_queues
        self.enqueued = 0
        self._analyze_at = ANALYZE_FIRST_AT

    def deliveries(self, events: Sequence[Event]) -> list[NewDelivery]:
        items: list[NewDelivery] = []
        for event in events:
            body: bytes | None = None
            for sub in self.catalog.for_provider(event.provider):
                if not selects(sub.scope, sub.filter, event):
                    continue
                if body is None:
                    body = orjson.dumps(event.to_json_dict())
                items.append(NewDelivery(
                    source=SOURCE, owner=sub.name, action_index=0, message_id=event.message_id,
                    lane=lane_of(event), kind=KINDS[sub.destination_kind], spec={"subscription": sub.name},
                    body=body, target=sub.destination, provider=event.provider, max_attempts=sub.max_attempts,
                ))
            if self.project_queues and event.project_id:
                # the "no subscription" mode: every event to its own project's queue, for Zaqar's subscribers
                items.append(NewDelivery(
                    source=SOURCE, owner=f"project-queue:{event.project_id}", action_index=0,
                    message_id=event.message_id, lane=lane_of(event), kind=PROJECT_QUEUE_KIND,
                    spec={"project": event.project_id, "queue": PROJECT_QUEUE},
                    body=body or orjson.dumps(event.to_json_dict()), target=f"zaqar:{PROJECT_QUEUE}",
                    provider=event.provider,
                ))
        return items

    def handle(self, events: Sequence[Event]) -> None:
        items = self.deliveries(events)
        if items:
            self.enqueued += self.outbox.enqueue(items)
            if self.enqueued >= self._analyze_at and self.outbox.engine.dialect.name == "postgresql":
                self._analyze_at = self.enqueued * 8
                with self.outbox.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE deliveries")
                log.info("deliveries analyzed", extra={"enqueued": self.enqueued, "next_at": self._analyze_at})
            if self.dispatcher is not None:
                self.dispatcher.wake()

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()


def build(engine, settings, *, start: bool = True) -> PushHandler:  # noqa: ANN001
    """The handler with its catalog, outbox and (started) dispatcher, on `engine` with `settings.push`."""
    cfg = settings.push
    catalog = SubscriptionCatalog(SubscriptionStore(engine), cfg.reload_seconds)
    outbox = Outbox(engine)
    sender = PushSender(catalog, allow_private=cfg.allow_private_destinations, timeout=cfg.timeout_seconds,
                        zaqar=ZaqarDestinations(settings, cfg.timeout_seconds))
    kinds = [*KINDS.values(), PROJECT_QUEUE_KIND]
    dispatcher = Dispatcher(outbox, dict.fromkeys(kinds, sender), sources=(SOURCE,),
                            workers=cfg.workers, per_owner=cfg.per_subscription, poll_seconds=0.2, name="push")
    if start:
        dispatcher.start()
    return PushHandler(catalog, outbox, dispatcher, project_queues=cfg.project_queues)


def plugin(context: HandlerContext) -> HandlerPlugin | None:
    """Entry point `stackwatch.handlers: push`: every configured provider (subscriptions may come at any time)."""
    providers = tuple(p.name for p in context.settings.providers)
    if not providers:
        return None
    return HandlerPlugin(build(context.store.engine, context.settings), providers)
