"""Realistic notification bodies for the AMQP tests and bench, built from the real samples in `data/`.

`envelope_bodies(n)` gives oslo 2.0 envelopes (`{"oslo.version": "2.0", "oslo.message": "<json>"}`) exactly
as `oslo_messaging.Notifier(driver="messagingv2")` puts them on the wire, with a fresh message_id and
instance id each (nothing is de-duplicated or flood-collapsed away); about 2.3 KB on average.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

DATA = Path(__file__).with_name("data")

#: The oslo context of the captured wire bodies (flattened `_context_*` keys, as oslo sends them).
_WIRE = orjson.loads(orjson.loads((DATA / "oslo_wire_00_notifications.info_compute.instance.create.end.body.json")
                                  .read_bytes())["oslo.message"])
CONTEXT = {k: v for k, v in _WIRE.items() if k.startswith("_context_")}


@dataclass(frozen=True)
class Sample:
    file: str
    event_type: str
    publisher_id: str
    priority: str
    payload: Any
    exchange: str  # the service's control_exchange


def _exchange(file: str, publisher: str) -> str:
    for service in ("neutron", "cinder", "glance", "heat", "keystone"):
        if f"_{service}_" in file:
            return service
    return "nova"


def load_samples() -> list[Sample]:
    out = []
    for path in sorted(DATA.glob("*.json")):
        doc = orjson.loads(path.read_bytes())
        if "oslo.message" in doc:
            doc = orjson.loads(doc["oslo.message"])
        out.append(Sample(path.name, doc["event_type"], doc.get("publisher_id") or "unknown",
                          doc.get("priority", "INFO"), doc["payload"],
                          _exchange(path.name, doc.get("publisher_id") or "")))
    return out


SAMPLES = load_samples()
#: Weights so the average envelope is ~2.3 KB: four versioned nova payloads (~4.6 KB) per six legacy ones (~1.3 KB).
_VERSIONED = [s for s in SAMPLES if s.file.startswith("nova_versioned")]
_LEGACY = [s for s in SAMPLES if not s.file.startswith("nova_versioned")]


def _fresh_payload(payload: Any, i: int) -> Any:
    if not isinstance(payload, dict):
        return payload
    payload = dict(payload)
    vm = f"{i:08d}-0000-4000-8000-{uuid.uuid4().hex[:12]}"
    if "instance_id" in payload:
        payload["instance_id"] = vm
    data = payload.get("nova_object.data")
    if isinstance(data, dict):
        payload["nova_object.data"] = {**data, "uuid": vm}
    return payload


def notification(sample: Sample, i: int, message_id: str | None = None, **extra: Any) -> dict[str, Any]:
    msg = {
        "message_id": message_id or str(uuid.uuid4()),
        "publisher_id": sample.publisher_id,
        "event_type": sample.event_type,
        "priority": sample.priority,
        "payload": _fresh_payload(sample.payload, i),
        "timestamp": "2026-11-22 02:02:49.708327",
        "_unique_id": uuid.uuid4().hex,
        **CONTEXT,
        **extra,
    }
    return msg


def envelope(msg: dict[str, Any]) -> bytes:
    return orjson.dumps({"oslo.version": "2.0", "oslo.message": orjson.dumps(msg).decode()})


def pick(i: int) -> Sample:
    if i % 10 in (0, 3, 5, 8):
        return _VERSIONED[(i // 10) % len(_VERSIONED)]
    return _LEGACY[i % len(_LEGACY)]


def envelope_bodies(n: int, prefix: str = "") -> list[tuple[str, bytes]]:
    """(message_id, body) pairs; message ids are `<prefix><uuid4>`."""
    out = []
    for i in range(n):
        mid = f"{prefix}{uuid.uuid4()}"
        out.append((mid, envelope(notification(pick(i), i, mid))))
    return out
