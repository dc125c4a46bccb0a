"""The inventory kinds, as data: which openstacksdk call lists each kind and which fields we keep.

A field is ``name: path`` where the path reads the SDK resource (``flavor.original_name`` reads into a
nested object). ``service`` is the catalog service type: a cloud without it skips the kind with a note.
``page_size`` is passed as ``limit`` where the API paginates (openstacksdk follows the next links).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Derive = Callable[[dict[str, Any], Mapping[str, Any]], None]


@dataclass(frozen=True)
class Kind:
    name: str
    service: str
    proxy: str
    method: str
    fields: Mapping[str, str]
    params: Mapping[str, Any] = field(default_factory=dict)
    page_size: int | None = 500
    uid: str = "id"
    status: str | None = "status"
    project: str | None = "project_id"
    host: str | None = None
    aliases: tuple[str, ...] = ()
    #: proxy method fetching one object by uid (targeted refresh); None: the kind is only listed
    get: str | None = None
    #: fills computed fields from the raw resource and the refresh context (e.g. flavor name -> id)
    derive: Derive | None = None


def _server_flavor_id(data: dict[str, Any], ctx: Mapping[str, Any]) -> None:
    # compute >= 2.47 embeds the flavor without its id (openstacksdk then reports the name as ``flavor.id``):
    # resolve it by name from the flavors listed first
    name = data.get("flavor_name")
    if name and data.get("flavor_id") in (None, name):
        data["flavor_id"] = ctx.get("flavor_ids", {}).get(name)


_TIMES = {"created_at": "created_at", "updated_at": "updated_at"}

KINDS: tuple[Kind, ...] = (
    Kind(
        "flavors",
        "compute",
        "compute",
        "flavors",
        {
            "id": "id",
            "name": "name",
            "vcpus": "vcpus",
            "ram": "ram",
            "disk": "disk",
            "swap": "swap",
            "ephemeral": "ephemeral",
            "is_public": "is_public",
            "is_disabled": "is_disabled",
            "description": "description",
        },
        params={"details": True},
        status=None,
        project=None,
        get="get_flavor",
        aliases=("flavor",),
    ),
    Kind(
        "servers",
        "compute",
        "compute",
        "servers",
        {
            "id": "id",
            "name": "name",
            "status": "status",
            "power_state": "power_state",
            "task_state": "task_state",
            "vm_state": "vm_state",
            "host": "compute_host",
            "hypervisor_hostname": "hypervisor_hostname",
            "flavor_id": "flavor.id",
            "flavor_name": "flavor.original_name",
            "image_id": "image.id",
            "project_id": "project_id",
            "user_id": "user_id",
            "availability_zone": "availability_zone",
            "key_name": "key_name",
            "addresses": "addresses",
            "metadata": "metadata",
            "launched_at": "launched_at",
            "terminated_at": "terminated_at",
            **_TIMES,
        },
        params={"details": True, "all_projects": True},
        host="host",
        aliases=("vm", "vms", "server"),
        derive=_server_flavor_id,
        get="get_server",
    ),
    Kind(
        "hypervisors",
        "compute",
        "compute",
        "hypervisors",
        {
            "id": "id",
            "name": "name",
            "status": "status",
            "state": "state",
            "hypervisor_type": "hypervisor_type",
            "host_ip": "host_ip",
            "host": "service_details.host",
        },
        params={"details": True},
        project=None,
        host="host",
        aliases=("host", "hosts"),
        get="get_hypervisor",
    ),
    Kind(
        "aggregates",
        "compute",
        "compute",
        "aggregates",
        {
            "id": "id",
            "name": "name",
            "availability_zone": "availability_zone",
            "hosts": "hosts",
            "metadata": "metadata",
            **_TIMES,
        },
        page_size=None,
        status=None,
        project=None,
        get="get_aggregate",
        aliases=("aggregate",),
    ),
    Kind(
        "keypairs",
        "compute",
        "compute",
        "keypairs",
        {
            "name": "name",
            "type": "type",
            "fingerprint": "fingerprint",
            "user_id": "user_id",
        },
        uid="name",
        status=None,
        project=None,
        get="get_keypair",
        aliases=("keypair",),
    ),
    Kind(
        "availability_zones",
        "compute",
        "compute",
        "availability_zones",
        {
            "name": "name",
            "state": "state.available",
            "hosts": "hosts",
        },
        params={"details": False},
        page_size=None,
        uid="name",
        status="state",
        project=None,
        aliases=("availability_zone",),
    ),
    Kind(
        "images",
        "image",
        "image",
        "images",
        {
            "id": "id",
            "name": "name",
            "status": "status",
            "visibility": "visibility",
            "disk_format": "disk_format",
            "container_format": "container_format",
            "size": "size",
            "checksum": "checksum",
            "project_id": "owner",
            "min_disk": "min_disk",
            "min_ram": "min_ram",
            "is_protected": "is_protected",
            **_TIMES,
        },
        page_size=200,
        get="get_image",
        aliases=("image",),
    ),
    Kind(
        "projects",
        "identity",
        "identity",
        "projects",
        {
            "id": "id",
            "name": "name",
            "domain_id": "domain_id",
            "is_enabled": "is_enabled",
            "parent_id": "parent_id",
            "description": "description",
        },
        page_size=None,
        status=None,
        project=None,
        get="get_project",
        aliases=("project",),
    ),
    Kind(
        "networks",
        "network",
        "network",
        "networks",
        {
            "id": "id",
            "name": "name",
            "status": "status",
            "project_id": "project_id",
            "is_shared": "is_shared",
            "is_router_external": "is_router_external",
            "is_admin_state_up": "is_admin_state_up",
            "mtu": "mtu",
            "subnet_ids": "subnet_ids",
            "provider_network_type": "provider_network_type",
            **_TIMES,
        },
        get="get_network",
        aliases=("network",),
    ),
    Kind(
        "subnets",
        "network",
        "network",
        "subnets",
        {
            "id": "id",
            "name": "name",
            "network_id": "network_id",
            "cidr": "cidr",
            "ip_version": "ip_version",
            "gateway_ip": "gateway_ip",
            "is_dhcp_enabled": "is_dhcp_enabled",
            "allocation_pools": "allocation_pools",
            "project_id": "project_id",
            **_TIMES,
        },
        status=None,
        get="get_subnet",
        aliases=("subnet",),
    ),
    Kind(
        "ports",
        "network",
        "network",
        "ports",
        {
            "id": "id",
            "name": "name",
            "status": "status",
            "network_id": "network_id",
            "device_id": "device_id",
            "device_owner": "device_owner",
            "mac_address": "mac_address",
            "fixed_ips": "fixed_ips",
            "host": "binding_host_id",
            "security_group_ids": "security_group_ids",
            "project_id": "project_id",
            "is_admin_state_up": "is_admin_state_up",
            **_TIMES,
        },
        host="host",
        get="get_port",
        aliases=("port",),
    ),
    Kind(
        "routers",
        "network",
        "network",
        "routers",
        {
            "id": "id",
            "name": "name",
            "status": "status",
            "project_id": "project_id",
            "external_gateway_info": "external_gateway_info",
            "is_admin_state_up": "is_admin_state_up",
            "routes": "routes",
            **_TIMES,
        },
        get="get_router",
        aliases=("router",),
    ),
    Kind(
        "floating_ips",
        "network",
        "network",
        "ips",
        {
            "id": "id",
            "floating_ip_address": "floating_ip_address",
            "fixed_ip_address": "fixed_ip_address",
            "status": "status",
            "port_id": "port_id",
            "router_id": "router_id",
            "floating_network_id": "floating_network_id",
            "project_id": "project_id",
            **_TIMES,
        },
        aliases=("fips", "floating_ip"),
        get="get_ip",
    ),
    Kind(
        "security_groups",
        "network",
        "network",
        "security_groups",
        {
            "id": "id",
            "name": "name",
            "description": "description",
            "project_id": "project_id",
            "stateful": "stateful",
            **_TIMES,
        },
        status=None,
        get="get_security_group",
        aliases=("security_group",),
    ),
    Kind(
        "security_group_rules",
        "network",
        "network",
        "security_group_rules",
        {
            "id": "id",
            "security_group_id": "security_group_id",
            "direction": "direction",
            "ether_type": "ether_type",
            "protocol": "protocol",
            "port_range_min": "port_range_min",
            "port_range_max": "port_range_max",
            "remote_ip_prefix": "remote_ip_prefix",
            "remote_group_id": "remote_group_id",
            "project_id": "project_id",
            **_TIMES,
        },
        status=None,
        get="get_security_group_rule",
        aliases=("security_group_rule",),
    ),
    Kind(
        "volumes",
        "block-storage",
        "block_storage",
        "volumes",
        {
            "id": "id",
            "name": "name",
            "status": "status",
            "size": "size",
            "volume_type": "volume_type",
            "availability_zone": "availability_zone",
            "is_bootable": "is_bootable",
            "attachments": "attachments",
            "snapshot_id": "snapshot_id",
            "host": "host",
            "project_id": "project_id",
            **_TIMES,
        },
        params={"details": True, "all_projects": True},
        host="host",
        get="get_volume",
        aliases=("volume",),
    ),
    Kind(
        "volume_snapshots",
        "block-storage",
        "block_storage",
        "snapshots",
        {
            "id": "id",
            "name": "name",
            "status": "status",
            "size": "size",
            "volume_id": "volume_id",
            "project_id": "project_id",
            **_TIMES,
        },
        params={"details": True, "all_projects": True},
        aliases=("snapshots", "snapshot"),
        get="get_snapshot",
    ),
    Kind(
        "stacks",
        "orchestration",
        "orchestration",
        "stacks",
        {
            "id": "id",
            "name": "name",
            "status": "status",
            "status_reason": "status_reason",
            "project_id": "project_id",
            **_TIMES,
        },
        get="get_stack",
        aliases=("stack",),
    ),
)

BY_NAME: dict[str, Kind] = {k.name: k for k in KINDS}
for _k in KINDS:
    for _alias in _k.aliases:
        BY_NAME.setdefault(_alias, _k)


def kind_named(name: str) -> Kind:
    try:
        return BY_NAME[name.replace("-", "_")]
    except KeyError:
        raise KeyError(f"unknown inventory kind {name!r} (kinds: {', '.join(k.name for k in KINDS)})") from None
