"""Install the OpenStack services once into cached virtualenvs (one per service group), keyed by spec.stamp().

Ported from the real-openstack recipe's install.sh (stackwatch shared reference, run-tested on Debian 12 /
Python 3.11): uWSGI is compiled once into a wheel and reused by every venv; neutron 29's MySQL-only
migration d553edeb540f is guarded so it runs on PostgreSQL.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stackwatch.devcloud import spec
from stackwatch.devcloud.errors import InstallError
from stackwatch.devcloud.layout import Layout

Report = Callable[[str], None]

_NEUTRON_PATCH_MARK = "stackwatch devcloud patch"


def is_installed(layout: Layout) -> bool:
    return layout.stamp_file.is_file() and layout.stamp_file.read_text() == spec.stamp() + "\n"


def base_python() -> str:
    """The interpreter the venvs are built from: the base of the running one (not a venv's python)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _run(cmd: list[str], log: Path, what: str) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise InstallError(f"{what} failed (exit {proc.returncode}); log: {log}\n{tail}")


def _uwsgi_wheel(layout: Layout, report: Report) -> None:
    layout.wheels.mkdir(parents=True, exist_ok=True)
    version = spec.UWSGI.split("==")[1]
    if any(layout.wheels.glob(f"[uU][wW][sS][gG][iI]-{version}-*.whl")):
        return
    report("compiling uWSGI (about 2 minutes, once)")
    _run(
        [base_python(), "-m", "pip", "wheel", "--no-deps", "-w", str(layout.wheels), spec.UWSGI],
        layout.install_logs / "uwsgi-wheel.log",
        "building the uWSGI wheel (needs gcc and python3-dev)",
    )


def _venv(layout: Layout, venv: spec.VenvSpec, report: Report) -> None:
    target = layout.venv(venv.name)
    log = layout.install_logs / f"{venv.name}.log"
    log.write_text("")
    report(f"installing {venv.name}: {' '.join(r for r in venv.requirements if r != spec.UWSGI)}")
    _run([base_python(), "-m", "venv", str(target)], log, f"creating the {venv.name} venv")
    pip = [str(target / "bin" / "python"), "-m", "pip"]
    _run(pip + ["install", "-q", "-U", "pip"], log, f"upgrading pip in the {venv.name} venv")
    reqs = [r for r in venv.requirements if r != spec.UWSGI]
    _run(pip + ["install", *reqs], log, f"pip install into the {venv.name} venv")


def _install_uwsgi(layout: Layout, venv: spec.VenvSpec) -> None:
    if spec.UWSGI not in venv.requirements:
        return
    pip = [str(layout.bin(venv.name, "python")), "-m", "pip"]
    _run(
        pip + ["install", "--no-index", "--find-links", str(layout.wheels), spec.UWSGI],
        layout.install_logs / f"{venv.name}.log",
        f"installing uWSGI into the {venv.name} venv",
    )


def patch_neutron(layout: Layout) -> bool:
    """Guard neutron migration d553edeb540f (``ALTER TABLE tags CONVERT TO CHARACTER SET``, MySQL-only)."""
    site = layout.venv("neutron") / "lib"
    found = list(
        site.glob("python3*/site-packages/neutron/db/migration/alembic_migrations/versions/*/expand/d553edeb540f_*.py")
    )
    for f in found:
        text = f.read_text()
        if _NEUTRON_PATCH_MARK in text:
            continue
        guarded = (
            "def upgrade():\n"
            f"    if op.get_bind().dialect.name != 'mysql':  # {_NEUTRON_PATCH_MARK}: MySQL-only DDL\n"
            "        return\n"
        )
        if "def upgrade():\n" not in text:
            raise InstallError(f"cannot patch {f}: no 'def upgrade():' line")
        f.write_text(text.replace("def upgrade():\n", guarded, 1))
    return bool(found)


def ensure_installed(layout: Layout, report: Report = lambda _msg: None) -> bool:
    """Install every venv unless the stamp says they are there. Returns True when it installed something."""
    if is_installed(layout):
        return False
    layout.home.mkdir(parents=True, exist_ok=True)
    with (layout.home / "install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second `up` waits for the first install, then reuses it
        if is_installed(layout):
            return False
        if layout.venvs.exists():
            shutil.rmtree(layout.venvs)  # a half-finished install: start over
        layout.venvs.mkdir(parents=True)
        layout.install_logs.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=len(spec.VENVS) + 1) as pool:
            futures = [pool.submit(_uwsgi_wheel, layout, report)]
            futures += [pool.submit(_venv, layout, v, report) for v in spec.VENVS]
            for f in futures:
                f.result()
        for v in spec.VENVS:
            _install_uwsgi(layout, v)
        patch_neutron(layout)
        layout.stamp_file.write_text(spec.stamp() + "\n")
        report(f"installed into {layout.venvs}")
        return True


_OPTIONAL_MARK = ".stackwatch-installed"


def optional_installed(layout: Layout, name: str) -> bool:
    mark = layout.venv(name) / _OPTIONAL_MARK
    return mark.is_file() and mark.read_text() == spec.optional_stamp(name) + "\n"


def ensure_optional(layout: Layout, name: str, report: Report = lambda _msg: None) -> bool:
    """Install one optional service's venv (e.g. Swift) unless its own stamp says it is there.

    Separate from ensure_installed, with its own lock, so the core install is never redone for it and the
    CI pre-install can fill both at once. Returns True when it installed.
    """
    if name not in spec.OPTIONAL_VENVS:
        raise InstallError(f"unknown optional devcloud service {name!r} (known: {', '.join(spec.OPTIONAL_VENVS)})")
    if optional_installed(layout, name):
        return False
    layout.home.mkdir(parents=True, exist_ok=True)
    with (layout.home / f"install-{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if optional_installed(layout, name):
            return False
        target = layout.venv(name)
        if target.exists():
            shutil.rmtree(target)  # interrupted before the mark was written: start over
        target.parent.mkdir(parents=True, exist_ok=True)
        layout.install_logs.mkdir(parents=True, exist_ok=True)
        # venvs are not relocatable (absolute shebangs), so it is built in place; the mark is written last
        _venv(layout, spec.OPTIONAL_VENVS[name], report)
        (target / _OPTIONAL_MARK).write_text(spec.optional_stamp(name) + "\n")
        report(f"installed {name} into {target}")
        return True


def main(argv: list[str] | None = None) -> None:
    """``python -m stackwatch.devcloud.installer [--core-only]``: fill the install cache (stdlib only; for
    the CI pre-install). Optional services (Swift: about 20 s, 120 MB) install in parallel with the core
    venvs, so a test that asks for them later finds them ready."""
    args = sys.argv[1:] if argv is None else argv
    layout = Layout()

    def say(msg: str) -> None:
        print(f"devcloud: {msg}", flush=True)

    optional = [] if "--core-only" in args else list(spec.OPTIONAL_VENVS)
    with ThreadPoolExecutor(max_workers=1 + len(optional)) as pool:
        core = pool.submit(ensure_installed, layout, say)
        extras = {name: pool.submit(ensure_optional, layout, name, say) for name in optional}
        installed = core.result()
        print(f"devcloud: {'installed' if installed else 'already installed'} in {layout.venvs}")
        for name, fut in extras.items():
            print(f"devcloud: {name} {'installed' if fut.result() else 'already installed'} in {layout.venv(name)}")


if __name__ == "__main__":
    main()
