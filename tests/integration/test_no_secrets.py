"""End to end: known secrets in the configuration, clouds.yaml and URLs reach no log line and no API response.

The processes a user runs, as subprocesses at log level debug: `stackwatch serve`, `stackwatch worker
catcher`, `stackwatch refresh`, `stackwatch fleece URL`, `stackwatch provider list` and `db upgrade|current`,
on this machine's real PostgreSQL and RabbitMQ. Every secret is distinctive and holds a unique hex core, so
any form of it (raw, percent-encoded, JSON-escaped, cut after a raw `@`) is found by that core:
- the database URL's password (PostgreSQL here trusts loopback, so any password connects),
- the AMQP URL's password, with a raw `@` and `:` in it, of a RabbitMQ user made for the test,
- the clouds.yaml password of the provider's cloud (its Keystone is a closed port: the first full refresh
  and `stackwatch refresh` fail to authenticate, after keystoneauth logged its requests at debug),
- an HTTP fleece target's user-info password (raw `@`) and `?token=`, served by the loopback range server.
Then every line of every process's stdout and stderr, every GET route of `/openapi.json` with sample and
bad parameters (and the pages outside the spec), and every row of the database are scanned: 0 found.

tests/devcloud/test_no_secrets.py does the same against devcloud's real Keystone, Nova and Glance with these
helpers (marked devcloud; run it under `flock /tmp/devcloud.lock`), where Keystone tokens are secrets too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from tests.conftest import SAMPLES

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
AMQP_ADMIN_URL = os.environ.get("STACKWATCH_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
_EXE = Path(sys.executable).with_name("stackwatch")
STACKWATCH = [str(_EXE)] if _EXE.exists() else [sys.executable, "-m", "stackwatch"]
#: a Keystone fernet token, as it would appear if one leaked (they all start so)
FERNET = re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}")


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass(frozen=True)
class Secret:
    """A secret as the service takes it (`value`) and the unique part that every form of it keeps (`core`)."""

    name: str
    value: str
    core: str


def make_secret(name: str, head: str, tail: str) -> Secret:
    core = uuid.uuid4().hex[:16]
    return Secret(name, f"{head}{core}{tail}", core)


@dataclass
class Evidence:
    """Everything the processes and the API said, by source, to be scanned for secrets."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, source: str, text: str) -> None:
        self.texts.append((source, text))

    def leaks(self, secrets: list[Secret], tokens: bool = False) -> list[str]:
        found = []
        for source, text in self.texts:
            for n, line in enumerate(text.splitlines(), 1):
                for s in secrets:
                    forms = {s.core, s.value, quote(s.value, safe=""), json.dumps(s.value)[1:-1]}
                    if any(f in line for f in forms):
                        found.append(f"{s.name} in {source} line {n}: {line[:400]}")
                if tokens and FERNET.search(line):
                    found.append(f"a Keystone token in {source} line {n}: {line[:400]}")
        return found

    def save(self, path: Path) -> Path:
        """All of it in one file, to read when the test fails (pytest keeps the last runs' tmp_path)."""
        path.write_text("".join(f"===== {source}\n{text}\n" for source, text in self.texts))
        return path

    def lines(self, source_prefix: str) -> list[str]:
        return [ln for src, text in self.texts if src.startswith(source_prefix) for ln in text.splitlines()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(evidence: Evidence, name: str, *args: str, env: dict[str, str], timeout: float = 180) -> int:
    res = subprocess.run([*STACKWATCH, *args], env=env, capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    evidence.add(f"{name} stdout", res.stdout)
    evidence.add(f"{name} stderr", res.stderr)
    return res.returncode


class Daemon:
    """A long-running stackwatch process whose stdout and stderr go to files (read after it stops)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.out, self.err = logs / f"{name}.out", logs / f"{name}.err"
        self.proc = subprocess.Popen([*STACKWATCH, *args], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.out.open("wb"), stderr=self.err.open("wb"))

    def stop(self, evidence: Evidence) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        evidence.add(f"{self.name} stdout", self.out.read_text(errors="replace"))
        evidence.add(f"{self.name} stderr", self.err.read_text(errors="replace"))
        return self.proc.returncode


def wait_for(what: str, check, timeout: float, daemons: list[Daemon] = ()) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            value = check()
            if value:
                return value
        for d in daemons:
            if d.proc.poll() is not None:
                raise AssertionError(f"{d.name} exited with {d.proc.returncode} while waiting for {what}: "
                                     f"{d.err.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


# --- the API walk ---------------------------------------------------------------------------------------

#: sample values for query parameters by name; the second of each pair is refused (an error response)
QUERY_SAMPLES: dict[str, tuple[str, str]] = {
    "limit": ("5", "0"),
    "since": ("2000-01-01T00:00:00Z", "yesterday-ish"),
    "until": ("2100-01-01T00:00:00Z", "tomorrow-ish"),
    "group": ("creation", "sideways"),
    "type": ("compute.instance.*", "*"),
    "deleted": ("true", "perhaps"),
    "report_id": ("1", "one"),
}


def walk_api(client: httpx.Client, evidence: Evidence, ids: dict[str, list[str]]) -> dict[str, int]:
    """GET every route of the OpenAPI spec with sample path and query values (known ids, unknown ids, values
    that are refused), and the pages outside the spec; every response (status line, headers, body) goes to
    `evidence`. Returns {route: number of responses}."""
    spec_resp = client.get("/openapi.json")
    assert spec_resp.status_code == 200
    evidence.add("GET /openapi.json", spec_resp.text)
    spec = spec_resp.json()
    seen: dict[str, int] = {}

    def get(route: str, url: str, params: dict[str, str] | None = None) -> httpx.Response:
        resp = client.get(url, params=params)
        head = "\n".join(f"{k}: {v}" for k, v in resp.headers.items())
        evidence.add(f"GET {resp.request.url} -> {resp.status_code}", f"{head}\n{resp.text}")
        seen[route] = seen.get(route, 0) + 1
        return resp

    for route, ops in spec["paths"].items():
        if "get" not in ops:
            continue
        params = ops["get"].get("parameters", [])
        path_names = [p["name"] for p in params if p["in"] == "path"]
        urls = [route]
        for name in path_names:
            values = ids.get(name, []) + ["unknown-0000", "999999"]
            urls = [u.replace("{" + name + "}", quote(v, safe="")) for u in urls for v in values]
        for url in urls:
            get(route, url)
            for p in params:
                if p["in"] != "query":
                    continue
                good, bad = QUERY_SAMPLES.get(p["name"], (None, None))
                samples = [v for v in (good, bad) if v is not None]
                samples += ids.get(p["name"], [])[:3] + ["unknown-0000"]
                for value in samples:
                    get(route, url, {p["name"]: value})
    for page in ("/", "/docs", "/redoc", "/metrics", "/api/v1", "/api/v1/nothing-here", "/healthz?verbose=1"):
        get(page, page)
    return seen


def dump_database(admin_url: str, name: str, evidence: Evidence) -> int:
    """Every row of every table of database `name`, as JSON text. Returns the number of rows."""
    import psycopg

    rows = 0
    with psycopg.connect(f"{admin_url.rsplit('/', 1)[0]}/{name}", autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_type = 'BASE TABLE'")]
        for table in tables:
            text = "\n".join(r[0] for r in conn.execute(f"SELECT row_to_json(t)::text FROM {table} t"))
            rows += text.count("\n") + (1 if text else 0)
            evidence.add(f"database table {table}", text)
    return rows


# --- fixtures ---------------------------------------------------------------------------------------------


@pytest.fixture
def amqp_user() -> Iterator[tuple[str, Secret]]:
    """A RabbitMQ user made for this test, with a password holding a raw `@` and `:` (pika reads the URL's
    user-info up to its last `@`, as urllib does)."""
    if not shutil.which("rabbitmqctl"):
        _skip_or_fail("rabbitmqctl not installed: cannot make a RabbitMQ user with a known password")
    user = f"sw-e2e-{uuid.uuid4().hex[:8]}"
    secret = make_secret("AMQP password", "Am@", ":q!")

    def ctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120)

    made = ctl("add_user", user, secret.value)
    if made.returncode != 0:
        _skip_or_fail(f"rabbitmqctl add_user failed: {made.stderr.strip()}")
    try:
        assert ctl("set_permissions", "-p", "/", user, ".*", ".*", ".*").returncode == 0
        yield user, secret
    finally:
        ctl("delete_user", user)


@pytest.fixture
def fleece_image(tmp_path: Path) -> Path:
    """A small real qcow2 image: an ext4 file system (made by mkfs.ext4 -d) holding a Debian-like /etc."""
    if not (shutil.which("mkfs.ext4") or Path("/usr/sbin/mkfs.ext4").exists()) or not shutil.which("qemu-img"):
        _skip_or_fail("mkfs.ext4 and qemu-img are needed to make the fleece image (scripts/fleece/install-tools.sh)")
    root = tmp_path / "imgroot"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n')
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "hostname").write_text("e2e-host\n")
    images = tmp_path / "images"
    images.mkdir()
    mkfs = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
    subprocess.run([mkfs, "-q", "-F", "-d", str(root), str(tmp_path / "raw.img"), "8M"], check=True,
                   capture_output=True)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(tmp_path / "raw.img"), str(images / "disk.qcow2")],
                   check=True, capture_output=True)
    return images


@pytest.fixture
def range_server(fleece_image: Path) -> Iterator[str]:
    sys.path.insert(0, str(REPO / "scripts" / "fleece"))
    from rangeserver import serve

    srv, url = serve(str(fleece_image))
    yield url
    srv.shutdown()


def base_env(tmp_path: Path, config: Path, clouds: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "STACKWATCH_"))}
    xdg = str(tmp_path / "xdg")
    env.update(STACKWATCH_CONFIG=str(config), XDG_CONFIG_HOME=xdg, XDG_DATA_HOME=xdg)
    if clouds is not None:
        env["OS_CLIENT_CONFIG_FILE"] = str(clouds)
    return env


def publish_samples(url: str, exchange: str) -> list[str]:
    """Publish the real oslo notification samples on `exchange` as Nova does; their message ids."""
    import pika

    bodies = [p.read_bytes() for p in sorted((SAMPLES / "oslo_wire").glob("*.body.json"))]
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        for body in bodies:
            ch.basic_publish(exchange, "notifications.info", body,
                             pika.BasicProperties(content_type="application/json", delivery_mode=2))
    finally:
        conn.close()
    ids = []
    for body in bodies:
        doc = json.loads(body)
        inner = json.loads(doc["oslo.message"]) if "oslo.message" in doc else doc
        ids.append(inner["message_id"])
    return ids


def delete_broker_objects(url: str, queue: str, exchange: str | None = None) -> None:
    import pika

    with contextlib.suppress(Exception):
        conn = pika.BlockingConnection(pika.URLParameters(url))
        with contextlib.suppress(Exception):
            conn.channel().queue_delete(queue)
        if exchange:
            with contextlib.suppress(Exception):
                conn.channel().exchange_delete(exchange)
        conn.close()


# --- the end-to-end scan without devcloud -----------------------------------------------------------------


def test_serve_worker_refresh_fleece_leak_no_secret(tmp_path, pg_database, amqp_user, range_server):
    admin_url = pg_database
    db_name = admin_url.rsplit("/", 1)[1]
    user, amqp_pw = amqp_user
    db_pw = make_secret("database password", "Db@", ":x/%")
    cloud_pw = make_secret("clouds.yaml password", "Cl@", ":'x")
    fleece_pw = make_secret("fleece URL password", "Fl@", "")
    fleece_token = make_secret("fleece URL token", "Tk", "")
    secrets = [db_pw, amqp_pw, cloud_pw, fleece_pw, fleece_token]

    tag = uuid.uuid4().hex[:10]
    exchange, queue = f"{tag}-nova", f"stackwatch-e2e-{tag}"
    amqp_url = f"amqp://{user}:{amqp_pw.value}@127.0.0.1:5672/"
    db_url = f"postgresql://postgres:{quote(db_pw.value, safe='')}@127.0.0.1:5432/{db_name}"
    port = free_port()
    config = tmp_path / "stackwatch.yaml"
    config.write_text(yaml.safe_dump({
        "database": db_url,
        "data_dir": str(tmp_path / "data"),
        "api": {"host": "127.0.0.1", "port": port},
        "providers": [{
            "name": "e2e",
            "cloud": "e2e-cloud",
            "events": {"monitor": "amqp", "amqp": {"urls": [amqp_url], "exchanges": [exchange], "queue": queue}},
        }],
    }))
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"e2e-cloud": {
        "auth": {"auth_url": f"http://127.0.0.1:{free_port()}/v3", "username": "admin", "password": cloud_pw.value,
                 "project_name": "admin", "user_domain_name": "Default", "project_domain_name": "Default"},
        "region_name": "RegionOne", "identity_api_version": 3,
    }}}))
    env = base_env(tmp_path, config, clouds)
    debug_env = {**env, "STACKWATCH_LOG_LEVEL": "debug"}
    host_port = range_server.split("//", 1)[1].rstrip("/")
    fleece_url = f"http://fleece:{fleece_pw.value}@{host_port}/disk.qcow2?token={fleece_token.value}&v=1"
    missing_url = f"http://fleece:{fleece_pw.value}@{host_port}/missing.qcow2?token={fleece_token.value}"
    evidence = Evidence()
    logs = tmp_path / "logs"
    logs.mkdir()
    api = f"http://127.0.0.1:{port}"

    serve = Daemon("serve", ["serve", "--log-level", "debug"], env, logs)
    worker = None
    try:
        with httpx.Client(base_url=api, timeout=30) as client:
            wait_for("serve to answer /healthz", lambda: client.get("/healthz").status_code == 200, 120, [serve])
            worker = Daemon("worker catcher", ["worker", "catcher", "--provider", "e2e", "--config", str(config),
                                               "--log-level", "debug", "--stats-every", "1"], env, logs)
            time.sleep(3)  # both catchers declare the queue; messages published before would still wait there
            ids = publish_samples(amqp_url, exchange)
            stored = wait_for(
                "the published events in the API",
                lambda: (ev := client.get("/api/v1/events", params={"provider": "e2e", "limit": 1000}).json())
                and {e["message_id"] for e in ev} >= set(ids) and ev,
                120, [serve, worker],
            )
            assert run(evidence, "refresh", "refresh", "e2e", env=debug_env) == 2  # Keystone is a closed port
            assert run(evidence, "fleece", "fleece", fleece_url, missing_url, "--store", "--format", "json",
                       env=debug_env, timeout=300) == 2  # the missing image has no OS
            reports = json.loads(evidence.texts[-2][1])
            assert reports[0]["os"]["id"] == "debian" and reports[0]["hostname"] == "e2e-host"
            assert any("404" in e for e in reports[1]["errors"])
            assert run(evidence, "provider list", "provider", "list", "--format", "json", env=debug_env) == 0
            assert run(evidence, "db upgrade", "db", "upgrade", env=debug_env) == 0
            assert run(evidence, "db current", "db", "current", env=debug_env) == 0

            kept = client.get("/api/v1/fleece").json()
            kinds = [k["kind"] for k in client.get("/api/v1/inventory").json()]
            ids_for = {
                "message_id": [e["message_id"] for e in stored[:3]],
                "vm": sorted({e["vm_ref"] for e in stored if e["vm_ref"]})[:2],
                "host": sorted({e["host_ref"] for e in stored if e["host_ref"]})[:2],
                "project": sorted({e["project_id"] for e in stored if e["project_id"]})[:2],
                "provider": ["e2e"],
                "report_id": [str(r["id"]) for r in kept],
                "target": [r["target"] for r in kept],
                "kind": kinds[:3] + ["vm"],
                "ref": ["unknown-ref"],
            }
            seen = walk_api(client, evidence, ids_for)
            assert len(kept) == 2 and len(seen) >= 10
    finally:
        if worker is not None:
            worker.stop(evidence)
        serve.stop(evidence)
        delete_broker_objects(AMQP_ADMIN_URL, queue, exchange)
    rows = dump_database(admin_url, db_name, evidence)

    saved = evidence.save(tmp_path / "evidence.txt")
    leaks = evidence.leaks(secrets)
    assert leaks == [], f"{len(leaks)} secret(s) found (all output in {saved}):\n" + "\n".join(leaks[:40])
    assert reports[0]["target"] == f"http://fleece:***@{host_port}/disk.qcow2?token=***&v=1"  # still useful
    # the scan looked at real output: debug lines of every process, the events, the kept reports
    assert any('"level":"debug"' in ln for ln in evidence.lines("serve stderr"))
    assert any('"level":"debug"' in ln for ln in evidence.lines("worker catcher stderr"))
    assert any('"level":"debug"' in ln for ln in evidence.lines("refresh stderr"))
    assert any("cannot authenticate" in ln for ln in evidence.lines("refresh"))
    assert rows > len(ids)
