"""devcloud's compute driver: nova's FakeDriver whose `snapshot()` uploads a real disk, as libvirt's does.

Why: nova's FakeDriver "snapshots" without uploading anything, so the snapshot image stays empty and the
`instance:UUID` fleece flow (snapshot -> ranged reads -> delete) could not run against a real cloud.
This driver uploads `<instances_path>/<uuid>/disk` (libvirt's place for an instance's disk; a test puts
a built fleece image there) through nova's own image API, with the metadata libvirt's driver sends,
so Glance holds a real image behind a real Nova snapshot. Without that file it does what FakeDriver does.
The file is uploaded as it is (qcow2 or raw, from its magic); libvirt would first flatten a disk that
has a backing file, this driver does not, so give it a standalone image.

Runs inside nova-compute, in devcloud's nova venv, where stackwatch is not installed: it imports only
nova and the standard library. `novacompute.py` loads it as `nova.virt.stackwatch_snapshot`, because
nova resolves `compute_driver` only as `nova.virt.<value>` (nova/virt/driver.py load_compute_driver).
"""

from __future__ import annotations

import os

import nova.conf
from nova import exception
from nova.compute import task_states
from nova.image import glance
from nova.virt import fake
from oslo_log import log as logging

CONF = nova.conf.CONF
LOG = logging.getLogger(__name__)
QCOW2_MAGIC = b"QFI\xfb"


def instance_disk(uuid: str) -> str:
    return os.path.join(CONF.instances_path, uuid, "disk")


def disk_format(path: str) -> str:
    with open(path, "rb") as f:
        return "qcow2" if f.read(4) == QCOW2_MAGIC else "raw"


class SnapshotFakeDriver(fake.FakeDriver):
    """FakeDriver with a snapshot that carries the instance's disk file into Glance."""

    def snapshot(self, context, instance, image_id, update_task_state) -> None:
        if instance.uuid not in self.instances:
            raise exception.InstanceNotRunning(instance_id=instance.uuid)
        path = instance_disk(instance.uuid)
        if not os.path.isfile(path):
            LOG.info("no disk file %s: snapshot without image data, as FakeDriver", path, instance=instance)
            super().snapshot(context, instance, image_id, update_task_state)
            return
        image_api = glance.API()
        snapshot = image_api.get(context, image_id)
        metadata = {
            "status": "active",
            "name": snapshot["name"],
            "disk_format": disk_format(path),
            "container_format": "bare",
            "properties": {
                "image_location": "snapshot",
                "image_state": "available",
                "owner_id": instance.project_id,
            },
        }
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING, expected_state=task_states.IMAGE_PENDING_UPLOAD)
        LOG.info("uploading %s (%s) as snapshot %s", path, metadata["disk_format"], image_id, instance=instance)
        with open(path, "rb") as data:
            image_api.update(context, image_id, metadata, data, purge_props=False)
