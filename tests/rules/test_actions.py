"""Actions other than webhook: what refresh, fleece and log plan for a real event and what their senders do;
an event that lacks what an action needs is a dead delivery with the reason, never a crash or a silent skip."""

from __future__ import annotations

import logging
from dataclasses import replace

from stackwatch.config.settings import Settings
from stackwatch.push.dispatcher import Dispatcher
from stackwatch.push.outbox import Outbox
from stackwatch.switchboard.rules.actions.base import ActionContext, action_types
from stackwatch.switchboard.rules.handler import build_dispatcher, plan_deliveries
from stackwatch.switchboard.rules.model import parse_rules
from stackwatch.switchboard.targets import Target
from tests.rules.samples import VERSIONED_CREATE, sample


def _rule(actions: str):
    from stackwatch.switchboard.conditions import load_yaml

    (rule,) = parse_rules(load_yaml(f"rules: [{{name: r, events: ['*'], actions: {actions}}}]"))
    return rule


def test_refresh_plans_the_event_refs_and_whole_kinds_and_calls_the_refresher(engine):
    event = sample(VERSIONED_CREATE)
    rule = _rule("[{refresh: {kinds: [vm, image, flavor]}}]")
    (delivery,) = plan_deliveries(rule, event)
    assert delivery.spec["targets"] == [["vm", event.vm_ref], ["image", event.image_ref], ["flavor", None]]
    calls = []
    sender = action_types()["refresh"].sender(ActionContext(Settings(), engine, lambda *a: calls.append(a)))
    box = Outbox(engine)
    box.enqueue([delivery])
    dispatcher = Dispatcher(box, {"refresh": sender}, workers=2)
    assert dispatcher.drain(10)
    assert calls == [("lab", frozenset({Target("lab", "vm", event.vm_ref), Target("lab", "image", event.image_ref),
                                        Target("lab", "flavor", None)}), False)]
    assert box.list()[0].state == "done"


def test_actions_an_event_cannot_carry_out_are_dead_with_the_reason(engine, caplog):
    event = replace(sample(VERSIONED_CREATE), vm_ref=None)
    rule = _rule("[{fleece: {target: instance}}, {log: {level: warning, message: seen}}]")
    box = Outbox(engine)
    box.enqueue(plan_deliveries(rule, event))
    dispatcher = build_dispatcher(ActionContext(Settings(), engine), box, 4, 4, 1, 0.05)
    with caplog.at_level(logging.WARNING, logger="stackwatch.rules.action"):
        assert dispatcher.drain(10)
    dispatcher.stop()
    fleece, log_action = sorted(box.list(), key=lambda d: d.action_index)
    assert (fleece.kind, fleece.state, fleece.attempts) == ("invalid", "dead", 1)
    assert "carries no vm_ref" in fleece.last_error
    assert log_action.state == "done"
    (record,) = [r for r in caplog.records if r.name == "stackwatch.rules.action"]
    assert record.getMessage() == "seen" and record.message_id == event.message_id
