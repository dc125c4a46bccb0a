"""Local API tokens and the authenticator: 401 with a challenge, 403 for a role that may not act, revoked and
expired tokens refused, only a hash stored, the CLI, and serve's refusal to expose an open API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml
from fastapi import WebSocket
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from stackwatch.api.app import create_app
from stackwatch.api.auth.tokens import LocalTokens, token_hash
from stackwatch.cli.main import app as cli
from stackwatch.cli.serve import is_loopback, open_bind_refusal
from stackwatch.config.settings import Settings
from tests.api.conftest import PROJECTS, Secured, secured_settings

runner = CliRunner()


def test_no_or_bad_token_is_401_with_challenge(secured: Secured) -> None:
    for headers in ({}, {"Authorization": "Bearer sw_not-a-token"}, {"Authorization": "Basic abc"},
                    {"X-Auth-Token": "sw_nope"}, {"Authorization": "Bearer keystone-like"}):
        r = secured.client.get("/api/v1/events", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "sw_" not in r.text  # the presented token is not echoed
    assert secured.get("admin", "/api/v1/events").status_code == 200
    # the same local token works as X-Auth-Token
    assert secured.client.get("/api/v1/events", headers={"X-Auth-Token": secured.tokens["admin"]}).status_code == 200


def test_revoked_and_expired_tokens_are_refused(store) -> None:  # noqa: ANN001
    tokens = LocalTokens(store.engine)
    client = TestClient(create_app(secured_settings(), store))
    live, info = tokens.create("viewer", PROJECTS[0], name="ci")
    short, _ = tokens.create("viewer", PROJECTS[0], expires_at=datetime.now(UTC) + timedelta(seconds=60))
    old, _ = tokens.create("viewer", PROJECTS[0], expires_at=datetime.now(UTC) - timedelta(seconds=1))
    bearer = lambda t: {"Authorization": f"Bearer {t}"}  # noqa: E731
    assert client.get("/api/v1/events", headers=bearer(live)).status_code == 200
    assert client.get("/api/v1/events", headers=bearer(short)).status_code == 200
    assert client.get("/api/v1/events", headers=bearer(old)).status_code == 401
    assert tokens.revoke("ci") == 1
    assert client.get("/api/v1/events", headers=bearer(live)).status_code == 401
    assert tokens.revoke("ci") == 0
    # only the hash is stored
    with store.engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT token_hash FROM api_tokens"))]
    assert token_hash(live) in stored and live not in stored and all(len(h) == 64 for h in stored)


def test_no_auth_section_keeps_the_api_open(store) -> None:  # noqa: ANN001
    client = TestClient(create_app(Settings(), store))
    assert client.get("/api/v1/quarantine").status_code == 200
    assert client.get("/api/v1/events").status_code == 200


def test_token_cli(tmp_path, monkeypatch, db_url) -> None:  # noqa: ANN001
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({"api": {"auth": {"tokens": True}}}))
    made = runner.invoke(cli, ["token", "create", "--role", "viewer", "--project", "p1", "--name", "grafana",
                               "-c", str(config)])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("sw_") and len(token) > 40
    refused = runner.invoke(cli, ["token", "create", "--role", "viewer", "-c", str(config)])
    assert refused.exit_code == 2 and "--project" in refused.output
    listed = runner.invoke(cli, ["token", "list", "--format", "json", "-c", str(config)])
    assert listed.exit_code == 0 and token not in listed.stdout
    assert '"name": "grafana"' in listed.stdout and token[:9] in listed.stdout
    from stackwatch.config.settings import load_settings
    from stackwatch.store.db import open_store

    store = open_store(db_url)
    try:
        client = TestClient(create_app(load_settings(config), store))
        assert client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        gone = runner.invoke(cli, ["token", "revoke", "grafana", "-c", str(config)])
        assert gone.exit_code == 0 and "revoked 1" in gone.stdout
        assert client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        store.dispose()
    assert runner.invoke(cli, ["token", "revoke", "grafana", "-c", str(config)]).exit_code == 1


def test_serve_refuses_an_open_api_off_loopback(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("api.example")
    assert open_bind_refusal("0.0.0.0", auth=True, insecure=False) is None
    assert open_bind_refusal("0.0.0.0", auth=False, insecure=True) is None
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path))
    result = runner.invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2 and "--insecure" in result.output


def test_websocket_takes_the_console_cookie_from_its_own_origin_only(store) -> None:  # noqa: ANN001
    """A WebSocket route (the event stream calls `caller_of` the same way) gets the caller from the console's
    cookie when the handshake comes from this server's own pages, and from a header as any route does."""
    from fastapi import HTTPException
    from starlette.websockets import WebSocketDisconnect

    from stackwatch.api.identity import caller_of

    app = create_app(secured_settings(), store)

    @app.websocket("/ws-probe")
    async def probe(ws: WebSocket) -> None:
        try:
            caller = caller_of(ws)
        except HTTPException as exc:
            await ws.close(code=4000 + exc.status_code)
            return
        await ws.accept()
        await ws.send_json({"name": caller.name, "project": caller.project_id})
        await ws.close()

    token, _ = LocalTokens(store.engine).create("viewer", PROJECTS[0], name="browser")
    client = TestClient(app)  # its requests go to host "testserver"
    client.cookies.set("stackwatch_token", token)
    with client.websocket_connect("/ws-probe", headers={"origin": "http://testserver"}) as ws:
        assert ws.receive_json() == {"name": "token:browser", "project": PROJECTS[0]}
    for origin in ("http://evil.example", None):  # another site's page, or no Origin: the cookie is not used
        headers = {"origin": origin} if origin else {}
        with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws-probe", headers=headers):
            pass
        assert closed.value.code == 4401
    client.cookies.clear()
    with client.websocket_connect("/ws-probe", headers={"authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json()["project"] == PROJECTS[0]
    # plain HTTP routes never read the cookie (no CSRF through it)
    client.cookies.set("stackwatch_token", token)
    assert client.get("/api/v1/events").status_code == 401


def test_unknown_keystone_cloud_is_refused_when_the_api_is_built(store, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from stackwatch.config.settings import ConfigError

    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"other": {"auth": {"auth_url": "http://127.0.0.1:1/v3"}}}}))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    settings = Settings.model_validate({"api": {"auth": {"keystone": {"cloud": "mycloud"}}}})
    with pytest.raises(ConfigError, match="api.auth.keystone.cloud: cloud 'mycloud'"):
        create_app(settings, store)


def test_serve_stops_on_a_broken_keystone_section_before_serving(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({"api": {"auth": {"keystone": {"cloud": "nosuchcloud"}}}}))
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(tmp_path / "no-clouds.yaml"))
    result = runner.invoke(cli, ["serve", "--no-catchers", "--port", "1", "-c", str(config)])
    assert result.exit_code == 2 and "api.auth.keystone.cloud" in result.output and "nosuchcloud" in result.output
