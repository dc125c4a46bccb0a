"""Isolation: each target is parsed in a child interpreter with an address-space and a time limit.

Images are hostile input for C libraries (libyal) and for our parsers. A child that runs out of
memory, overstays, or dies on a signal becomes an error string in that target's report; the caller
(CLI, API server) never shares its memory or its fate.

The child is a fresh `python -c` (subprocess), told its target on stdin and answering with JSON on its
stdout. Why not multiprocessing (a forkserver, before): its children re-ran the caller's `__main__`, and
for the `stackwatch` console script that imports the whole CLI, 0.9 s of a 1.5 s fleece of a small image
(bench/fleece.md); and the forkserver and its resource tracker outlived the command as two defunct
processes. A subprocess imports only the fleece modules and the one client library its target needs
(about 0.1 s), never inherits the caller's threads (it is exec'd, not forked), and is always waited for.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from stackwatch.fleece.report import empty_report
from stackwatch.fleece.targets import SourceOptions

# what the child imports before its memory cap, by target kind: libraries are mapped before the cap
_PRELOAD = ["pyvsgpt", "pyvslvm", "pyfsext", "pyfsxfs"]
_PRELOAD_BY_KIND = {
    "http": ["requests"],
    "https": ["requests"],
    "glance": ["requests"],
    "swift": ["requests"],
    "sftp": ["paramiko"],
}
_CHILD = "from stackwatch.fleece.worker import child_main; child_main()"


@dataclass(frozen=True)
class Limits:
    memory_mib: int = 1024  # on top of what the child has mapped when it starts
    seconds: float = 120.0


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _analyse(target: str, opts: SourceOptions, limits: Limits) -> tuple[str, object]:
    """("ok", report) or ("error", message), inside the limits (the child's side)."""
    from stackwatch.fleece.analyze import analyze
    from stackwatch.fleece.errors import FleeceError
    from stackwatch.fleece.targets import open_source

    for mod in _PRELOAD + _PRELOAD_BY_KIND.get(target.split(":", 1)[0], []):
        __import__(mod)
    cap = _vm_size() + limits.memory_mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    cpu = int(limits.seconds) + 5
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    try:
        src = open_source(target, opts)
        try:
            rep = analyze(src.reader, target, src.open_backing)
            rep["io"] = src.io()
        finally:
            src.close()
        return "ok", rep
    except MemoryError:
        return "error", (
            f"memory limit reached ({limits.memory_mib} MiB): the image asks for more than any real disk needs"
        )
    except FleeceError as e:
        return "error", str(e)
    except Exception as e:  # noqa: BLE001 - anything else is still the image's fault, not the caller's
        return "error", f"internal error while parsing: {type(e).__name__}: {e}"


def child_main() -> None:
    """The child: a request as JSON on stdin, the answer as JSON on stdout (anything else printed goes to
    stderr, so a library's chatter cannot spoil the answer)."""
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills us when it is interrupted
    req = json.load(sys.stdin)
    opts = SourceOptions(**{**req["opts"], "backing_dirs": tuple(req["opts"]["backing_dirs"])})
    status, payload = _analyse(req["target"], opts, Limits(**req["limits"]))
    json.dump([status, payload], answer)
    answer.close()


def _env() -> dict[str, str]:
    """The caller's environment, with the directory this stackwatch was imported from first on the path,
    so the child runs the same code (a source checkout, a test tree) as the caller."""
    import stackwatch

    here = os.path.dirname(os.path.dirname(os.path.abspath(stackwatch.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


def _outcome(out: bytes, code: int) -> tuple[str, object]:
    if out:
        try:
            status, payload = json.loads(out)
            return status, payload
        except ValueError:
            return "error", f"worker sent an unreadable answer (exit code {code})"
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (CPU time limit)" if -code == signal.SIGXCPU else ""
        return "error", f"worker died on {name}{hint} while parsing the image"
    return "error", f"worker exited with code {code} without a report"


def run_isolated(target: str, opts: SourceOptions = SourceOptions(), limits: Limits = Limits()) -> dict:
    """The report for one target; never raises for anything the image does. The child is always reaped,
    also when the caller is interrupted (Ctrl-C): no process outlives this call."""
    started = time.monotonic()
    request = json.dumps({"target": target, "opts": asdict(opts), "limits": asdict(limits)}).encode()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=_env(),
        start_new_session=True,  # a terminal's Ctrl-C goes to us; we end the child
    )
    try:
        out, _ = proc.communicate(request, timeout=limits.seconds)
        status, payload = _outcome(out, proc.returncode)
    except subprocess.TimeoutExpired:
        status, payload = "error", f"time limit reached ({limits.seconds:g} s); the worker was killed"
    finally:
        if proc.returncode is None:
            proc.kill()
            proc.communicate()  # waits for it and closes the pipes
    if status == "ok":
        return payload  # type: ignore[return-value]
    rep = empty_report(target)
    rep["errors"].append(payload)
    rep["io"] = {"seconds": round(time.monotonic() - started, 4)}
    return rep
