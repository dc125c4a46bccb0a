"""`zaqar:QUEUE` and the project queues mode against a real Zaqar 23 (PyPI, Redis) behind keystonemiddleware on
devcloud's real Keystone, registered in the catalog as service type `messaging` (stackwatch.devcloud.zaqar).

A user of project P subscribes to a queue of P with Zaqar alone (a webhook subscriber and a WebSocket subscriber);
stackwatch's push subscription `--to zaqar:QUEUE` owned by P posts P's events there, found through the catalog
with a token scoped to P, and both Zaqar subscribers receive them; with `push.project_queues` every event also lands
in `stackwatch-events` of its own project. A project stackwatch's user has no role on is refused by Keystone: the
delivery is final with a message saying what to grant.
"""

from __future__ import annotations

import json
import threading
import uuid

import orjson
import pytest
import yaml
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from stackwatch.config.settings import Settings
from stackwatch.devcloud import zaqar
from stackwatch.push.handler import build
from stackwatch.push.outbox import Outbox
from stackwatch.push.zaqar import PROJECT_QUEUE
from stackwatch.store.db import open_store
from tests.delivery.receiver import Receiver
from tests.devcloud.conftest import devcloud_cloud  # noqa: F401 - the session fixture
from tests.push.conftest import make_event, subscribe, wait_for

pytestmark = [pytest.mark.devcloud, pytest.mark.slow]
websockets_sync = pytest.importorskip("websockets.sync.client")
IDENT = {"service_type": "identity", "interface": "public"}


@pytest.fixture(scope="module")
def zaqar_cloud(devcloud_cloud, tmp_path_factory):  # noqa: F811
    auth = yaml.safe_load(devcloud_cloud.clouds_yaml.read_text())["clouds"][devcloud_cloud.cloud]["auth"]
    server = zaqar.start(auth["auth_url"], auth["password"], tmp_path_factory.mktemp("zaqar"))
    admin = ks_session.Session(auth=v3.Password(**auth))
    try:
        zaqar.register(admin, server.url)
        yield devcloud_cloud, server, admin, auth
    finally:
        server.stop()


def _project_with_user(admin, tag: str, grant_admin: bool) -> tuple[str, ks_session.Session]:  # noqa: ANN001
    project = admin.post("/projects", endpoint_filter=IDENT, json={"project": {
        "name": f"push-{tag}", "domain_id": "default"}}).json()["project"]["id"]
    password = uuid.uuid4().hex
    user = admin.post("/users", endpoint_filter=IDENT, json={"user": {
        "name": f"push-{tag}", "domain_id": "default", "password": password}}).json()["user"]["id"]
    member = admin.get("/roles?name=member", endpoint_filter=IDENT).json()["roles"][0]["id"]
    admin.put(f"/projects/{project}/users/{user}/roles/{member}", endpoint_filter=IDENT)
    if grant_admin:  # what the operator does once per project stackwatch delivers to
        me = admin.get_user_id()
        admin.put(f"/projects/{project}/users/{me}/roles/{member}", endpoint_filter=IDENT)
    auth_url = admin.auth.auth_url
    return project, ks_session.Session(auth=v3.Password(auth_url=auth_url, username=f"push-{tag}", password=password,
                                                       user_domain_name="Default", project_id=project))


def _websocket_subscriber(url: str, token: str, project: str, queue: str, got: list[dict],
                          ready: threading.Event) -> None:
    client = str(uuid.uuid4())
    headers = {"Client-ID": client, "X-Project-ID": project}
    with websockets_sync.connect(url) as ws:
        ws.send(json.dumps({"action": "authenticate", "headers": {**headers, "X-Auth-Token": token}}))
        ws.recv(timeout=30)
        ws.send(json.dumps({"action": "subscription_create", "headers": headers,
                            "body": {"queue_name": queue, "ttl": 600}}))
        answer = json.loads(ws.recv(timeout=30))
        assert answer["headers"]["status"] == 201, answer
        ready.set()
        while len(got) < 3:
            frame = json.loads(ws.recv(timeout=60))
            if frame.get("Message_Type") == "Notification":
                got.append(frame)


def test_zaqar_destination_and_project_queues(zaqar_cloud, tmp_path, monkeypatch):
    cloud, server, admin, _auth = zaqar_cloud
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(cloud.clouds_yaml))
    tag = uuid.uuid4().hex[:8]
    project, user = _project_with_user(admin, tag, grant_admin=True)
    stranger, _ = _project_with_user(admin, f"{tag}-x", grant_admin=False)
    queue = f"events-{tag}"
    endpoint = user.get_endpoint(service_type="messaging", interface="public")
    zheaders = {"Client-ID": str(uuid.uuid4())}
    store = open_store(f"sqlite:///{tmp_path / 'sw.db'}")
    ws_got: list[dict] = []
    ready = threading.Event()
    with Receiver() as rx:
        created = user.post(f"{endpoint}/v2/queues/{queue}/subscriptions", headers=zheaders,
                            json={"subscriber": rx.url, "ttl": 3600})
        assert created.status_code == 201, created.text
        listener = threading.Thread(target=_websocket_subscriber, args=(
            server.websocket_url, user.get_token(), project, queue, ws_got, ready), daemon=True)
        listener.start()
        assert ready.wait(60)
        settings = Settings(providers=[{"name": "lab", "cloud": cloud.cloud, "events": {"monitor": "none"}}],
                            push={"reload_seconds": 0.2, "project_queues": True})
        subscribe(store.engine, "to-zaqar", f"zaqar:{queue}", project)
        subscribe(store.engine, "stranger", f"zaqar:{queue}", stranger)
        handler = build(store.engine, settings)
        try:
            mine = [make_event(i, project, vm="vm-1") for i in range(3)]
            theirs = make_event(9, stranger)
            handler.handle([*mine, theirs])
            wait_for(lambda: len(rx.requests) >= 3, 60, "Zaqar's webhook subscriber")
            listener.join(60)
            box = Outbox(store.engine)
            wait_for(lambda: len(box.list(source="subscription", state="done")) == 6, 60,
                     "3 subscription and 3 project-queue deliveries")
            dead = wait_for(lambda: box.list(source="subscription", state="dead"), 60, "the stranger's refusals")
        finally:
            handler.close()
            store.dispose()
    wanted = [e.message_id for e in mine]
    assert sorted(orjson.loads(r.body)["body"]["message_id"] for r in rx.requests) == sorted(wanted)
    assert sorted(f["body"]["message_id"] for f in ws_got) == sorted(wanted)
    listed = user.get(f"{endpoint}/v2/queues/{PROJECT_QUEUE}/messages?echo=true&limit=10", headers=zheaders).json()
    assert sorted(m["body"]["message_id"] for m in listed["messages"]) == sorted(wanted)
    assert {d.owner for d in dead} == {"stranger", f"project-queue:{stranger}"}
    assert all("grant stackwatch's user a role" in (d.last_error or "") for d in dead)
