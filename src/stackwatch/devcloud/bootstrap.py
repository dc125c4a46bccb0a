"""One-off database and key set-up run before the services start (db_sync, keystone bootstrap, cell mapping).

Kept apart from the start/stop orchestration in cloud.py: each step is a ``*-manage`` run with its own log.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from stackwatch.devcloud import postgres
from stackwatch.devcloud.errors import ServiceError
from stackwatch.devcloud.layout import HOST, REGION, Layout


def manage(
    layout: Layout, venv: str, argv: list[str], log_name: str, what: str, env: dict[str, str] | None = None
) -> None:
    log = layout.logs / log_name
    with log.open("ab") as out:
        out.write(f"$ {' '.join(argv)}\n".encode())
        out.flush()
        res = subprocess.run(
            [str(layout.bin(venv, argv[0])), *argv[1:]],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=layout.state,
        )
    if res.returncode != 0:
        raise ServiceError(what, f"`{' '.join(argv[:3])} ...` exited {res.returncode}", str(log))


def keystone_db(layout: Layout, admin_password: str) -> None:
    conf = ["--config-file", str(layout.etc / "keystone" / "keystone.conf")]
    km = ["keystone-manage", *conf]
    manage(layout, "keystone", km + ["db_sync"], "keystone-manage.log", "keystone")
    # what `keystone-manage fernet_setup` / `credential_setup` write (key 0 staged, key 1 primary), without
    # two more keystone-manage start-ups (about 4 s each on 2 busy cores)
    for repo in ("fernet-keys", "credential-keys"):
        _key_repository(layout.data / "keystone" / repo)
    url = layout.auth_url + "/"
    manage(
        layout,
        "keystone",
        km
        + [
            "bootstrap",
            "--bootstrap-admin-url",
            url,
            "--bootstrap-internal-url",
            url,
            "--bootstrap-public-url",
            url,
            "--bootstrap-region-id",
            REGION,
        ],
        "keystone-manage.log",
        "keystone",
        # by the environment, not argv: argv goes into the log, and a password starting with "-" (one in 64
        # of token_urlsafe's) was taken by argparse for an option ("expected one argument")
        env={"OS_BOOTSTRAP_PASSWORD": admin_password},
    )


def _key_repository(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    for index in ("0", "1"):
        fd = os.open(path / index, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.urlsafe_b64encode(os.urandom(32)))


def glance_db(layout: Layout) -> None:
    manage(
        layout,
        "glance",
        ["glance-manage", "--config-file", str(layout.etc / "glance" / "glance-api.conf"), "db_sync"],
        "glance-manage.log",
        "glance-api",
        env={"OS_GLANCE_CONFIG_DIR": str(layout.etc / "glance")},
    )


def neutron_db(layout: Layout) -> None:
    manage(
        layout,
        "neutron",
        [
            "neutron-db-manage",
            "--config-file",
            str(layout.etc / "neutron" / "neutron.conf"),
            "--config-file",
            str(layout.etc / "neutron" / "ml2_conf.ini"),
            "upgrade",
            "heads",
        ],
        "neutron-db-manage.log",
        "neutron-api",
    )


def nova_db(layout: Layout) -> None:
    manage(
        layout,
        "nova",
        ["placement-manage", "--config-file", str(layout.etc / "placement" / "placement.conf"), "db", "sync"],
        "placement-manage.log",
        "placement-api",
    )
    nm = ["nova-manage", "--config-file", str(layout.etc / "nova" / "nova.conf")]
    cell0 = f"postgresql+psycopg2://postgres@{HOST}:{layout.ports.pg}/nova_cell0"
    for args in (
        ["api_db", "sync"],
        ["cell_v2", "map_cell0", "--database_connection", cell0],
        ["cell_v2", "create_cell", "--name=cell1"],
        ["db", "sync"],
    ):
        manage(layout, "nova", nm + args, "nova-manage.log", "nova")


def compute_registered(layout: Layout) -> bool:
    """nova-compute wrote its compute node, placement has its provider, and the host is mapped to cell1.

    The scheduler's periodic discovery (every 5 s in nova.conf) was seen to take 30 s after the node
    appeared, so once the node and its provider exist this runs ``nova-manage cell_v2 discover_hosts``.
    """
    host = "compute1"

    def mapped() -> bool:
        sql = f"SELECT host FROM host_mappings WHERE host = '{host}'"
        return bool(postgres.psql(layout, sql, db="nova_api").strip())

    if mapped():
        return True
    node = postgres.psql(
        layout, f"SELECT count(*) FROM compute_nodes WHERE host = '{host}' AND deleted = 0", db="nova"
    ).strip()
    rp = postgres.psql(layout, "SELECT count(*) FROM resource_providers", db="placement").strip()
    if node in ("", "0") or rp in ("", "0"):
        return False
    manage(
        layout,
        "nova",
        ["nova-manage", "--config-file", str(layout.etc / "nova" / "nova.conf"), "cell_v2", "discover_hosts"],
        "nova-manage.log",
        "nova-compute",
    )
    return mapped()
