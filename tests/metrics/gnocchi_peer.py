"""A real Gnocchi 4.7.1 on loopback for the metrics tests and bench (PostgreSQL indexer, file storage, Redis
incoming, basic auth, gunicorn API + metricd), installed from PyPI into a venv cached under
~/.cache/stackwatch/gnocchi/ (the recipe in ../shared/reference/gnocchi/ is where every setting comes from).

`python tests/metrics/gnocchi_peer.py install` installs the venv (`.ci/run` runs it in the background); the
test fixtures wait on the same lock, so a session that starts early waits for the install instead of racing it.
Each `GnocchiPeer` has its own database, storage folder, Redis db and free port, and stops what it started.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import requests

CACHE = Path(os.environ.get("STACKWATCH_GNOCCHI_CACHE", Path.home() / ".cache" / "stackwatch" / "gnocchi"))
VENV = CACHE / "venv"
CONSTRAINTS = Path(__file__).resolve().parents[1] / "data" / "gnocchi" / "constraints-gnocchi.txt"
PG_ADMIN = os.environ.get("STACKWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
#: Redis dbs the peers may use; each running peer holds one by an flock (two Gnocchis on one db share their
#: incoming sacks, and each one's metricd takes the other's measures)
REDIS_DBS = range(int(os.environ.get("STACKWATCH_GNOCCHI_REDIS_DB", "10")), 16)

WSGI = """import os
from gnocchi import opts, service
from gnocchi.rest import app
opts.set_defaults()
conf = service.prepare_service(args=["--config-file", os.environ["GNOCCHI_CONF"]])
application = app.load_app(conf)
"""

CONF = """[DEFAULT]
debug = false
coordination_url = file://{root}/data/locks
parallel_operations = 2

[api]
auth_mode = basic
host = 127.0.0.1
port = {port}
max_limit = 1000

[indexer]
url = postgresql://postgres@127.0.0.1:5432/{database}

[storage]
driver = file
file_basepath = {root}/data/storage

[incoming]
driver = redis
redis_url = redis://127.0.0.1:6379?db={redis_db}

[metricd]
workers = 1
metric_processing_delay = 1
greedy = true
metric_reporting_delay = -1
"""


def install(log=sys.stderr) -> Path:  # noqa: ANN001
    """The Gnocchi venv, installed once (pip, constraints from the recipe) under an exclusive lock."""
    return install_venv(VENV, CONSTRAINTS, ["gnocchi[postgresql,redis]==4.7.1", "gunicorn"], "4.7.1", log)


def install_venv(venv: Path, constraints: Path, packages: list[str], version: str, log=sys.stderr) -> Path:  # noqa: ANN001
    """`venv` with `packages` from PyPI, once: a marker file says it is complete; a lock per venv keeps
    two sessions (or `.ci/run`'s background install and a test) from installing it at the same time."""
    marker = venv / f".stackwatch-installed-{version}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"install-{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return venv
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, stdout=log, stderr=log)
        pip = [str(venv / "bin" / "pip"), "install", "-q"]
        subprocess.run([*pip, "-U", "pip", "wheel", "setuptools"], check=True, stdout=log, stderr=log)
        subprocess.run([*pip, "-c", str(constraints), *packages], check=True, stdout=log, stderr=log)
        marker.write_text("ok\n")
    return venv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _psql(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(sql)


def _claim_redis_db():  # noqa: ANN202
    for db in REDIS_DBS:
        lock = open(f"/tmp/stackwatch-gnocchi-redis-{db}.lock", "w")  # noqa: SIM115 - held while the peer runs
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        return db, lock
    raise RuntimeError(f"every Redis db in {REDIS_DBS} is held by a running Gnocchi peer")


class GnocchiPeer:
    """One Gnocchi (API + metricd) in `root`; `start()` waits until metricd has joined (GET /v1/status 200)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = f"metrics_gnocchi_{uuid.uuid4().hex[:8]}"
        self.redis_db, self._redis_lock = _claim_redis_db()
        self.api: subprocess.Popen | None = None
        self.metricd: subprocess.Popen | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def setup(self) -> GnocchiPeer:
        install()
        for sub in ("etc", "log", "data"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "etc" / "gnocchi.conf").write_text(CONF.format(
            root=self.root, port=self.port, database=self.database, redis_db=self.redis_db))
        (self.root / "etc" / "gnocchi_wsgi.py").write_text(WSGI)
        _psql(f'CREATE DATABASE "{self.database}"')
        self._flush_redis()
        subprocess.run([str(VENV / "bin" / "gnocchi-upgrade"), "--config-file", str(self.conf)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=300)
        return self

    @property
    def conf(self) -> Path:
        return self.root / "etc" / "gnocchi.conf"

    def start(self, timeout: float = 120) -> GnocchiPeer:
        import requests

        self.start_api(timeout)
        if self.metricd is None:
            self.metricd = subprocess.Popen(
                [str(VENV / "bin" / "gnocchi-metricd"), "--config-file", str(self.conf)],
                stdout=self._log("metricd"), stderr=subprocess.STDOUT,
                env={**os.environ, "VIRTUAL_ENV": str(VENV)}, start_new_session=True)
        self._wait(lambda: requests.get(self.url + "/v1/status", auth=("admin", ""), timeout=5).status_code == 200,
                   timeout, "metricd never joined")
        return self

    def start_api(self, timeout: float = 120) -> None:
        import requests

        if self.api is None:
            self.api = subprocess.Popen(
                [str(VENV / "bin" / "gunicorn"), "--no-control-socket", "--chdir", str(self.root / "etc"),
                 "-b", f"127.0.0.1:{self.port}", "-w", "1", "--threads", "4", "--timeout", "120",
                 "gnocchi_wsgi:application"],
                stdout=self._log("api"), stderr=subprocess.STDOUT,
                env={**os.environ, "GNOCCHI_CONF": str(self.conf)}, start_new_session=True)
        self._wait(lambda: requests.get(self.url + "/healthcheck", timeout=5).status_code == 200, timeout,
                   "API never answered /healthcheck")

    def stop_api(self) -> None:
        self._stop(self.api)
        self.api = None

    def stop(self) -> None:
        self._stop(self.api)
        self._stop(self.metricd)
        self.api = self.metricd = None

    def teardown(self) -> None:
        self.stop()
        try:
            _psql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            self._flush_redis()
            self._redis_lock.close()
            shutil.rmtree(self.root / "data", ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------------------
    def session(self) -> requests.Session:
        import requests

        s = requests.Session()
        s.auth = ("admin", "")
        s.headers["Content-Type"] = "application/json"
        return s

    def _log(self, name: str):  # noqa: ANN202 - a file the child process inherits
        return open(self.root / "log" / f"{name}.log", "a")  # noqa: SIM115 - closed with the process

    def _flush_redis(self) -> None:
        """FLUSHDB on our Redis db, in plain RESP (the redis client is not a stackwatch dependency)."""
        with socket.create_connection(("127.0.0.1", 6379), timeout=5) as sock:
            sock.sendall(f"SELECT {self.redis_db}\r\nFLUSHDB\r\n".encode())
            reply = b""
            while reply.count(b"\r\n") < 2:
                reply += sock.recv(64)
            if b"-ERR" in reply:
                raise RuntimeError(f"redis: {reply!r}")

    def _wait(self, check, timeout: float, what: str) -> None:  # noqa: ANN001
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in (self.api, self.metricd):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"gnocchi process exited ({proc.args[0]}): see {self.root / 'log'}")
            try:
                if check():
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{what} within {timeout} s: see {self.root / 'log'}")

    @staticmethod
    def _stop(proc: subprocess.Popen | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


if __name__ == "__main__":
    if sys.argv[1:] == ["install"]:
        print(install(sys.stdout))
    else:
        sys.exit("usage: gnocchi_peer.py install")
