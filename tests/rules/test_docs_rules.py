"""Every rule in docs/rules.md loads as written, and its webhook templates render valid JSON for a real event."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from stackwatch.switchboard.conditions import load_yaml
from stackwatch.switchboard.rules.engine import RuleSet
from stackwatch.switchboard.rules.model import parse_rules
from tests.rules.samples import LEGACY_CREATE, ROUTES, VERSIONED_ERROR, sample

DOC = Path(__file__).parents[2] / "docs" / "rules.md"


def _rule_blocks() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    out = []
    for block in blocks:
        if "- name:" not in block or "hosts:" in block:
            continue  # the configuration and EDA's rulebook
        body = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
        out.append(body if body.lstrip().startswith("rules:") else "rules:\n" + body)
    return out


def test_every_documented_rule_loads_and_its_templates_render():
    rules = [r for block in _rule_blocks() for r in parse_rules(load_yaml(block), "docs/rules.md")]
    names = {r.name for r in rules}
    assert {"instance-errors", "fleece-new-instances", "awx-on-create", "noisy-host", "to-eda",
            "slack-errors"} <= names
    event = sample(VERSIONED_ERROR)
    rendered = 0
    for rule in rules:
        for action in rule.actions:
            if action.kind == "webhook" and action.options.get("template"):
                plan = action.type.plan(rule.name, action.options, event)
                doc = orjson.loads(plan.body)  # valid JSON
                assert event.vm_ref in plan.body.decode() and doc
                rendered += 1
    assert rendered == 2
    by_name = {r.name: r for r in rules}
    ruleset = RuleSet(rules, ROUTES)
    assert by_name["fleece-new-instances"] in ruleset.matching(sample(LEGACY_CREATE))
    assert by_name["slack-errors"] in ruleset.matching(event)
