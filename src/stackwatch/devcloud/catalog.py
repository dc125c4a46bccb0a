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


def swift_endpoints(layout: Layout) -> dict[str, str]:
    """object-store endpoints: per-project accounts (``AUTH_<project id>``, what keystoneauth expects) for
    public/internal, the bare ``/v1`` for admin (as devstack registers them)."""
    account = layout.url(layout.ports.swift_proxy, "/v1/AUTH_%(project_id)s")
    return {"public": account, "internal": account, "admin": layout.url(layout.ports.swift_proxy, "/v1")}


_IDENTITY = {"service_type": "identity", "interface": "public"}


def ensure_service_user(s: ks_session.Session, name: str, password: str) -> None:
    """User `name` in the `service` project with the admin and service roles; an existing one gets `password`."""
    project = s.get("/projects?name=service", endpoint_filter=_IDENTITY).json()["projects"][0]["id"]
    users = s.get(f"/users?name={name}", endpoint_filter=_IDENTITY).json()["users"]
    if users:
        uid = users[0]["id"]
        s.patch(f"/users/{uid}", endpoint_filter=_IDENTITY, json={"user": {"password": password}})
    else:
        body = {"user": {"name": name, "password": password, "domain_id": "default"}}
        uid = s.post("/users", endpoint_filter=_IDENTITY, json=body).json()["user"]["id"]
    for role in ("admin", "service"):
        rid = s.get(f"/roles?name={role}", endpoint_filter=_IDENTITY).json()["roles"][0]["id"]
        s.put(f"/projects/{project}/users/{uid}/roles/{rid}", endpoint_filter=_IDENTITY)


def set_endpoints(s: ks_session.Session, name: str, service_type: str, urls: dict[str, str],
                  replace: bool = True) -> None:
    """Service `name` of `service_type` with one endpoint per interface in `urls`. An existing service keeps
    its id; its endpoints are replaced, or with `replace=False` left as they are."""
    found = s.get(f"/services?type={service_type}", endpoint_filter=_IDENTITY).json()["services"]
    if found and not replace:
        return
    if found:
        sid = found[0]["id"]
        for ep in s.get(f"/endpoints?service_id={sid}", endpoint_filter=_IDENTITY).json()["endpoints"]:
            s.delete(f"/endpoints/{ep['id']}", endpoint_filter=_IDENTITY)
    else:
        body = {"service": {"name": name, "type": service_type, "enabled": True}}
        sid = s.post("/services", endpoint_filter=_IDENTITY, json=body).json()["service"]["id"]
    for interface, url in urls.items():
        s.post("/endpoints", endpoint_filter=_IDENTITY, json={"endpoint": {
            "service_id": sid, "interface": interface, "url": url, "region_id": REGION, "enabled": True}})


def remove_service(s: ks_session.Session, service_type: str, user: str | None = None) -> None:
    """Remove every service of `service_type` (Keystone deletes their endpoints with them) and user `user`."""
    for svc in s.get(f"/services?type={service_type}", endpoint_filter=_IDENTITY).json()["services"]:
        s.delete(f"/services/{svc['id']}", endpoint_filter=_IDENTITY)
    for found in s.get(f"/users?name={user}", endpoint_filter=_IDENTITY).json()["users"] if user else ():
        s.delete(f"/users/{found['id']}", endpoint_filter=_IDENTITY)


def register_swift(layout: Layout, admin_password: str, swift_password: str) -> None:
    """User ``swift`` (the proxy's authtoken identity) in the service project, and the object-store service.

    Also run on a running devcloud (``up --with swift`` after a plain ``up``), so it looks things up first:
    an existing ``swift`` user gets the new password, an existing object-store service keeps its endpoints.
    """
    s = admin_session(layout, admin_password)
    ensure_service_user(s, "swift", swift_password)
    set_endpoints(s, "swift", "object-store", swift_endpoints(layout), replace=False)


def unregister_swift(layout: Layout, admin_password: str) -> None:
    """Remove the object-store service (Keystone deletes its endpoints with it) and the user ``swift``."""
    remove_service(admin_session(layout, admin_password), "object-store", user="swift")
