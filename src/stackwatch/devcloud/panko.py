"""Panko 10 as a devcloud add-on: its own venv (telemetry_install), its own port, registered in the running
devcloud's Keystone catalog as service type `event`, behind keystonemiddleware. devcloud's core services are
neither restarted nor reconfigured.

Why it looks the way it does (the shared telemetry recipe, section C): the sdist's api_paste.ini is used
unchanged plus `oslo_config_file` under `[filter:authtoken]`, because `oslo_config_project = panko` makes
keystonemiddleware read only panko's default config files, never `--config-file`; without it every /v2
request is a 500. The Keystone user `panko` (admin + service in project `service`) validates tokens.
"""

from __future__ import annotations

import secrets
import subprocess
import time
import urllib.request
from pathlib import Path

from stackwatch.devcloud import proc, telemetry_install
from stackwatch.devcloud.catalog import admin_session, ensure_service_user, remove_service, set_endpoints
from stackwatch.devcloud.layout import REGION, Layout

SERVICE_TYPE = "event"


def register(layout: Layout, admin_password: str, url: str, password: str) -> None:
    """User `panko` with `password`, service `panko` (type event) with public/internal/admin endpoints at
    `url`; on a devcloud that has them already, the password and the endpoints' URL are updated."""
    s = admin_session(layout, admin_password)
    ensure_service_user(s, "panko", password)
    set_endpoints(s, "panko", SERVICE_TYPE, dict.fromkeys(("public", "internal", "admin"), url))


def unregister(layout: Layout, admin_password: str) -> None:
    """Remove the `event` service (its endpoints go with it) and the user `panko`."""
    remove_service(admin_session(layout, admin_password), SERVICE_TYPE, user="panko")


class PankoAddon:
    """One Panko API on `port` over `db_url`, its files under `root`.

    `layout` given: behind keystonemiddleware against that devcloud's Keystone (register it with `register`).
    `layout` None: the noauth pipeline (requests carry X-Roles / X-User-Id / X-Project-Id), as the tests'
    plain Panko peer runs it.
    """

    def __init__(self, layout: Layout | None, root: Path, db_url: str, port: int, token_cache_time: int = 300) -> None:
        self.layout, self.root, self.db_url, self.port = layout, root, db_url, port
        #: keystonemiddleware caches a validated token this many seconds; -1 validates every request
        self.token_cache_time = token_cache_time
        self.password = secrets.token_urlsafe(16)
        self.conf = root / "panko.conf"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bin(self, name: str) -> str:
        return str(telemetry_install.venv("panko") / "bin" / name)

    def configure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        paste = telemetry_install.api_paste().read_text()
        paste = paste.replace("/etc/panko/healthcheck_disable", str(self.root / "healthcheck_disable"))
        if self.layout is None:  # build_wsgi_app() hard-codes the panko+keystone composite: point its /v2 at noauth
            paste = paste.replace("/v2 = pankov2_keystone_pipeline", "/v2 = pankov2_noauth_pipeline")
        else:
            paste = paste.replace("[filter:authtoken]\n", f"[filter:authtoken]\noslo_config_file = {self.conf}\n", 1)
        (self.root / "api_paste.ini").write_text(paste)
        conf = (f"[DEFAULT]\napi_paste_config = {self.root / 'api_paste.ini'}\n"
                f"log_file = {self.root / 'panko-api.log'}\n[database]\nconnection = {self.db_url}\n"
                "[api]\ndefault_api_return_limit = 100\n")
        if self.layout is not None:
            auth = self.layout.auth_url
            conf += (f"[keystone_authtoken]\nwww_authenticate_uri = {auth}\nauth_url = {auth}\nauth_type = password\n"
                     f"username = panko\npassword = {self.password}\nproject_name = service\n"
                     f"user_domain_name = Default\nproject_domain_name = Default\nregion_name = {REGION}\n"
                     f"interface = public\ntoken_cache_time = {self.token_cache_time}\n")
        self.conf.write_text(conf)
        self.conf.chmod(0o600)
        subprocess.run([self.bin("panko-dbsync"), "--config-file", str(self.conf)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)

    def start(self, timeout: float = 60) -> None:
        out = (self.root / "api.out").open("ab")
        self.proc = subprocess.Popen(
            [self.bin("panko-api"), "--host", "127.0.0.1", "--port", str(self.port), "--", "--config-file",
             str(self.conf)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"panko-api exited {self.proc.returncode}; see {self.root / 'api.out'}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"panko-api did not answer on {self.url}")

    def stop(self) -> None:
        if self.proc is not None:
            proc.stop_pid(self.proc.pid, timeout=10)
        self.proc = None
