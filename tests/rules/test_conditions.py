"""The condition language, table-tested over real samples: a rule written once on canonical fields matches
the legacy and the versioned shape of the same event."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stackwatch.switchboard.conditions import ConditionError, compile_condition, compile_globs, load_yaml
from tests.rules.samples import LEGACY_CREATE, VERSIONED_CREATE, VERSIONED_ERROR, VERSIONED_POWER_OFF, sample

LEGACY = sample(LEGACY_CREATE)
VERSIONED = sample(VERSIONED_CREATE)
ERROR = sample(VERSIONED_ERROR)
POWER_OFF = sample(VERSIONED_POWER_OFF)


def cond(text: str):
    return compile_condition(load_yaml(text))


# (condition as an operator writes it, legacy create.end, versioned create.end, versioned create.error)
TABLE = [
    ("{field: vm_ref, exists: true}", True, True, True),
    ("{field: host_ref, exists: false}", False, False, True),
    ("{field: group, equals: creation}", True, True, True),
    ("{field: level, not_equals: detail}", True, True, True),
    ("{field: payload.state, equals: active}", True, True, False),  # both shapes: nova_object.data looked through
    ("{not: {field: payload.state, equals: deleted}}", True, True, True),
    ("{field: payload.state, in: [active, building]}", True, True, True),
    ("{field: payload.memory_mb, gt: 100}", True, False, False),  # legacy top-level; versioned has flavor.memory_mb
    ("{field: payload.flavor.memory_mb, gt: 100}", False, True, True),
    ("{field: payload.flavor.memory_mb, lt: '1000'}", False, True, True),  # a string read as a number
    ("{field: event_type, matches: '^(compute\\.)?instance\\.create\\.'}", True, True, True),
    ("{field: priority, matches: '(?i)error'}", False, False, True),
    ("{field: project_id, in: [7c150a59fe714e6f9263774af9688f0e, 6f70656e737461636b20342065766572]}",
     True, True, True),
    ("{all: [{field: vm_ref, exists: true}, {field: availability_zone, equals: nova}]}", False, True, True),
    ("{any: [{field: availability_zone, equals: nova}, {field: host_ref, equals: compute-host-name}]}",
     True, True, True),
    ("{field: payload.no.such.path, exists: false}", True, True, True),
    ("{field: payload.no.such.path, not_equals: x}", True, True, True),
    ("{field: payload.no.such.path, equals: x}", False, False, False),
    ("{field: payload.state, lt: 5}", False, False, False),  # different kinds never match (and never raise)
]


@pytest.mark.parametrize(("text", "legacy", "versioned", "error"), TABLE, ids=[t[0] for t in TABLE])
def test_conditions_over_real_samples(text, legacy, versioned, error):
    test = cond(text)
    assert (test(LEGACY), test(VERSIONED), test(ERROR)) == (legacy, versioned, error)


def test_values_are_compared_as_written():
    # `0123` is an int in YAML 1.1 (octal 83!), `123e4567` stays a string, `12345` an int: compared with a
    # string field each means the text the operator wrote
    for written, project in (("0123", "0123"), ("123e4567", "123e4567"), ("12345", "12345"), ("1.50", "1.50")):
        event = sample(VERSIONED_CREATE, project_id=project)
        assert cond(f"{{field: project_id, equals: {written}}}")(event), written
        assert cond(f"{{field: project_id, in: [{written}, other]}}")(event), written
        assert not cond(f"{{field: project_id, not_equals: {written}}}")(event), written
    assert not cond("{field: project_id, equals: 83}")(sample(VERSIONED_CREATE, project_id="0123"))


def test_timestamps_compare_with_iso_text():
    event = sample(LEGACY_CREATE)
    assert event.timestamp == datetime(2012, 5, 8, 20, 23, 48, 28195, tzinfo=UTC)
    assert cond("{field: timestamp, gt: '2012-05-08T00:00:00Z'}")(event)
    assert not cond("{field: timestamp, lt: '2012-05-08T00:00:00'}")(event)
    assert not cond("{field: timestamp, gt: yesterday}")(event)


def test_globs_match_dots_with_star():
    regex = compile_globs(["compute.instance.*.error", "instance.*"])
    assert regex.match("compute.instance.create.error") and regex.match("instance.create.error")
    assert regex.match("instance.power_off.end") and not regex.match("compute.instance.create.end")
    assert compile_globs(["compute.*.end"]).match("compute.instance.create.end")


@pytest.mark.parametrize(("text", "message"), [
    ("{field: vm_ref, eq: x}", "when: unknown operator 'eq'"),
    ("{field: vm_ref}", "exactly one operator"),
    ("{field: vm_ref, equals: a, in: [a]}", "exactly one operator"),
    ("{field: vm, equals: x}", "when.field: unknown field 'vm'"),
    ("{field: payload.x, matches: '('}", "when.matches: bad regular expression"),
    ("{all: []}", "when.all: must be a non-empty list"),
    ("{all: [{field: vm_ref, exists: true}, {any: [{field: x, equals: 1}]}]}", "when.all[1].any[0].field"),
    ("{not: {field: vm_ref, exists: maybe}}", "when.not.exists: must be true or false"),
    ("{field: vm_ref, in: x}", "when.in: must be a non-empty list"),
    ("{all: [{field: vm_ref, exists: true}], any: []}", "'all' must be alone"),
    ("[1, 2]", "when: must be a mapping"),
])
def test_errors_name_the_key(text, message):
    with pytest.raises(ConditionError) as info:
        cond(text)
    assert message in str(info.value)
