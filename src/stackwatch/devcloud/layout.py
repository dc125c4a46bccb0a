"""Where devcloud keeps things (install cache, state, logs) and which loopback ports it binds."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from stackwatch.devcloud import spec

HOST = "127.0.0.1"
CLOUD_NAME = "devcloud"
REGION = "RegionOne"


@dataclass(frozen=True)
class Ports:
    """Loopback ports. RabbitMQ and PostgreSQL are private instances, away from the system 5672 / 5432."""

    keystone: int = 5000
    glance: int = 9292
    neutron: int = 9696
    placement: int = 8778
    nova: int = 8774
    rabbit: int = 5682
    rabbit_dist: int = 25682
    epmd: int = 4370
    pg: int = 5442
    # optional Swift (`up --with swift`): checked and bound only when Swift is asked for; away from the
    # 8080 / 6200-6202 defaults that other software on a developer machine tends to hold
    swift_proxy: int = 18080
    swift_object: int = 16200
    swift_container: int = 16201
    swift_account: int = 16202

    def core(self) -> dict[str, int]:
        """The ports every devcloud binds (the optional services' ports left out)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("swift_")}

    def swift(self) -> dict[str, int]:
        return {k: v for k, v in vars(self).items() if k.startswith("swift_")}


def default_home() -> Path:
    env = os.environ.get("STACKWATCH_DEVCLOUD_HOME")
    return Path(env) if env else Path.home() / ".cache" / "stackwatch" / "devcloud"


@dataclass(frozen=True)
class Layout:
    """All paths under one home: ``venvs/<stamp>/<name>`` (kept across runs), ``state/`` (wiped by ``up``)."""

    home: Path = field(default_factory=default_home)
    ports: Ports = field(default_factory=Ports)

    @property
    def venvs(self) -> Path:
        return self.home / "venvs" / spec.stamp()

    @property
    def stamp_file(self) -> Path:
        return self.venvs / ".installed"

    @property
    def wheels(self) -> Path:
        return self.home / "wheels"

    @property
    def install_logs(self) -> Path:
        return self.home / "install-logs"

    @property
    def state(self) -> Path:
        return self.home / "state"

    @property
    def etc(self) -> Path:
        return self.state / "etc"

    @property
    def logs(self) -> Path:
        return self.state / "logs"

    @property
    def run(self) -> Path:
        return self.state / "run"

    @property
    def data(self) -> Path:
        return self.state / "data"

    @property
    def nova_instances(self) -> Path:
        """nova's instances_path: devcloud's compute driver snapshots ``<uuid>/disk`` from here (novadriver.py)."""
        return self.data / "nova" / "instances"

    @property
    def rabbit(self) -> Path:
        return self.state / "rabbit"

    @property
    def clouds_yaml(self) -> Path:
        return self.state / "clouds.yaml"

    @property
    def secrets_file(self) -> Path:
        return self.state / "secrets.json"

    def venv(self, name: str) -> Path:
        """A service group's venv: core ones under the core stamp, optional ones (Swift) beside it under
        their own stamp, so adding an optional service never invalidates the core install."""
        if name in spec.OPTIONAL_VENVS:
            return self.home / "venvs" / f"{name}-{spec.optional_stamp(name)}"
        return self.venvs / name

    @property
    def swift_etc(self) -> Path:
        """swift_dir: swift.conf, the rings and the four server configs."""
        return self.etc / "swift"

    @property
    def swift_devices(self) -> Path:
        """Swift's ``devices`` root; the single device ``d1`` is a plain directory in it (mount_check off)."""
        return self.data / "swift"

    def bin(self, venv: str, exe: str) -> Path:
        return self.venv(venv) / "bin" / exe

    def url(self, port: int, path: str = "") -> str:
        return f"http://{HOST}:{port}{path}"

    @property
    def amqp_url(self) -> str:
        return f"amqp://guest:guest@{HOST}:{self.ports.rabbit}/"

    @property
    def auth_url(self) -> str:
        return self.url(self.ports.keystone, "/v3")
