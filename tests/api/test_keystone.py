"""Against devcloud's real Keystone: two users in two projects see only their own project's events,
timelines, inventory and fleece reports (the randomized leak check of test_scoping, with Keystone tokens);
an admin token sees all; a revoked or made-up token gets 401; validations are cached by token hash.

Run under `flock /tmp/devcloud.lock` (one devcloud per machine).
"""

from __future__ import annotations

import random
import uuid

import pytest
from fastapi.testclient import TestClient
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from stackwatch.api.app import create_app
from stackwatch.config.settings import Settings
from tests.api.conftest import Secured
from tests.api.test_scoping import ALL, CHECKS
from tests.api.world import seed
from tests.devcloud.conftest import devcloud_cloud, devcloud_conn  # noqa: F401 - fixtures

pytestmark = [pytest.mark.devcloud, pytest.mark.timeout(900)]


def _token(info, user: str, password: str, project_id: str) -> str:  # noqa: ANN001
    auth = v3.Password(auth_url=info.auth_url, username=user, password=password, user_domain_id="default",
                       project_id=project_id)
    return ks_session.Session(auth=auth).get_token()


@pytest.fixture
def keystone_people(devcloud_cloud, devcloud_conn):  # noqa: ANN001, F811
    """Two projects, a `member` of the first and a `reader` of the second; removed afterwards."""
    identity = devcloud_conn.identity
    tag = uuid.uuid4().hex[:8]
    made = []
    people = {}
    try:
        for role_name in ("member", "reader"):
            project = identity.create_project(name=f"apiauth-{role_name}-{tag}", domain_id="default")
            password = uuid.uuid4().hex
            user = identity.create_user(name=f"apiauth-{role_name}-{tag}", password=password, domain_id="default",
                                        default_project_id=project.id)
            made += [user, project]
            role = identity.find_role(role_name)
            assert role is not None, f"devcloud's Keystone has no {role_name} role"
            identity.assign_project_role_to_user(project, user, role)
            people[project.id] = _token(devcloud_cloud, user.name, password, project.id)
        people["admin"] = devcloud_conn.session.get_token()
        yield people
    finally:
        for obj in made:
            (identity.delete_user if obj.__class__.__name__ == "User" else identity.delete_project)(obj)


def _app(store, info, monkeypatch, cache_seconds: float) -> TestClient:  # noqa: ANN001
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(info.clouds_yaml))
    settings = Settings.model_validate(
        {"api": {"auth": {"keystone": {"cloud": info.cloud, "cache_seconds": cache_seconds}, "tokens": True}}}
    )
    return TestClient(create_app(settings, store))


def test_keystone_users_see_only_their_project(store, devcloud_cloud, keystone_people, monkeypatch):  # noqa: ANN001, F811
    projects = tuple(p for p in keystone_people if p != "admin")
    world = seed(store, projects)
    client = _app(store, devcloud_cloud, monkeypatch, cache_seconds=60)
    s = Secured(client, world, keystone_people, store)
    # the documented header, X-Auth-Token, as well as Bearer
    for p in projects:
        r = client.get("/api/v1/events", params={"limit": ALL}, headers={"X-Auth-Token": keystone_people[p]})
        assert r.status_code == 200 and r.json() and {e["project_id"] for e in r.json()} == {p}
    everything = s.get("admin", "/api/v1/events", limit=ALL).json()
    assert {e["project_id"] for e in everything} == {*projects, None}
    assert s.get(projects[0], "/api/v1/quarantine").status_code == 403
    assert s.get("admin", "/api/v1/quarantine").status_code == 200
    rng = random.Random(16)
    for _ in range(200):
        rng.choice(CHECKS)(s, rng, rng.choice(projects))
    validator = client.app.state.authenticator.keystone
    assert validator.validations == 3  # one per token: every later request was served from the cache
    assert all(t not in str(validator._cache) for t in keystone_people.values())  # keyed by hash only


def test_revoked_and_unknown_keystone_tokens_get_401(store, devcloud_cloud, devcloud_conn,  # noqa: ANN001, F811
                                                     keystone_people, monkeypatch):
    project = next(p for p in keystone_people if p != "admin")
    token = keystone_people[project]
    client = _app(store, devcloud_cloud, monkeypatch, cache_seconds=0)
    assert client.get("/api/v1/events", headers={"X-Auth-Token": token}).status_code == 200
    r = client.get("/api/v1/events", headers={"X-Auth-Token": "gAAAAABmadeup" + "x" * 100})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    revoked = devcloud_conn.session.delete(
        "/auth/tokens", endpoint_filter={"service_type": "identity", "interface": "public"},
        headers={"X-Subject-Token": token}, raise_exc=False,
    )
    assert revoked.status_code == 204, revoked.text
    assert client.get("/api/v1/events", headers={"X-Auth-Token": token}).status_code == 401
