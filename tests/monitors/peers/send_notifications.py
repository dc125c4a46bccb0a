"""Publish Nova-style legacy notifications with oslo.messaging's own Notifier (run with the Ceilometer venv).

usage: send_notifications.py TOPIC COUNT [EVENT_TYPE]. Adapted from the shared telemetry recipe's
scripts/send_notification.py: a RequestContext, not a dict (oslo.messaging replaces a dict ctxt with {}).
Instance i gets id UUID(int=i+1) and tenant 7d1b...; the test checks the stored refs against them.
"""

import datetime
import sys
import uuid

import oslo_messaging
from oslo_config import cfg
from oslo_context.context import RequestContext

TOPIC, COUNT = sys.argv[1], int(sys.argv[2])
EVENT_TYPE = sys.argv[3] if len(sys.argv) > 3 else "compute.instance.create.end"
TENANT = "7d1b0d1b6a7e4b1d9d3e1c2f0a0b0c0d"
USER = "1f0e2d3c4b5a69788796a5b4c3d2e1f0"

conf = cfg.ConfigOpts()
conf([], project="sender")
oslo_messaging.set_transport_defaults(control_exchange="nova")
transport = oslo_messaging.get_notification_transport(conf, url="rabbit://guest:guest@127.0.0.1:5672/")
notifier = oslo_messaging.Notifier(transport, publisher_id="compute.host1", driver="messagingv2", topics=[TOPIC])
for i in range(COUNT):
    now = datetime.datetime.utcnow()
    payload = {
        "tenant_id": TENANT, "user_id": USER, "instance_id": str(uuid.UUID(int=i + 1)), "instance_type_id": 1,
        "instance_type": "m1.tiny", "display_name": f"vm-{i}", "host": "host1", "hostname": f"vm-{i}",
        "state": "active", "old_state": "building", "state_description": "", "memory_mb": 512, "disk_gb": 1,
        "root_gb": 1, "ephemeral_gb": 0, "vcpus": 1, "architecture": "x86_64", "os_type": "linux",
        "launched_at": now.strftime("%Y-%m-%dT%H:%M:%S.%f"), "created_at": now.strftime("%Y-%m-%d %H:%M:%S+00:00"),
        "deleted_at": "", "availability_zone": "nova", "image_ref_url": "http://glance/images/abc",
        "image_meta": {"base_image_ref": "abc"}, "metadata": {}, "fixed_ips": [], "message": "Success",
    }
    notifier.info(RequestContext(user_id=USER, project_id=TENANT), EVENT_TYPE, payload)
print("sent", COUNT, flush=True)
transport.cleanup()
