"""Bench (not collected by pytest): boot N fake servers on devcloud, time full refreshes, delete them.

.venv/bin/python tests/devcloud/bench_full_refresh.py [N]     (devcloud must be up: stackwatch devcloud up)
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings

from stackwatch import devcloud
from stackwatch.inventory import refresh
from stackwatch.store.db import open_store

warnings.simplefilter("ignore")


def main(n: int) -> None:
    info = devcloud.status().cloud
    if info is None:
        raise SystemExit("devcloud is not up: stackwatch devcloud up")
    conn = info.connect()
    image = conn.image.find_image("cirros-fake")
    tiny = conn.compute.find_flavor("m1.tiny")
    t0 = time.monotonic()
    conn.compute.create_server(
        name="bench", image_id=image.id, flavor_id=tiny.id, networks="none", min_count=n, max_count=n
    )
    while True:
        servers = list(conn.compute.servers(name="^bench"))
        active = sum(s.status == "ACTIVE" for s in servers)
        if any(s.status == "ERROR" for s in servers):
            raise SystemExit("a server went to ERROR")
        if active == n:
            break
        time.sleep(2)
    print(f"{n} servers ACTIVE after {time.monotonic() - t0:.1f} s")
    with tempfile.TemporaryDirectory() as d:
        store = open_store(f"sqlite:///{d}/bench.db")
        for i in range(3):
            r = refresh.full_refresh(store.engine, "devcloud", conn)
            print(
                f"full refresh {i + 1}: {r.seconds:.2f} s, {r.api_calls} API calls, "
                f"servers listed {r.kinds['servers'].listed}, changes {r.changes}"
            )
        store.dispose()
    t1 = time.monotonic()
    for s in servers:
        conn.compute.delete_server(s)
    while list(conn.compute.servers(name="^bench")):
        time.sleep(2)
    print(f"deleted in {time.monotonic() - t1:.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
