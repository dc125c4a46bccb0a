"""The panko monitor finding Panko in devcloud's Keystone catalog (service type `event`) and polling it with a
Keystone token through keystonemiddleware; a revoked token is renewed (401 -> new token -> retry).

devcloud is one per machine (run this under `flock /tmp/devcloud.lock` beside other devcloud users); the test
takes Panko out of the catalog again afterwards and stops devcloud only if it started it.
"""

from __future__ import annotations

import os

import pytest

from stackwatch.config.settings import ProviderConfig
from tests.monitors.conftest import _need_telemetry, run_catcher, stored_ids, wait_for
from tests.monitors.peers.panko_api import event, free_port, record


@pytest.fixture
def devcloud_locked():
    from stackwatch import devcloud
    from stackwatch.devcloud import postgres, rabbit

    try:
        rabbit.check_installed()
        postgres.bin_dir()
    except devcloud.PrerequisiteError as exc:
        pytest.skip(str(exc))
    was_up = devcloud.status().up
    info = devcloud.up()
    yield info
    if not was_up and os.environ.get("STACKWATCH_DEVCLOUD_KEEP") != "1":
        devcloud.down()




def test_panko_from_keystone_catalog_with_token(devcloud_locked, pg_store, tmp_path, monkeypatch):
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    from stackwatch.devcloud import panko as panko_addon
    from stackwatch.devcloud import state
    from stackwatch.devcloud.layout import Layout

    _need_telemetry("panko")
    info = devcloud_locked
    layout = Layout()
    admin_password = state.read_admin_password(layout)
    addon = panko_addon.PankoAddon(layout, tmp_path / "panko", f"sqlite:///{tmp_path / 'panko.sqlite'}", free_port(),
                                     token_cache_time=-1)  # a revoked token is refused at once
    addon.configure()
    panko_addon.register(layout, admin_password, addon.url, addon.password)
    addon.start()
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(info.clouds_yaml))
    try:
        # seeded through Panko's own storage driver (the same peer script the noauth tests use)
        record(addon, [event(i, "2026-12-04T10:00:00", prefix="0000004a-0000-0000-0000") for i in range(120)])
        prov = ProviderConfig.model_validate({"name": "lab", "cloud": info.cloud, "events": {
            "monitor": "panko", "panko": {"interval_seconds": 0.3, "page_size": 50}}})
        runner = run_catcher(prov, pg_store)
        try:
            wait_for(lambda: len(stored_ids(pg_store)) >= 120, 120, what="120 events through the catalog endpoint")
            assert runner.monitor.source.endpoint.base_url == addon.url
            # revoke the monitor's token: Panko answers 401, keystoneauth gets a new one and retries
            session = runner.monitor.source.endpoint.session
            token = session.get_token()
            admin = ks_session.Session(auth=v3.Password(
                auth_url=info.auth_url, username="admin", password=admin_password, project_name="admin",
                user_domain_name="Default", project_domain_name="Default"))
            resp = admin.delete("/auth/tokens", endpoint_filter={"service_type": "identity", "interface": "public"},
                                headers={"X-Subject-Token": token}, raise_exc=False)
            assert resp.status_code == 204
            record(addon, [event(i, "2026-12-04T10:01:00", prefix="0000004b-0000-0000-0000") for i in range(30)])
            wait_for(lambda: len(stored_ids(pg_store)) >= 150, 120, what="30 more after the token was revoked")
            assert session.get_token() != token
        finally:
            runner.stop()
    finally:
        addon.stop()
        panko_addon.unregister(layout, admin_password)
    ids = stored_ids(pg_store)
    assert len(ids) == 150 and max(ids.values()) == 1
