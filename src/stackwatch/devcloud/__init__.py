"""devcloud: a disposable real OpenStack on 127.0.0.1 (Keystone, Glance, Neutron API, Placement, Nova fake).

May import: nothing else of stackwatch (tests and a newcomer's first try use it, never the reverse).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackwatch.devcloud.errors import DevcloudError, InstallError, PrerequisiteError, ServiceError
from stackwatch.devcloud.layout import Layout, Ports

if TYPE_CHECKING:
    from stackwatch.devcloud.cloud import (
        DevCloud,
        ServiceStatus,
        Status,
        down,
        install,
        remove,
        start_service,
        status,
        stop_service,
        up,
    )

_CLOUD_API = {
    "DevCloud", "ServiceStatus", "Status", "down", "install", "remove", "start_service", "status", "stop_service", "up",
}


def __getattr__(name: str) -> Any:
    # lazy: `python -m stackwatch.devcloud.installer` must run on a bare Python (no yaml / keystoneauth1)
    if name in _CLOUD_API:
        from stackwatch.devcloud import cloud

        return getattr(cloud, name)
    raise AttributeError(name)


__all__ = [
    "DevCloud",
    "DevcloudError",
    "InstallError",
    "Layout",
    "Ports",
    "PrerequisiteError",
    "ServiceError",
    "ServiceStatus",
    "Status",
    "down",
    "install",
    "remove",
    "start_service",
    "status",
    "stop_service",
    "up",
]
