"""What is captured: one row per metric stackwatch stores, with the Gnocchi metric it comes from.

A table, not code: the capture reads `SOURCES` to know which Gnocchi metrics to ask for on which resource
type, and how each becomes a stored value (a gauge as it is; a cumulative counter as a rate; `cpu` as a
utilisation). `HOST_SUM` says how instances add up to a host or project: rates and sizes are summed,
utilisation is averaged (a host with VMs at 20 % and 30 % shows 25 %, as Gnocchi's own aggregate mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["gauge", "rate", "cpu_util"]


@dataclass(frozen=True)
class Source:
    gnocchi: str  # Ceilometer's meter name, the Gnocchi metric name
    resource_type: str  # instance, instance_disk, instance_network_interface
    stored: str | None  # the stored metric; None: read only to compute another (vcpus for cpu_util)
    kind: Kind
    unit: str


SOURCES: tuple[Source, ...] = (
    Source("cpu", "instance", "cpu_util", "cpu_util", "%"),
    Source("vcpus", "instance", "vcpus", "gauge", "vCPU"),
    Source("memory", "instance", "memory", "gauge", "MB"),
    Source("memory.usage", "instance", "memory_usage", "gauge", "MB"),
    Source("disk.root.size", "instance", "disk_root_size", "gauge", "GB"),
    Source("disk.device.read.bytes", "instance_disk", "disk_read_rate", "rate", "B/s"),
    Source("disk.device.write.bytes", "instance_disk", "disk_write_rate", "rate", "B/s"),
    Source("network.incoming.bytes", "instance_network_interface", "net_in_rate", "rate", "B/s"),
    Source("network.outgoing.bytes", "instance_network_interface", "net_out_rate", "rate", "B/s"),
)
RESOURCE_TYPES = ("instance", "instance_disk", "instance_network_interface")
UNITS = {s.stored: s.unit for s in SOURCES if s.stored}
#: stored metrics that add up over an instance's devices (and over a host's instances); the others replace
SUMMED = frozenset(s.stored for s in SOURCES if s.kind == "rate")
#: the one metric a host or project averages over its instances instead of summing
HOST_MEAN = frozenset({"cpu_util"})

GRANULARITIES = {"5m": 300, "hourly": 3600, "daily": 86400}
STEP = 300
SCOPES = ("vm", "host", "project")


def sources_for(resource_type: str) -> tuple[Source, ...]:
    return tuple(s for s in SOURCES if s.resource_type == resource_type)
