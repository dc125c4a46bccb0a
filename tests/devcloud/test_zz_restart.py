"""down stops every process by PID and frees every port; up then starts a clean, working devcloud.

Named to run after the other devcloud tests (it restarts the session's cloud).
"""

from __future__ import annotations

import pytest

from stackwatch import devcloud
from stackwatch.devcloud import proc
from stackwatch.devcloud.layout import Layout

pytestmark = [pytest.mark.devcloud, pytest.mark.timeout(1200)]


def test_down_frees_everything_then_up_starts_clean(devcloud_cloud):
    before = devcloud.status()
    assert before.up
    pids = [s.pid for s in before.services]
    stopped = devcloud.down()
    assert len(stopped) >= 10  # 8 OpenStack processes, rabbitmq (+ its epmd), postgresql
    assert not any(proc.alive(p) for p in pids)
    ports = Layout().ports
    for name, port in vars(ports).items():
        assert not proc.port_open(port), f"{name} port {port} still open"
    assert not devcloud.status().any_running
    assert devcloud.down() == []

    info = devcloud.up()
    after = devcloud.status()
    assert after.up
    assert info.timings["ready"] > 0
    conn = info.connect()
    try:
        assert [h.name for h in conn.compute.hypervisors()] == ["compute1"]
        assert list(conn.compute.servers()) == []  # clean start: nothing from before
    finally:
        conn.close()
