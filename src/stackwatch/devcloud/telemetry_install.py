"""Install the telemetry test peers (Panko 10 API, Ceilometer 27 notification agent) into cached venvs.

From the shared telemetry recipe (run-tested on Debian 12 / Python 3.11): Panko 10 only works on 3.11 with four
pins (SQLAlchemy 1.3, oslo.db 8.5.2, alembic<1.8, oslo.policy 3.7.0), and its wheel lacks ``api_paste.ini``, so
that file is taken from the sdist. Stdlib only, so ``.ci/run`` can start it in the background before the venv
exists. Each venv gets a mark file written last; a half-built venv is rebuilt.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PANKO_PINS = ("SQLAlchemy==1.3.24", "oslo.db==8.5.2", "alembic<1.8", "oslo.policy==3.7.0")
VENVS: dict[str, tuple[str, ...]] = {
    "panko": ("panko==10.0.0", "psycopg2-binary"),
    "ceilometer": ("ceilometer==27.0.0",),
}
_MARK = ".stackwatch-installed"


def home() -> Path:
    """``~/.cache/stackwatch/telemetry`` (or ``$STACKWATCH_TELEMETRY_HOME``)."""
    env = os.environ.get("STACKWATCH_TELEMETRY_HOME")
    return Path(env) if env else Path.home() / ".cache" / "stackwatch" / "telemetry"


def venv(name: str) -> Path:
    return home() / "venvs" / name


def api_paste(root: Path | None = None) -> Path:
    """Panko's ``api_paste.ini`` as the sdist ships it."""
    return (root or home()) / "panko-api_paste.ini"


def _stamp(name: str) -> str:
    return " ".join((sys.version.split()[0], *VENVS[name], *(PANKO_PINS if name == "panko" else ())))


def installed(name: str) -> bool:
    mark = venv(name) / _MARK
    ok = mark.is_file() and mark.read_text() == _stamp(name) + "\n"
    return ok and (name != "panko" or api_paste().is_file())


def _base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def _run(cmd: list[str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    if rc != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (exit {rc}); log: {log}\n{tail}")


def _panko_paste(log: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _run([str(venv("panko") / "bin" / "python"), "-m", "pip", "download", "-q", "--no-deps",
              "--no-binary", ":all:", "-d", tmp, "panko==10.0.0"], log)
        sdist = next(Path(tmp).glob("panko-10.0.0.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = tar.extractfile("panko-10.0.0/etc/panko/api_paste.ini")
            assert member is not None
            api_paste().write_bytes(member.read())


def ensure(name: str, say=lambda _m: None) -> bool:
    """Build venv ``name`` unless its mark says it is there; True when it installed."""
    if installed(name):
        return False
    home().mkdir(parents=True, exist_ok=True)
    with (home() / f"install-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed(name):
            return False
        target = venv(name)
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        log = home() / f"install-{name}.log"
        log.write_text("")
        say(f"installing {name} into {target}")
        _run([_base_python(), "-m", "venv", str(target)], log)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q"]
        if name == "panko":
            pins = home() / "panko-constraints.txt"
            pins.write_text("\n".join(PANKO_PINS) + "\n")
            _run([*pip, *VENVS[name], "-c", str(pins)], log)
            _panko_paste(log)
        else:
            _run([*pip, *VENVS[name]], log)
        (target / _MARK).write_text(_stamp(name) + "\n")
        say(f"installed {name}")
        return True


def main() -> None:
    """``python -m stackwatch.devcloud.telemetry_install``: fill the cache (both venvs in parallel)."""
    def say(msg: str) -> None:
        print(f"telemetry: {msg}", flush=True)

    with ThreadPoolExecutor(max_workers=len(VENVS)) as pool:
        for name, fut in {n: pool.submit(ensure, n, say) for n in VENVS}.items():
            print(f"telemetry: {name} {'installed' if fut.result() else 'already installed'} in {venv(name)}")


if __name__ == "__main__":
    main()
