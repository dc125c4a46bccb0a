"""/api/v1/rules: the same operations as the CLI, for admins and operators only; errors name the rule and key."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from stackwatch.api.app import create_app
from stackwatch.api.identity import Caller
from stackwatch.config.settings import Settings
from tests.rules.samples import VERSIONED_CREATE, VERSIONED_ERROR, sample

RULE = {"name": "api-rule", "events": ["instance.*.error"],
        "actions": [{"webhook": {"url": "https://u:pw@hooks.example/x?token=abc", "secret_env": "API_SECRET"}}]}


def _client(store, tmp_path, role: str = "admin") -> TestClient:
    settings = Settings(data_dir=tmp_path, database="sqlite://", rules=tmp_path / "rules.yaml")
    app = create_app(settings, store)
    app.state.authenticator = lambda _request: Caller(name="t", role=role, project_id=None if role == "admin"
                                                      else "p1")
    return TestClient(app)


def test_rules_over_http(store, tmp_path, monkeypatch):
    monkeypatch.setenv("API_SECRET", "s")
    client = _client(store, tmp_path)
    assert client.get("/api/v1/rules").json() == []
    assert client.post("/api/v1/rules", json=RULE).status_code == 201
    assert client.post("/api/v1/rules", json=RULE).status_code == 422  # exists: --replace
    assert client.post("/api/v1/rules?replace=true", json={"rules": [RULE]}).status_code == 201
    bad = client.post("/api/v1/rules", json={**RULE, "name": "b", "when": {"field": "vm", "equals": 1}})
    assert bad.status_code == 422 and "(b).when.field: unknown field 'vm'" in bad.json()["detail"]
    (listed,) = client.get("/api/v1/rules").json()
    assert listed["name"] == "api-rule" and listed["actions"] == ["webhook"] and listed["dead"] == 0
    shown = client.get("/api/v1/rules/api-rule").json()
    assert "pw" not in json.dumps(shown) and "abc" not in json.dumps(shown)
    event = sample(VERSIONED_ERROR)
    store.write_batch([event])
    tested = client.post("/api/v1/rules/api-rule/test", json={"message_id": event.message_id}).json()
    assert tested["matched"] and tested["actions"][0]["headers"]["Idempotency-Key"] == f"api-rule:{event.message_id}"
    assert tested["actions"][0]["headers"]["X-Stackwatch-Signature"].startswith("sha256=")
    assert "pw" not in tested["actions"][0]["url"] and "abc" not in tested["actions"][0]["url"]
    from_file = client.post("/api/v1/rules/api-rule/test",
                            json={"notification": json.loads(VERSIONED_CREATE.read_text())}).json()
    assert not from_file["matched"] and from_file["actions"] == []
    assert client.get("/api/v1/rules/api-rule/runs").json() == []
    assert client.post("/api/v1/rules/api-rule/retry").json() == {"requeued": 0}
    assert client.get("/api/v1/rules/nope").status_code == 404
    assert client.delete("/api/v1/rules/api-rule").status_code == 204
    assert client.get("/api/v1/rules").json() == []


def test_viewers_and_project_users_may_not_manage_rules(store, tmp_path):
    viewer = _client(store, tmp_path, role="viewer")
    assert viewer.get("/api/v1/rules").status_code == 403
    assert viewer.post("/api/v1/rules", json=RULE).status_code == 403
    assert _client(store, tmp_path, role="operator").get("/api/v1/rules").status_code == 200
