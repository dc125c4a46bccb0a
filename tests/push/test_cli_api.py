"""`stackwatch subscription ...` and `/api/v1/subscriptions` over one store: what each caller may see and do.

The CLI is the operator's (admin) tool. Through the API a project's user sees and manages only its own
project's subscriptions, cannot name another owner or all projects, and cannot deliver to private addresses
unless `push.allow_private_destinations`; secrets and destination credentials never come back."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from stackwatch.api.app import create_app
from stackwatch.api.identity import Caller
from stackwatch.cli.main import app
from stackwatch.config.settings import Settings
from stackwatch.push.signing import verify
from stackwatch.push.subscriptions import SubscriptionRow, SubscriptionStore
from stackwatch.store.db import open_store
from tests.conftest import SAMPLES
from tests.delivery.receiver import Receiver

runner = CliRunner()
SAMPLE = SAMPLES / "legacy" / "nova" / "ceilometer-test_instance-INSTANCE_CREATE_END.json"
SAMPLE_PROJECT = "7c150a59fe714e6f9263774af9688f0e"


@pytest.fixture
def env(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    monkeypatch.delenv("STACKWATCH_SECRET_KEY", raising=False)
    return db_url


def cli(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    # on success the JSON alone: log lines (httpx's, once a test configured logging) go to stderr; on an error
    # the message, which is on stderr
    return result.stdout if code == 0 else result.output


def test_cli_add_list_show_test_remove(env, monkeypatch):
    monkeypatch.setenv("SUB_SECRET", "cli-secret")
    with Receiver() as rx:
        cli("subscription", "add", "nova-a", "--provider", "lab", "--project", SAMPLE_PROJECT, "--events",
            "compute.instance.*", "--to", rx.url, "--secret-env", "SUB_SECRET", "--max-attempts", "4")
        cli("subscription", "add", "nova-a", "--provider", "lab", "--project", "x", "--to", rx.url, code=2)
        [listed] = json.loads(cli("subscription", "list", "--format", "json"))
        assert listed["name"] == "nova-a" and listed["events"] == ["compute.instance.*"]
        assert listed["secret"] == "env:SUB_SECRET" and listed["max_attempts"] == 4
        shown = json.loads(cli("subscription", "show", "nova-a", "--format", "json"))
        assert shown["deliveries"] == {"pending": 0, "done": 0, "dead": 0}
        dry = json.loads(cli("subscription", "test", "nova-a", "--event", str(SAMPLE), "--format", "json"))
        assert dry["in_scope"] and dry["filter_matches"] and dry["delivered"] and not rx.requests
        sent = json.loads(cli("subscription", "test", "nova-a", "--event", str(SAMPLE), "--send", "--format", "json"))
        assert sent["answer"]["status"] == 200
        [request] = rx.requests
        assert verify(request.body, "cli-secret", request.headers["x-stackwatch-signature"])
        assert request.headers["x-stackwatch-event-id"] == json.loads(request.body)["message_id"]
    cli("subscription", "add", "other", "--provider", "lab", "--project", "not-the-sample", "--to",
        "https://hooks.example/x")
    out = json.loads(cli("subscription", "test", "other", "--event", str(SAMPLE), "--format", "json", code=1))
    assert out["in_scope"] is False and out["delivered"] is False
    cli("subscription", "remove", "other")
    cli("subscription", "remove", "other", code=1)
    assert [s["name"] for s in json.loads(cli("subscription", "list", "--format", "json"))] == ["nova-a"]


def test_cli_input_errors(env):
    assert "--all-projects" in cli("subscription", "add", "x", "--provider", "lab", "--to", "https://h/", code=2)
    assert "zaqar:QUEUE" in cli("subscription", "add", "x", "--provider", "lab", "--project", "p", "--to",
                                "ftp://h/", code=2)
    out = cli("subscription", "add", "x", "--provider", "lab", "--project", "p", "--to",
              "amqp://user:hunter2@broker.example/?exchange=ev", code=2)
    assert "STACKWATCH_SECRET_KEY" in out and "hunter2" not in out
    assert "groups" in cli("subscription", "add", "x", "--provider", "lab", "--project", "p", "--to", "https://h/",
                           "--group", "nope", code=2)


def test_cli_credentials_in_a_destination_are_stored_encrypted(env, monkeypatch):
    monkeypatch.setenv("STACKWATCH_SECRET_KEY", Fernet.generate_key().decode())
    cli("subscription", "add", "mq", "--provider", "lab", "--all-projects", "--to",
        "amqp://user:hunter2@broker.example:5672/vh?exchange=ev&routing_key=k")
    listing = cli("subscription", "list", "--format", "json")
    assert "hunter2" not in listing and "***" in listing
    store = open_store(env)
    try:
        from sqlalchemy.orm import Session

        with Session(store.engine) as session:
            row = session.get(SubscriptionRow, "mq")
            assert "hunter2" not in row.destination and "hunter2" not in (row.destination_encrypted or "")
        sub = SubscriptionStore(store.engine).get("mq")
        assert sub.target().url.startswith("amqp://user:hunter2@") and sub.target().exchange == "ev"
    finally:
        store.dispose()


# -- the API ------------------------------------------------------------------------------------------------
@pytest.fixture
def api(db_url, monkeypatch):
    monkeypatch.setenv("STACKWATCH_SECRET_KEY", Fernet.generate_key().decode())
    store = open_store(db_url)
    callers: dict[str, Caller] = {}

    def client(caller: Caller, allow_private: bool = False) -> TestClient:
        application = create_app(Settings(database=db_url, push={"allow_private_destinations": allow_private}),
                                 store)
        application.state.authenticator = lambda _request: caller
        return TestClient(application)

    yield client, callers
    store.dispose()


def store_session(client: TestClient):  # noqa: ANN201
    from sqlalchemy.orm import Session

    return Session(client.app.state.store.engine)


ALICE = Caller("alice", "operator", "proj-a")
BOB = Caller("bob", "operator", "proj-b")
VIEWER = Caller("vic", "viewer", "proj-a")
ADMIN = Caller("root", "admin")


def _body(name: str, **kw):  # noqa: ANN202
    return {"name": name, "provider": "lab", "to": "https://8.8.8.8/x", **kw}  # a global address, never called


def test_api_scopes_every_subscription_by_caller(api):
    client, _ = api
    alice, bob = client(ALICE), client(BOB)
    created = alice.post("/api/v1/subscriptions", json=_body("alice-1", events=["compute.*"], secret="s"))
    assert created.status_code == 201, created.text
    assert created.json()["project_id"] == "proj-a" and created.json()["secret"] == "stored"
    assert "secret_encrypted" not in created.json()
    with store_session(alice) as session:
        row = session.get(SubscriptionRow, "alice-1")
        assert row.secret_encrypted and row.secret_encrypted != "s"
    assert bob.post("/api/v1/subscriptions", json=_body("bob-1")).status_code == 201
    assert [s["name"] for s in alice.get("/api/v1/subscriptions").json()] == ["alice-1"]
    assert bob.get("/api/v1/subscriptions/alice-1").status_code == 404
    assert bob.delete("/api/v1/subscriptions/alice-1").status_code == 404
    assert alice.post("/api/v1/subscriptions", json=_body("x", project_id="proj-b")).status_code == 403
    assert alice.post("/api/v1/subscriptions", json=_body("x", all_projects=True)).status_code == 403
    assert alice.post("/api/v1/subscriptions", json=_body("x", secret_env="STACKWATCH_SECRET_KEY")).status_code == 403
    assert client(VIEWER).post("/api/v1/subscriptions", json=_body("x")).status_code == 403
    assert client(VIEWER).get("/api/v1/subscriptions").json()[0]["name"] == "alice-1"
    assert alice.post("/api/v1/subscriptions", json=_body("alice-1")).status_code == 409
    admin = client(ADMIN)
    assert {s["name"] for s in admin.get("/api/v1/subscriptions").json()} == {"alice-1", "bob-1"}
    assert admin.post("/api/v1/subscriptions", json=_body("all", all_projects=True)).status_code == 201
    assert alice.delete("/api/v1/subscriptions/alice-1").status_code == 204
    assert alice.get("/api/v1/subscriptions").json() == []


def test_api_refuses_private_destinations_for_users(api):
    client, _ = api
    for to in ("http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::1]/x", "http://169.254.169.254/latest",
               "amqp://192.168.0.5/?exchange=e", "http://localhost/x"):
        refused = client(ALICE).post("/api/v1/subscriptions", json=_body("p", to=to))
        assert refused.status_code == 422 and "admin" in refused.json()["detail"], to
    assert client(ALICE, allow_private=True).post("/api/v1/subscriptions",
                                                  json=_body("p", to="http://127.0.0.1:9/x")).status_code == 201
    admin_private = _body("q", to="http://10.0.0.1/x", project_id="proj-c")
    assert client(ADMIN).post("/api/v1/subscriptions", json=admin_private).status_code == 201
    bad = client(ALICE).post("/api/v1/subscriptions", json=_body("z", events=["*"], groups=["nope"]))
    assert bad.status_code == 422
