"""Real notification samples (tests/data/samples, copied from ../shared/samples with their SOURCES.md)
converted to canonical events, for the rules tests."""

from __future__ import annotations

import functools
from dataclasses import replace

from stackwatch.events.convert import Converter
from stackwatch.events.model import Event
from stackwatch.switchboard.routes import RoutingTable
from tests.conftest import SAMPLES

ROUTES = RoutingTable.load()
LEGACY_CREATE = SAMPLES / "legacy/nova/ceilometer-test_instance-INSTANCE_CREATE_END.json"
VERSIONED_CREATE = SAMPLES / "nova_versioned/instance-create-end.json"
VERSIONED_ERROR = SAMPLES / "nova_versioned/instance-create-error.json"
VERSIONED_POWER_OFF = SAMPLES / "nova_versioned/instance-power_off-end.json"


@functools.cache
def converter() -> Converter:
    return Converter(ROUTES)


def sample(path, provider: str = "lab", **changes) -> Event:
    event = converter().convert(path.read_bytes(), provider, "ingest")
    return replace(event, **changes) if changes else event
