"""Rules: validation that names the rule and key, evaluation with throttles over real samples, the handler's
once-per-(rule, event) audit across replays and restarts (SQLite and the real PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from stackwatch.push.outbox import Outbox
from stackwatch.switchboard.conditions import load_yaml
from stackwatch.switchboard.rules.audit import RuleAudit
from stackwatch.switchboard.rules.engine import RuleSet
from stackwatch.switchboard.rules.handler import RulesHandler
from stackwatch.switchboard.rules.model import RuleError, parse_duration, parse_rules
from stackwatch.switchboard.rules.rulesfile import RulesSource, add_rules, read_rules, remove_rule
from tests.rules.samples import (
    LEGACY_CREATE,
    ROUTES,
    VERSIONED_CREATE,
    VERSIONED_ERROR,
    VERSIONED_POWER_OFF,
    sample,
)

ISSUE_EXAMPLE = """
rules:
  - name: instance-errors
    providers: [lab]
    events: ["compute.instance.*.error", "instance.*.error"]
    when: {all: [{field: project_id, in: [6f70656e737461636b20342065766572]},
                 {not: {field: payload.state, equals: deleted}}]}
    throttle: {once_within: 10m, group_by: [vm_ref]}
    actions:
      - webhook: {url: "https://hooks.example/x", secret_env: HOOK_SECRET, max_attempts: 8}
      - fleece: {target: instance}
"""


def rules(text: str):
    return parse_rules(load_yaml(text), "rules.yaml")


def test_the_issue_example_loads_as_written():
    (rule,) = rules(ISSUE_EXAMPLE)
    assert rule.name == "instance-errors" and rule.providers == {"lab"}
    assert rule.throttle.once_within == 600 and rule.throttle.group_by == ("vm_ref",)
    assert [(a.kind, a.max_attempts) for a in rule.actions] == [("webhook", 8), ("fleece", 3)]
    ruleset = RuleSet([rule], ROUTES)
    assert ruleset.matching(sample(VERSIONED_ERROR)) == [rule]
    assert ruleset.matching(sample(VERSIONED_ERROR, provider="other")) == []
    assert ruleset.matching(sample(VERSIONED_CREATE)) == []


@pytest.mark.parametrize(("text", "message"), [
    ("rules: [{name: a, events: [x], actions: [{log: {}}], wen: {}}]", "rules[0] (a): unknown key 'wen'"),
    ("rules: [{name: a, actions: [{log: {}}]}]", "rules[0] (a): give `events`"),
    ("rules: [{name: 'a b', events: [x], actions: [{log: {}}]}]", "rules[0].name"),
    ("rules: [{name: a, events: [x], actions: []}]", "rules[0] (a).actions: must be a non-empty list"),
    ("rules: [{name: a, events: [x], actions: [{mail: {}}]}]", "rules[0] (a).actions[0]: unknown action 'mail'"),
    ("rules: [{name: a, events: [x], actions: [{webhook: {url: 'ftp://x'}}]}]",
     "rules[0] (a).actions[0].webhook.url"),
    ("rules: [{name: a, events: [x], actions: [{webhook: {url: 'http://x', secret_env: 'a b'}}]}]",
     "webhook.secret_env"),
    ("rules: [{name: a, events: [x], actions: [{webhook: {url: 'http://x', template: '{{ x'}}]}]",
     "webhook.template: line 1"),
    ("rules: [{name: a, events: [x], actions: [{refresh: {kinds: [vm, spaceship]}}]}]",
     "refresh.kinds: unknown kind 'spaceship'"),
    ("rules: [{name: a, events: [x], when: {field: vm_ref, eq: 1}, actions: [{log: {}}]}]",
     "rules[0] (a).when: unknown operator 'eq'"),
    ("rules: [{name: a, events: [x], throttle: {once_within: soon}, actions: [{log: {}}]}]",
     "rules[0] (a).throttle.once_within"),
    ("rules: [{name: a, events: [x], throttle: {once_within: 1m, group_by: [vm]}, actions: [{log: {}}]}]",
     "throttle.group_by.field: unknown field 'vm'"),
    ("rules: [{name: a, events: [x], actions: [{log: {}}]}, {name: a, events: [y], actions: [{log: {}}]}]",
     "rule names must be unique, repeated: a"),
])
def test_errors_name_the_rule_and_key(text, message):
    with pytest.raises(RuleError) as info:
        rules(text)
    assert message in str(info.value)
    assert str(info.value).startswith("rules.yaml")


def test_durations():
    assert [parse_duration(v, "x") for v in ("10m", "30s", "1h", "2d", "500ms", 90, "1.5h")] == [
        600, 30, 3600, 172800, 0.5, 90, 5400]


def test_a_rule_written_once_matches_both_shapes_through_policy_and_fields():
    (rule,) = rules("""
rules:
  - name: new-vms
    policy: vm_create
    when: {all: [{field: vm_ref, exists: true}, {field: payload.state, equals: active}]}
    actions: [{log: {}}]
""")
    ruleset = RuleSet([rule], ROUTES)
    assert ruleset.matching(sample(LEGACY_CREATE)) == [rule]  # compute.instance.create.end (legacy)
    assert ruleset.matching(sample(VERSIONED_CREATE)) == [rule]  # instance.create.end (versioned)
    assert ruleset.matching(sample(VERSIONED_POWER_OFF)) == []
    matched, why = ruleset.explain(rule, sample(VERSIONED_POWER_OFF))
    assert not matched and "vm_poweroff" in why


THROTTLED = """
rules:
  - name: noisy-host
    events: ["instance.*", "compute.instance.*"]
    throttle: {once_within: 10m, group_by: [vm_ref]}
    actions: [{log: {}}, {webhook: {url: "http://127.0.0.1:9/x"}}]
  - name: every-create
    policy: vm_create
    actions: [{log: {}}]
"""


def _handler(engine, path):
    outbox = Outbox(engine)
    return RulesHandler(RulesSource(path), ROUTES, RuleAudit(engine, outbox)), outbox


def test_throttles_and_replays_record_once_and_survive_a_restart(engine, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(THROTTLED)
    base = sample(VERSIONED_CREATE)
    t0 = base.received_at
    events = [replace(base, message_id=f"m{i}", timestamp=t0 + timedelta(minutes=3 * i),
                      vm_ref="vm-a" if i % 2 == 0 else "vm-b") for i in range(8)]
    # vm-a at 0, 6, 12, 18 min, vm-b at 3, 9, 15, 21 min: each fires at 0/3 and again 12/15 min (>= 10 min later)
    handler, outbox = _handler(engine, path)
    handler.handle(events[:5])
    handler.handle(events[:5])  # a replayed batch (crash before the position moved): nothing new
    assert handler.matched == 10 and handler.throttled == 2  # m2 (vm-a, 6 min), m3 (vm-b, 6 min)
    restarted, _ = _handler(engine, path)  # a new process: throttle state comes from the store
    restarted.handle(events)
    assert restarted.matched == 6 and restarted.throttled == 2  # only m5..m7 are new; m6, m7 throttled
    fired = sorted(d.message_id for d in outbox.list(owner="noisy-host", limit=100) if d.action_index == 0)
    assert fired == ["m0", "m1", "m4", "m5"]
    assert len(outbox.list(owner="every-create", limit=100)) == 8
    (webhook,) = outbox.list(owner="noisy-host", message_id="m4", limit=10, newest_first=False)[1:]
    assert webhook.kind == "webhook" and webhook.spec["headers"]["Idempotency-Key"] == "noisy-host:m4"


def test_rules_file_edits_reloads_and_bad_edits(engine, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("# my rules\nrules: []\n")
    source = RulesSource(path, check_seconds=0)
    assert source.rules == []
    add_rules(path, load_yaml(THROTTLED)["rules"])
    assert "# my rules" in path.read_text()
    assert source.refresh() and [r.name for r in source.rules] == ["noisy-host", "every-create"]
    with pytest.raises(RuleError, match="already exists"):
        add_rules(path, [{"name": "every-create", "policy": "vm_create", "actions": [{"log": {}}]}])
    add_rules(path, [{"name": "every-create", "policy": "vm_start", "actions": [{"log": {}}]}], replace=True)
    remove_rule(path, "noisy-host")
    assert [(r.name, sorted(r.policies)) for r in read_rules(path)] == [("every-create", ["vm_start"])]
    assert source.refresh() and [r.name for r in source.rules] == ["every-create"]
    path.write_text("rules: [{name: x, events: [y], actions: [{log: {}}], bogus: 1}]\n")
    assert not source.refresh()  # invalid: the previous rules keep running
    assert [r.name for r in source.rules] == ["every-create"] and "unknown key 'bogus'" in source.last_error
    source.request_reload()
    path.write_text("rules: []\n")
    assert source.refresh() and source.rules == []


def test_a_rules_file_invalid_from_the_start_holds_the_batch(engine, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules: [{name: x}]\n")
    handler, _ = _handler(engine, path)
    with pytest.raises(RuleError, match=r"rules\[0\] \(x\)"):
        handler.handle([sample(VERSIONED_CREATE)])
