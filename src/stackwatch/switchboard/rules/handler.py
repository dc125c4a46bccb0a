"""The `rules` handler (entry point `stackwatch.handlers: rules`): evaluates the rules over the stored event
stream from its own persisted position, records matches and enqueues their actions into the outbox, and runs
the dispatcher that carries the actions out.

It runs in the handler stage (`serve`, `worker handler`), after events are stored, never in the catcher's
path: a slow webhook delays neither intake nor acknowledgement, only its own deliveries. The stage moves the
position after `handle` returned, i.e. after the matches and deliveries committed; a crash in between
replays the batch, and the audit's once-per-(rule, event) rule makes the replay a no-op.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence

from stackwatch.events.model import Event
from stackwatch.push.dispatcher import Dispatcher
from stackwatch.push.outbox import NewDelivery, Outbox
from stackwatch.switchboard.plugins import HandlerContext, HandlerPlugin
from stackwatch.switchboard.routes import RoutingTable
from stackwatch.switchboard.rules.actions.base import ActionContext, action_types, invalid_sender
from stackwatch.switchboard.rules.audit import RuleAudit
from stackwatch.switchboard.rules.engine import RuleSet
from stackwatch.switchboard.rules.model import Rule, RuleError
from stackwatch.switchboard.rules.rulesfile import RulesSource, rules_path

log = logging.getLogger(__name__)


def plan_deliveries(rule: Rule, event: Event) -> list[NewDelivery]:
    """The outbox entries of `rule`'s actions for `event`: one lane per event, so an event's actions go in
    order and its retries hold back no other event."""
    out = []
    for action in rule.actions:
        plan = action.type.plan(rule.name, action.options, event)
        out.append(NewDelivery(source="rule", owner=rule.name, action_index=action.index,
                               message_id=event.message_id, lane=event.message_id, kind=plan.kind, spec=plan.spec,
                               body=plan.body, target=plan.target, provider=event.provider,
                               max_attempts=action.max_attempts))
    return out


class RulesHandler:
    name = "rules"

    def __init__(self, source: RulesSource, routes: RoutingTable, audit: RuleAudit,
                 dispatcher: Dispatcher | None = None) -> None:
        self.source = source
        self.routes = routes
        self.audit = audit
        self.dispatcher = dispatcher
        self.ruleset = RuleSet(source.rules or (), routes)
        self.matched = 0
        self.throttled = 0

    def handle(self, events: Sequence[Event]) -> None:
        if self.source.refresh():
            self.ruleset = RuleSet(self.source.rules or (), self.routes)
        if self.source.rules is None:
            # never skip events because of a typo: the stage retries this batch until the file is fixed
            raise RuleError(self.source.last_error or "the rules file is not valid")
        ruleset = self.ruleset
        if not ruleset.rules:
            return
        by_provider: dict[str, list[tuple[Rule, Event]]] = {}
        for event in events:
            for rule in ruleset.candidates(event.provider, event.event_type):
                if rule.test(event):
                    by_provider.setdefault(event.provider, []).append((rule, event))
        enqueued = False
        for provider, matches in by_provider.items():
            decisions = self.audit.record(provider, matches, plan_deliveries)
            self.matched += len(decisions)
            self.throttled += sum(d.throttled for d in decisions)
            enqueued |= any(d.actions for d in decisions)
        if enqueued and self.dispatcher is not None:
            self.dispatcher.wake()

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()


def build_dispatcher(context: ActionContext, outbox: Outbox, workers: int, per_rule: int, max_fleeces: int,
                     poll_seconds: float) -> Dispatcher:
    senders = {name: t.sender(context) for name, t in action_types().items()}
    senders["invalid"] = invalid_sender
    return Dispatcher(outbox, senders, sources=("rule",), workers=workers, per_owner=per_rule,
                      kind_limits={"fleece": max_fleeces}, poll_seconds=poll_seconds, name="rules-dispatcher")


def _on_sighup(source: RulesSource) -> None:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGHUP"):
        return
    previous = signal.getsignal(signal.SIGHUP)

    def reload(signum: int, frame: object) -> None:
        source.request_reload()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGHUP, reload)


def plugin(context: HandlerContext) -> HandlerPlugin | None:
    """Entry point `stackwatch.handlers: rules`: every configured provider, with the rules file (which may be
    empty or absent: rules added later are picked up without a restart)."""
    settings = context.settings
    providers = tuple(p.name for p in settings.providers)
    if not providers:
        return None
    cfg = settings.automation
    source = RulesSource(rules_path(settings), check_seconds=cfg.reload_seconds)
    _on_sighup(source)
    engine = context.store.engine
    outbox = Outbox(engine)
    dispatcher = build_dispatcher(ActionContext(settings, engine, context.refresher), outbox, cfg.workers,
                                  cfg.per_rule, cfg.max_fleeces, cfg.poll_seconds).start()
    return HandlerPlugin(RulesHandler(source, context.routes, RuleAudit(engine, outbox), dispatcher), providers)
