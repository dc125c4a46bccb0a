"""The fleece action on `instance.create.end` against devcloud's real Nova: `stackwatch serve` catches Nova's
notification from devcloud's RabbitMQ, the rule `policy: vm_create -> fleece: {target: instance}` fires, and
the report of the new instance (read through a real snapshot) is kept in the store.

Run with the devcloud lock (and, on a shared machine, STACKWATCH_DEVCLOUD_KEEP=1 so the session leaves
devcloud up): `flock /tmp/devcloud.lock .venv/bin/python -m pytest -m devcloud tests/rules/test_fleece_devcloud.py`.
"""

from __future__ import annotations

import shutil
import time
import uuid

import pytest
from sqlalchemy import select

from stackwatch.devcloud.layout import Layout
from stackwatch.fleece.reports import FleeceReports
from stackwatch.push.outbox import Outbox
from stackwatch.store.deliveries import RuleMatchRow
from tests.devcloud.conftest import devcloud_cloud, devcloud_conn  # noqa: F401 - session fixtures
from tests.devcloud.test_event_refresh import run_serve
from tests.devcloud.test_fleece_instance import IMAGE, put_disk, snapshots_of
from tests.fleece.conftest import built, tools  # noqa: F401 - session fixtures of the fleece images
from tests.fleece.test_images import check_report

pytestmark = [pytest.mark.devcloud, pytest.mark.timeout(900)]

# Nova publishes the legacy and the versioned notification of one creation (notification_format=both): the
# throttle makes one fleece of them
RULES = """
rules:
  - name: fleece-new-instances
    policy: vm_create
    throttle: {once_within: 10m, group_by: [vm_ref]}
    actions: [{fleece: {target: instance}}]
"""


def test_fleece_action_reports_the_new_instance(devcloud_cloud, devcloud_conn, built, tmp_path):  # noqa: F811
    directory, manifest = built
    image = manifest["images"][IMAGE]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rules.yaml").write_text(RULES)  # the default rules file: <data_dir>/rules.yaml
    conn = devcloud_conn
    with run_serve(devcloud_cloud, f"sqlite:///{tmp_path / 'sw.db'}", tmp_path, ["nova"]) as serve:
        created = conn.compute.create_server(
            name=f"rules-fleece-{uuid.uuid4().hex[:6]}", networks="none",
            image_id=conn.image.find_image("cirros-fake", ignore_missing=False).id,
            flavor_id=conn.compute.find_flavor("m1.tiny", ignore_missing=False).id)
        disk_dir = Layout(home=devcloud_cloud.home).nova_instances / created.id
        try:
            conn.compute.wait_for_server(created, status="ACTIVE", wait=120)
            # the disk the snapshot uploads; a fleece that ran before it was there found no OS and is retried
            put_disk(devcloud_cloud, created.id, directory / image["file"])
            box = Outbox(serve.engine)
            deadline = time.monotonic() + 600
            while True:
                runs = box.list(source="rule", owner="fleece-new-instances", limit=10)
                if runs and runs[0].state != "pending":
                    break
                assert time.monotonic() < deadline, "the fleece action did not finish"
                assert serve.proc.poll() is None, serve.log_path.read_text()[-4000:]
                time.sleep(1)
            time.sleep(3)  # the other format's notification, if Nova sent both, is handled by now
            (run,) = box.list(source="rule", owner="fleece-new-instances", limit=10)  # one fleece per instance
            assert run.state == "done", (run.last_error, serve.log_path.read_text()[-3000:])
            assert run.spec["target"] == f"instance:{created.id}"
            with serve.engine.connect() as db:
                (event_type,) = db.execute(select(RuleMatchRow.event_type).where(
                    RuleMatchRow.message_id == run.message_id)).one()
            assert event_type in ("instance.create.end", "compute.instance.create.end")
            reports = FleeceReports(serve.engine)
            kept = reports.list(vm_id=created.id)  # newest first; a try before the disk was there failed
            assert kept and kept[0].ok, [(r.ok, r.target) for r in kept]
            report = reports.get(kept[0].id)
            check_report(report, image, manifest["roots"][image["root"]])  # OS, hostname, users, packages
            assert snapshots_of(conn, created.id) == []  # the snapshot the fleece made is gone
        finally:
            conn.compute.delete_server(created.id, ignore_missing=True)
            conn.compute.wait_for_delete(created, wait=60)
            shutil.rmtree(disk_dir, ignore_errors=True)
