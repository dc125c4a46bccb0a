"""Isolation: each target is parsed in a child process with an address-space and a time limit.

Images are hostile input for C libraries (libyal) and for our parsers. A child that runs out of
memory, overstays, or dies on a signal becomes an error string in that target's report; the caller
(CLI, API server) never shares its memory or its fate. Children fork from a forkserver that has the
fleece modules loaded, so a child starts in milliseconds and never inherits the caller's threads.
"""

from __future__ import annotations

import multiprocessing
import resource
import signal
import time
from dataclasses import dataclass

from stackwatch.fleece.analyze import empty_report
from stackwatch.fleece.targets import SourceOptions

# loaded once in the forkserver: children start fast, and libraries are mapped before the memory cap
_PRELOAD = [
    "stackwatch.fleece.analyze",
    "stackwatch.fleece.targets",
    "stackwatch.fleece.http",
    "pyvsgpt",
    "pyvslvm",
    "pyfsext",
    "pyfsxfs",
    "requests",
]


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


def _child(conn, target: str, opts: SourceOptions, limits: Limits) -> None:
    from stackwatch.fleece.analyze import analyze
    from stackwatch.fleece.errors import FleeceError
    from stackwatch.fleece.targets import open_source

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; Ctrl-C must reach its cleanup
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
        conn.send(("ok", rep))
    except MemoryError:
        conn.send(
            (
                "error",
                f"memory limit reached ({limits.memory_mib} MiB): the image asks for more than any real disk needs",
            )
        )
    except FleeceError as e:
        conn.send(("error", str(e)))
    except Exception as e:  # noqa: BLE001 - anything else is still the image's fault, not the caller's
        conn.send(("error", f"internal error while parsing: {type(e).__name__}: {e}"))
    finally:
        conn.close()


def _context():
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def run_isolated(target: str, opts: SourceOptions = SourceOptions(), limits: Limits = Limits()) -> dict:
    """The report for one target; never raises for anything the image does."""
    ctx = _context()
    started = time.monotonic()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, target, opts, limits), daemon=True)
    proc.start()
    send.close()
    status, payload = "error", None
    try:
        if recv.poll(limits.seconds):
            status, payload = recv.recv()
        else:
            payload = f"time limit reached ({limits.seconds:g} s); the worker was killed"
    except EOFError:
        proc.join(2)
        code = proc.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (CPU time limit)" if -code == signal.SIGXCPU else ""
            payload = f"worker died on {name}{hint} while parsing the image"
        else:
            payload = f"worker exited with code {code} without a report"
    finally:
        recv.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
    if status == "ok":
        return payload
    rep = empty_report(target)
    rep["errors"].append(payload)
    rep["io"] = {"seconds": round(time.monotonic() - started, 4)}
    return rep
