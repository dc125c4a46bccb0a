"""OpenStack sources: Glance image data and Swift objects by URL through the SDK's authenticated session,
and the instance flow (snapshot -> fleece -> delete the snapshot, always)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

from stackwatch.fleece.errors import SourceError


def connect(cloud: str | None):
    import openstack

    try:
        return openstack.connect(cloud=cloud) if cloud else openstack.connect()
    except Exception as e:  # noqa: BLE001 - openstacksdk config errors have no common base
        raise SourceError(f"cannot connect to OpenStack cloud {cloud or '(default)'}: {e}") from e


class SessionAdapter:
    """keystoneauth's Session.get with exceptions off, so HTTPRangeReader sees 400/416 as statuses, and
    requests' `allow_redirects` mapped to keystoneauth's `redirect` (which otherwise re-sends X-Auth-Token
    to any Location: http.get_on_origin follows redirects itself)."""

    def __init__(self, session) -> None:
        self._s = session

    def get(self, url: str, allow_redirects: bool = True, **kw):
        return self._s.get(url, raise_exc=False, log=False, redirect=None if allow_redirects else False, **kw)


def glance_url(conn, image_id: str) -> str:
    base = conn.image.get_endpoint().rstrip("/")
    if not base.endswith("/v2"):
        base += "/v2"
    return f"{base}/images/{image_id}/file"


def swift_url(conn, container: str, obj: str) -> str:
    """Object URL, percent-encoded: Swift names may hold ' ', '#', '?' or '%', which unquoted would cut the
    path short or read another object ('a b#1.qcow2' read 'a b'). The object keeps its '/' separators."""
    base = conn.object_store.get_endpoint().rstrip("/")
    return f"{base}/{quote(container, safe='')}/{quote(obj, safe='/')}"


@contextlib.contextmanager
def instance_snapshot(
    conn, server_id: str, timeout: float = 600.0, no_data_grace: float = 15.0, poll: float = 1.0
) -> Iterator[str]:
    """Snapshot a server and yield the image id; the image is deleted on exit, also on error or Ctrl-C.

    A snapshot whose image is still `queued` (no data) `no_data_grace` seconds after Nova finished with
    the server (its task_state back to none) will never get data: some compute drivers (Nova's fake one)
    upload none. That is an error at once, not after `timeout`.
    """
    name = f"stackwatch-fleece-{server_id[:8]}-{uuid.uuid4().hex[:8]}"
    image = None
    try:
        image = conn.compute.create_server_image(server_id, name=name, wait=False)
        deadline = time.monotonic() + timeout
        settled: float | None = None  # when Nova was first seen done with the server while no data had come
        while True:
            image = conn.image.get_image(image.id)
            if image.status == "active":
                break
            if image.status in ("killed", "deleted", "deactivated") or time.monotonic() > deadline:
                raise SourceError(f"snapshot {image.id} of server {server_id} ended {image.status}")
            if image.status == "queued" and conn.compute.get_server(server_id).task_state is None:
                settled = settled or time.monotonic()
                if time.monotonic() - settled > no_data_grace:
                    raise SourceError(
                        f"snapshot {image.id} of server {server_id}: Nova finished but uploaded no image data "
                        "(its compute driver does not upload snapshots?); try --via hypervisor"
                    )
            time.sleep(poll)
        yield image.id
    finally:
        if image is not None:
            with contextlib.suppress(Exception):
                conn.image.delete_image(image.id, ignore_missing=True)


INSTANCES_PATH_ENV = "STACKWATCH_NOVA_INSTANCES_PATH"
NOVA_INSTANCES_PATH = "/var/lib/nova/instances"  # nova.conf [DEFAULT] instances_path, as shipped


def instances_dir(explicit: str | None = None) -> str:
    """nova.conf instances_path on the hypervisors: the given one, $STACKWATCH_NOVA_INSTANCES_PATH, else Nova's."""
    base = (explicit or os.environ.get(INSTANCES_PATH_ENV) or NOVA_INSTANCES_PATH).rstrip("/")
    if not base.startswith("/"):
        raise SourceError(f"instances path {base!r} must be absolute (nova.conf instances_path)")
    return base


def hypervisor_disk_url(conn, server_id: str, user: str | None = None, instances_path: str | None = None) -> str:
    """sftp:// URL of the instance's disk on its compute host (OS-EXT-SRV-ATTR:hypervisor_hostname).

    The host is Nova's name for the hypervisor, not necessarily one DNS resolves or with sshd on port 22:
    a `Host` entry of the ssh client config (sftp.py) maps it. `instances_path` is that host's nova.conf
    `instances_path` when a deployment moved it (`$STACKWATCH_NOVA_INSTANCES_PATH` when not given).
    """
    server = conn.compute.get_server(server_id)
    host = server.hypervisor_hostname or server.compute_host
    if not host:
        raise SourceError(f"server {server_id}: no hypervisor hostname (needs the admin role)")
    base = instances_dir(instances_path)
    return f"sftp://{quote(user, safe='') + '@' if user else ''}{host}{quote(base)}/{server_id}/disk"
