"""The worker process's side of isolation (worker.py is the caller's side): one single-threaded process
with the fleece modules loaded forks one child per target.

Requests come as JSON lines on stdin (`{"id", "target", "opts", "limits", "env", "cwd"}`), answers go as JSON lines on
stdout (`{"id", "status", "payload"}`); anything else printed goes to stderr. Each child caps its address
space (RLIMIT_AS: its size at fork + `memory_mib`) and CPU time, parses, and writes its answer to a pipe
of its own; the zygote kills it at its deadline, reaps it, and turns a signal or an exit without an answer
into an error. A target kind's client library (requests, paramiko, openstacksdk) is imported here the
first time that kind comes, before the fork: children start in milliseconds and have it mapped before
their cap. When stdin closes (the caller is done, or died), children still running are killed and reaped,
and the zygote exits: it never leaves a process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import time
from dataclasses import dataclass, field

from stackwatch.fleece.targets import SourceOptions

PRELOAD = ["stackwatch.fleece.analyze", "pyvsgpt", "pyvslvm", "pyfsext", "pyfsxfs"]
PRELOAD_BY_KIND = {
    "http": ["stackwatch.fleece.http", "requests"],
    "https": ["stackwatch.fleece.http", "requests"],
    "glance": ["stackwatch.fleece.http", "requests", "openstack"],
    "swift": ["stackwatch.fleece.http", "requests", "openstack"],
    "sftp": ["stackwatch.fleece.sftp", "paramiko"],
}


@dataclass
class _Child:
    id: int
    pid: int
    deadline: float
    limits: dict
    chunks: list[bytes] = field(default_factory=list)
    timed_out: bool = False


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def analyse(target: str, opts: SourceOptions, memory_mib: int, seconds: float) -> tuple[str, object]:
    """("ok", report) or ("error", message), inside the limits (in the forked child)."""
    from stackwatch.fleece.analyze import analyze
    from stackwatch.fleece.errors import FleeceError
    from stackwatch.fleece.targets import open_source

    cap = _vm_size() + memory_mib * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    cpu = int(seconds) + 5
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
        return "error", f"memory limit reached ({memory_mib} MiB): the image asks for more than any real disk needs"
    except FleeceError as e:
        return "error", str(e)
    except Exception as e:  # noqa: BLE001 - anything else is still the image's fault, not the caller's
        return "error", f"internal error while parsing: {type(e).__name__}: {e}"


def _fork(req: dict, children: dict[int, _Child], answer_fd: int) -> None:
    for mod in PRELOAD_BY_KIND.get(req["target"].split(":", 1)[0], []):
        with contextlib.suppress(ImportError):  # not installed: the child says so, in its report
            __import__(mod)
    opts = SourceOptions(**{**req["opts"], "backing_dirs": tuple(req["opts"]["backing_dirs"])})
    limits = req["limits"]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            for fd in (0, answer_fd, r, *children):
                os.close(fd)
            os.environ.clear()  # the caller's, as they are for this target (the zygote's are from its start)
            os.environ.update(req["env"])
            os.chdir(req["cwd"])
            status, payload = analyse(req["target"], opts, limits["memory_mib"], limits["seconds"])
            data = json.dumps([status, payload]).encode()
            while data:
                data = data[os.write(w, data) :]
        except MemoryError:
            code = 3  # no room left even to answer: the zygote reports the memory limit
        except BaseException:  # noqa: BLE001 - a child must end here, whatever happened
            code = 70
        finally:
            os._exit(code)
    os.close(w)
    children[r] = _Child(req["id"], pid, time.monotonic() + limits["seconds"], limits)


def _outcome(child: _Child, status: int) -> tuple[str, object]:
    limits = child.limits
    if child.timed_out:
        return "error", f"time limit reached ({limits['seconds']:g} s); the worker was killed"
    if child.chunks:
        try:
            answer, payload = json.loads(b"".join(child.chunks))
            return answer, payload
        except ValueError:
            pass
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        hint = " (CPU time limit)" if sig == signal.SIGXCPU else ""
        return "error", f"worker died on {signal.Signals(sig).name}{hint} while parsing the image"
    code = os.waitstatus_to_exitcode(status)
    if code == 3:
        return "error", f"memory limit reached ({limits['memory_mib']} MiB) before the worker could answer"
    return "error", f"worker exited with code {code} without a report"


def _finish(fd: int, children: dict[int, _Child], answer) -> None:
    child = children.pop(fd)
    os.close(fd)
    _, status = os.waitpid(child.pid, 0)
    answer_status, payload = _outcome(child, status)
    try:
        answer.write(json.dumps({"id": child.id, "status": answer_status, "payload": payload}) + "\n")
        answer.flush()
    except BrokenPipeError:  # the caller is gone (we are only reaping what it left)
        pass


def main() -> None:
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller decides, and ends us by closing stdin
    for mod in PRELOAD:
        __import__(mod)
    children: dict[int, _Child] = {}
    pending, reading = b"", True
    while reading or children:
        now = time.monotonic()
        deadline = min((c.deadline for c in children.values() if not c.timed_out), default=None)
        wait = None if deadline is None else max(0.0, deadline - now)
        ready, _, _ = select.select([*children, *([0] if reading else [])], [], [], wait)
        for fd in ready:
            if fd == 0:
                data = os.read(0, 1 << 16)
                if not data:  # the caller is gone: nobody wants what is still running
                    reading = False
                    for c in children.values():
                        c.timed_out = True
                        os.kill(c.pid, signal.SIGKILL)
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    _fork(json.loads(line), children, answer.fileno())
            else:
                data = os.read(fd, 1 << 16)
                if data:
                    children[fd].chunks.append(data)
                else:
                    _finish(fd, children, answer)
        now = time.monotonic()
        for c in children.values():
            if now >= c.deadline and not c.timed_out:
                c.timed_out = True
                os.kill(c.pid, signal.SIGKILL)  # its pipe closes: reaped and answered on the next turn
