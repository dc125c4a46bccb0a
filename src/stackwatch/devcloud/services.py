"""The OpenStack processes devcloud runs, as data: venv, how started, where it answers and logs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stackwatch.devcloud.layout import Layout

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Service:
    """One process: ``uwsgi`` names an ini under etc/ (an API); ``script`` a file of this package that the
    venv's python runs (nova-compute with devcloud's driver, see novacompute.py); else ``console`` is a
    venv console script. ``swift_conf`` marks a Swift server: its console script takes the config as its
    one argument and, with ``--verbose``, logs to stderr (Swift has no log-file option, only syslog)."""

    name: str
    venv: str
    uwsgi: str | None = None
    console: str | None = None
    script: str | None = None
    config: tuple[str, ...] = ()
    port_attr: str | None = None
    health_path: str = "/"
    swift_conf: str | None = None

    def port(self, layout: Layout) -> int | None:
        return getattr(layout.ports, self.port_attr) if self.port_attr else None

    def url(self, layout: Layout) -> str | None:
        port = self.port(layout)
        return layout.url(port, self.health_path) if port else None

    def log(self, layout: Layout) -> str:
        return str(layout.logs / f"{self.name}.log")

    def argv(self, layout: Layout) -> list[str]:
        if self.uwsgi:
            return [str(layout.bin(self.venv, "uwsgi")), "--ini", str(layout.etc / self.uwsgi)]
        if self.swift_conf:
            return [
                str(layout.bin(self.venv, self.console or self.name)),
                str(layout.etc / self.swift_conf),
                "--verbose",
            ]
        if self.script:
            args = [str(layout.bin(self.venv, "python")), "-P", str(HERE / self.script)]
        else:
            args = [str(layout.bin(self.venv, self.console or self.name))]
        for c in self.config:
            args += ["--config-file", str(layout.etc / c)]
        return args + ["--log-file", str(layout.logs / f"{self.name}.log")]


KEYSTONE = Service("keystone", "keystone", uwsgi="keystone/uwsgi.ini", port_attr="keystone", health_path="/v3")
APIS: tuple[Service, ...] = (
    Service("glance-api", "glance", uwsgi="glance/uwsgi.ini", port_attr="glance"),
    Service("neutron-api", "neutron", uwsgi="neutron/uwsgi.ini", port_attr="neutron"),
    Service("placement-api", "nova", uwsgi="placement/uwsgi.ini", port_attr="placement"),
    Service("nova-api", "nova", uwsgi="nova/uwsgi-api.ini", port_attr="nova"),
)
NOVA_CONFIG = ("nova/nova.conf",)
NOVA_WORKERS: tuple[Service, ...] = (
    Service("nova-conductor", "nova", config=NOVA_CONFIG),
    Service("nova-scheduler", "nova", config=NOVA_CONFIG),
    Service("nova-compute", "nova", script="novacompute.py", config=NOVA_CONFIG),
)
ALL: tuple[Service, ...] = (KEYSTONE, *APIS, *NOVA_WORKERS)
# stop order: workers first, keystone last
STOP_ORDER: tuple[Service, ...] = (*reversed(NOVA_WORKERS), *reversed(APIS), KEYSTONE)

# Optional (`up --with swift`): storage servers first, the proxy last; stopped in the reverse order.
SWIFT: tuple[Service, ...] = tuple(
    Service(
        f"swift-{kind}",
        "swift",
        console=f"swift-{kind}-server",
        swift_conf=f"swift/{kind}-server.conf",
        port_attr=f"swift_{kind}",
        health_path="/healthcheck",
    )
    for kind in ("account", "container", "object", "proxy")
)
