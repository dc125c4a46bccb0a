"""Isolation: each target is parsed in a child process with an address-space and a time limit.

Images are hostile input for C libraries (libyal) and for our parsers. A child that runs out of
memory, overstays, or dies on a signal becomes an error string in that target's report; the caller
(CLI, API server) never shares its memory or its fate.

Children fork from a zygote (zygote.py): one `python -c` process per caller, started on the first
target, with the fleece modules loaded, so a child starts in milliseconds and never inherits the
caller's threads. It is ours, not multiprocessing's forkserver (before): that one re-ran the caller's
`__main__` in every child, which for the `stackwatch` console script imports the whole CLI (0.9 s of a
1.5 s fleece of a small image, bench/fleece.md), and it and its resource tracker outlived the command as
two defunct processes. The zygote is ended and reaped when the caller exits (atexit) or calls shutdown();
if the caller dies, its closed pipe ends the zygote, which kills and reaps its children.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass

from stackwatch.fleece.report import empty_report
from stackwatch.fleece.targets import SourceOptions

_ZYGOTE = "from stackwatch.fleece.zygote import main; main()"


@dataclass(frozen=True)
class Limits:
    memory_mib: int = 1024  # on top of what the child has mapped when it starts
    seconds: float = 120.0


def _env() -> dict[str, str]:
    """The caller's environment, with the directory this stackwatch was imported from first on the path,
    so the zygote runs the same code (a source checkout, a test tree) as the caller."""
    import stackwatch

    here = os.path.dirname(os.path.dirname(os.path.abspath(stackwatch.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env


class _Zygote:
    """The caller's end: requests go out under a lock, a reader thread hands each answer to its Future."""

    def __init__(self) -> None:
        self.pid = os.getpid()  # a forked caller starts its own
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_env(),
            start_new_session=True,  # a terminal's Ctrl-C reaches the caller, which then ends us
        )
        self._lock = threading.Lock()
        self._waiting: dict[int, Future] = {}
        self._ids = itertools.count()
        threading.Thread(target=self._read, name="fleece-zygote", daemon=True).start()

    def submit(self, target: str, opts: SourceOptions, limits: Limits) -> Future:
        fut: Future = Future()
        with self._lock:
            rid = next(self._ids)
            self._waiting[rid] = fut
            line = {
                "id": rid,
                "target": target,
                "opts": asdict(opts),
                "limits": asdict(limits),
                "env": dict(os.environ),  # as the caller has them now (OS_CLOUD, ssh config, ...), as does
                "cwd": os.getcwd(),  # a relative target path
            }
            try:
                self.proc.stdin.write((json.dumps(line) + "\n").encode())  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
            except (BrokenPipeError, ValueError):
                self._waiting.pop(rid)
                fut.set_result(("error", f"the fleece worker process is gone (exit code {self.proc.poll()})"))
        return fut

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            msg = json.loads(line)
            with self._lock:
                fut = self._waiting.pop(msg["id"])
            fut.set_result((msg["status"], msg["payload"]))
        self.proc.wait()
        with self._lock:
            left, self._waiting = list(self._waiting.values()), {}
        for fut in left:
            fut.set_result(("error", f"the fleece worker process ended (exit code {self.proc.returncode})"))

    def alive(self) -> bool:
        return self.pid == os.getpid() and self.proc.poll() is None

    def close(self) -> None:
        """Close its stdin (it kills what still runs, reaps, and exits) and wait for it."""
        if self.pid != os.getpid():
            return
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_zygote: _Zygote | None = None
_zygote_lock = threading.Lock()


def _get() -> _Zygote:
    global _zygote
    with _zygote_lock:
        if _zygote is None or not _zygote.alive():
            if _zygote is None:
                atexit.register(shutdown)
            _zygote = _Zygote()
        return _zygote


def shutdown() -> None:
    """End the zygote and wait for it (atexit does this; a long-lived caller may do it sooner)."""
    global _zygote
    with _zygote_lock:
        z, _zygote = _zygote, None
    if z is not None:
        z.close()


def run_isolated(target: str, opts: SourceOptions = SourceOptions(), limits: Limits = Limits()) -> dict:
    """The report for one target; never raises for anything the image does."""
    started = time.monotonic()
    fut = _get().submit(target, opts, limits)
    try:  # the zygote answers by the deadline (it kills the child then); the margin is for a wedged zygote
        status, payload = fut.result(timeout=limits.seconds + 60)
    except FutureTimeout:
        status, payload = "error", f"the fleece worker process did not answer within {limits.seconds + 60:g} s"
    if status == "ok":
        return payload  # type: ignore[no-any-return]
    rep = empty_report(target)
    rep["errors"].append(payload)
    rep["io"] = {"seconds": round(time.monotonic() - started, 4)}
    return rep
