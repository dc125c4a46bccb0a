"""Gnocchi seeded the real way: nova's `compute.instance.exists` and ceilometer-polling's `telemetry.polling`
notifications, sent with oslo.messaging's real Notifier, consumed by Ceilometer 27's notification agent whose
`gnocchi://` publisher writes the instance, its disk and its NIC resources. stackwatch's capture then stores
what the issue's arithmetic gives from the samples sent (a counter reset included)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from stackwatch.config.settings import ProviderConfig
from stackwatch.metrics.capture import Capture
from stackwatch.store.db import open_store
from tests.metrics.ceilometer_peer import CeilometerAgent
from tests.metrics.conftest import provider_doc, stored_rows, wait_processed
from tests.metrics.expected import all_rollups, compare
from tests.metrics.seed import Vm, aligned_now

oslo_messaging = pytest.importorskip("oslo_messaging")
CHECKED = {"cpu_util", "memory_usage", "net_in_rate", "disk_read_rate"}


def _notifier(url: str, exchange: str, publisher: str):  # noqa: ANN202
    from oslo_config import cfg

    conf = cfg.ConfigOpts()
    conf([], project="stackwatch-test")
    oslo_messaging.set_transport_defaults(exchange)
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    return oslo_messaging.Notifier(transport, publisher_id=publisher, driver="messagingv2", topics=["notifications"])


def _send_exists(agent: CeilometerAgent, vm: Vm) -> None:
    """nova's hourly audit notification: Ceilometer creates the instance resource from it, with the only
    `vcpus` point (polling sends none), in the 5-minute bucket in progress."""
    now = datetime.now(UTC)
    nova = {"tenant_id": vm.project, "user_id": "u" * 32, "instance_id": vm.id, "display_name": vm.name,
            "host": vm.host, "node": vm.host, "availability_zone": "nova", "instance_type": "m1.small",
            "instance_flavor_id": "2", "instance_type_id": 2, "memory_mb": 2048, "vcpus": vm.vcpus, "root_gb": 20,
            "ephemeral_gb": 0, "disk_gb": 20, "state": "active", "state_description": "", "metadata": {},
            "image_meta": {"base_image_ref": "0e3d9a5c-2b1f-4c6e-8a7d-9f0e1d2c3b4a"},
            "launched_at": (now - timedelta(days=1)).isoformat(), "created_at": (now - timedelta(days=1)).isoformat(),
            "deleted_at": "", "terminated_at": "", "audit_period_beginning": (now - timedelta(hours=1)).isoformat(),
            "audit_period_ending": now.isoformat()}
    _notifier(agent.url, "nova", f"compute.{vm.host}").info({}, "compute.instance.exists", nova)


def _send_polling(agent: CeilometerAgent, vm: Vm, k: int, stamps: list[datetime], reset_at: int | None) -> None:
    """What a libvirt compute agent's polling puts on the bus for `vm`; records the samples in vm.posted,
    keyed by Gnocchi's 5-minute bucket (the samples are 30 s into theirs)."""
    port = str(uuid.uuid4())
    nic = f"instance-{k + 1:08x}-{vm.id}-tap{port[:11]}"
    disk = f"{vm.id}-vda"
    vm.nics[nic], vm.disks[disk] = "tap" + port[:11], "vda"
    meta = {"display_name": vm.name, "host": vm.host, "instance_host": vm.host, "instance_id": vm.id,
            "flavor": {"id": "2", "name": "m1.small", "vcpus": vm.vcpus, "ram": 2048, "disk": 20},
            "image_ref": "0e3d9a5c-2b1f-4c6e-8a7d-9f0e1d2c3b4a", "status": "active", "state": "running"}
    samples = []
    cpu = 5e9 * (k + 1)
    for n, bucket in enumerate(stamps):
        at = bucket + timedelta(seconds=30)
        cpu = (cpu + 300e9 * vm.vcpus * (0.2 + 0.1 * k + 0.02 * n)) if reset_at is None or n != reset_at else 7e9
        series = [("cpu", "cumulative", "ns", cpu, vm.id, meta),
                  ("memory.usage", "gauge", "MB", 600.0 + 10 * k + n, vm.id, meta),
                  ("network.incoming.bytes", "cumulative", "B", 4096.0 * 300 * n + 100 * k * n * n, nic,
                   dict(meta, vnic_name="tap" + port[:11], name="tap" + port[:11], mac="fa:16:3e:aa:bb:cc")),
                  ("disk.device.read.bytes", "cumulative", "B", 1e6 + 2048.0 * n * (n + k), disk,
                   dict(meta, disk_name="vda"))]
        for name, kind, unit, volume, rid, md in series:
            samples.append({"counter_name": name, "counter_type": kind, "counter_unit": unit,
                            "counter_volume": volume, "user_id": "u" * 32, "project_id": vm.project,
                            "resource_id": rid, "timestamp": at.isoformat(), "resource_metadata": md,
                            "source": "openstack", "message_id": str(uuid.uuid4()), "monotonic_time": None})
            vm.posted.setdefault((rid, name), []).append((bucket, volume))
    _notifier(agent.url, "ceilometer", "ceilometer.polling").sample({}, "telemetry.polling", {"samples": samples})


def test_capture_of_what_ceilometer_published(gnocchi_bare, tmp_path, db_url):
    agent = CeilometerAgent(tmp_path / "ceilometer", gnocchi_bare)
    try:
        agent.start()
        now = aligned_now()
        stamps = [now - timedelta(minutes=5 * (12 - n)) for n in range(12)]
        vms = [Vm(str(uuid.uuid4()), f"ceilo-{k}", "compute-3", "c0ffee00c0ffee00c0ffee00c0ffee00", vcpus=1 + k)
               for k in range(2)]
        for vm in vms:
            _send_exists(agent, vm)
        # the instances exist before their first polled samples, as in a cloud (nova's audit comes first);
        # samples racing the resource's creation may be dropped by the publisher
        _until(lambda: len(gnocchi_bare.session().post(gnocchi_bare.url + "/v1/search/resource/instance",
                                                       json={}).json()) == 2, 120)
        for k, vm in enumerate(vms):
            _send_polling(agent, vm, k, stamps, reset_at=7 if k == 0 else None)
        # vm.posted only holds what this test sent through polling: wait until Gnocchi has all of it
        deadline = time.monotonic() + 120
        while True:
            try:
                wait_processed(gnocchi_bare, vms, timeout=5)
                break
            except Exception:  # noqa: BLE001 - resources not created yet: the agent is still publishing
                if time.monotonic() > deadline:
                    raise
        store = open_store(db_url)
        try:
            report = Capture(ProviderConfig.model_validate(provider_doc(gnocchi_bare)), store.engine).cycle()
            assert report.instances == 2 and report.no_vcpus == 0
            stored = {k: v for k, v in stored_rows(store.engine).items() if k[2] in CHECKED}
        finally:
            store.dispose()
    finally:
        agent.stop()
    expected = {k: v for k, v in all_rollups(vms, report.until - timedelta(hours=24), report.until).items()
                if k[2] in CHECKED}
    assert {k[2] for k in expected} == CHECKED
    assert compare(stored, expected) == []


def _until(check, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        time.sleep(0.3)
