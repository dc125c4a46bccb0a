"""What a started devcloud leaves for clients and later runs: devcloud.json (DevCloud) and clouds.yaml, plus
the status records; one place so up, down, remove and status agree on the files and their format.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from stackwatch.devcloud.layout import CLOUD_NAME, REGION, Layout

if TYPE_CHECKING:
    from openstack.connection import Connection


@dataclass(frozen=True)
class DevCloud:
    """What a client needs: clouds.yaml + cloud name, the AMQP URL, endpoints, and where things are."""

    home: Path
    state: Path
    logs: Path
    clouds_yaml: Path
    cloud: str
    auth_url: str
    amqp_url: str
    region: str
    endpoints: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)  # optional services running (e.g. ["swift"])

    def env(self) -> dict[str, str]:
        return {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml), "OS_CLOUD": self.cloud}

    def connect(self) -> Connection:
        """An openstacksdk connection to this devcloud (clouds.yaml only; OS_* variables are ignored)."""
        import openstack.config
        import openstack.connection

        config = openstack.config.OpenStackConfig(config_files=[str(self.clouds_yaml)], load_envvars=False)
        return openstack.connection.Connection(config=config.get_one(cloud=self.cloud))

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    running: bool
    url: str | None
    http_status: int | None
    log: str

    @property
    def ok(self) -> bool:
        return self.running and (self.url is None or self.http_status is not None)


@dataclass(frozen=True)
class Status:
    services: tuple[ServiceStatus, ...]
    cloud: DevCloud | None

    @property
    def up(self) -> bool:
        return bool(self.services) and all(s.ok for s in self.services) and self.cloud is not None

    @property
    def any_running(self) -> bool:
        return any(s.running for s in self.services)


def info_file(layout: Layout) -> Path:
    return layout.state / "devcloud.json"


def load_info(layout: Layout) -> DevCloud | None:
    try:
        d = json.loads(info_file(layout).read_text())
    except (OSError, ValueError):
        return None
    for k in ("home", "state", "logs", "clouds_yaml"):
        d[k] = Path(d[k])
    return DevCloud(**d)


def save_info(layout: Layout, info: DevCloud) -> None:
    info_file(layout).write_text(json.dumps(info.to_json(), indent=2))


def write_clouds_yaml(layout: Layout, admin_password: str) -> None:
    doc = {
        "clouds": {
            CLOUD_NAME: {
                "auth": {
                    "auth_url": layout.auth_url,
                    "username": "admin",
                    "password": admin_password,
                    "project_name": "admin",
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
                "region_name": REGION,
                "interface": "public",
                "identity_api_version": 3,
            }
        }
    }
    fd = os.open(layout.clouds_yaml, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# written by `stackwatch devcloud up`; replaced (new password) by every clean start\n")
        yaml.safe_dump(doc, f, sort_keys=False)


def read_admin_password(layout: Layout) -> str:
    """The running devcloud's admin password, from its clouds.yaml (the only place it is kept)."""
    doc = yaml.safe_load(layout.clouds_yaml.read_text())
    return doc["clouds"][CLOUD_NAME]["auth"]["password"]
