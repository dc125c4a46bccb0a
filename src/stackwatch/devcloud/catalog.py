"""Keystone catalog (service project, users, services, endpoints) and seed objects (a flavor, a tiny image).

Ported from the real-openstack recipe's scripts/register_all.py and smoke_test.py; plain REST through one
keystoneauth session, calls in parallel (each uwsgi request closes its connection: ``Connection: close``).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from stackwatch.devcloud.layout import REGION, Layout

SERVICE_USERS = ("glance", "nova", "placement", "neutron")
SEED_FLAVORS = (("m1.tiny", 64, 1, 1), ("m1.small", 128, 1, 1))
SEED_IMAGE = "cirros-fake"


@dataclass(frozen=True)
class Catalog:
    """name, service type, endpoint URL."""

    entries: tuple[tuple[str, str, str], ...]


def catalog(layout: Layout) -> Catalog:
    p = layout.ports
    return Catalog(
        (
            ("glance", "image", layout.url(p.glance)),
            ("nova", "compute", layout.url(p.nova, "/v2.1")),
            ("placement", "placement", layout.url(p.placement)),
            ("neutron", "network", layout.url(p.neutron)),
        )
    )


def admin_session(layout: Layout, admin_password: str) -> ks_session.Session:
    auth = v3.Password(
        auth_url=layout.auth_url,
        username="admin",
        password=admin_password,
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    return ks_session.Session(auth=auth)


def register(layout: Layout, admin_password: str, service_password: str) -> None:
    s = admin_session(layout, admin_password)
    ident = {"service_type": "identity", "interface": "public"}

    def post(path: str, body: dict) -> dict:
        return s.post(path, endpoint_filter=ident, json=body).json()

    project = post("/projects", {"project": {"name": "service", "domain_id": "default"}})["project"]["id"]
    roles = {}
    for name in ("admin", "service"):
        found = s.get(f"/roles?name={name}", endpoint_filter=ident).json()["roles"]
        roles[name] = found[0]["id"] if found else post("/roles", {"role": {"name": name}})["role"]["id"]

    def user(name: str) -> None:
        uid = post("/users", {"user": {"name": name, "password": service_password, "domain_id": "default"}})
        for rid in roles.values():
            s.put(f"/projects/{project}/users/{uid['user']['id']}/roles/{rid}", endpoint_filter=ident)

    def service(entry: tuple[str, str, str]) -> None:
        name, stype, url = entry
        sid = post("/services", {"service": {"name": name, "type": stype}})["service"]["id"]
        for interface in ("public", "internal", "admin"):
            post(
                "/endpoints",
                {"endpoint": {"service_id": sid, "interface": interface, "url": url, "region_id": REGION}},
            )

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(user, u) for u in SERVICE_USERS]
        futures += [pool.submit(service, e) for e in catalog(layout).entries]
        for f in futures:
            f.result()


def seed(layout: Layout, admin_password: str) -> None:
    """Flavors m1.tiny / m1.small and a public 1 MiB raw image, so a server can be booted right away."""
    s = admin_session(layout, admin_password)
    compute = {"service_type": "compute", "interface": "public", "region_name": REGION}
    image = {"service_type": "image", "interface": "public", "region_name": REGION}
    for name, ram, vcpus, disk in SEED_FLAVORS:
        s.post(
            "/flavors",
            endpoint_filter=compute,
            json={"flavor": {"name": name, "ram": ram, "vcpus": vcpus, "disk": disk}},
        )
    img = s.post(
        "/v2/images",
        endpoint_filter=image,
        json={"name": SEED_IMAGE, "disk_format": "raw", "container_format": "bare", "visibility": "public"},
    ).json()
    s.put(
        f"/v2/images/{img['id']}/file",
        endpoint_filter=image,
        data=b"\0" * (1024 * 1024),
        headers={"Content-Type": "application/octet-stream"},
    )
