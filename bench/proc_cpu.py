"""CPU time per process name on this machine over a stretch of a benchmark (Linux /proc).

A drain shares two cores with RabbitMQ and PostgreSQL; which process spends what per message says which one
sets the pace. Processes that start and end inside the stretch are missed (a drain's are all long-lived).
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def snapshot() -> dict[tuple[int, int], tuple[str, float]]:
    """(pid, start time) -> (name, CPU seconds so far) of every process we may read.

    A kernel worker renames itself after the work queue it serves (kworker/u8:3-writeback, then
    kworker/u8:3-ext4-rsv-conversion): the start time, not the name, tells a reused pid; the workers are
    summed as one `kworker`. PostgreSQL's processes are told apart by role (`postgres: checkpointer`,
    `postgres: autovacuum worker`, every client connection `postgres: backend`)."""
    out: dict[tuple[int, int], tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = _stat_fields(raw)
        name = "kworker" if name.startswith("kworker/") else name
        if name == "postgres":
            name = _postgres_role(entry)
        out[int(entry.name), int(fields[19])] = (name, _cpu_seconds(fields))
    return out


def _stat_fields(stat: str) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses): field 3 onwards."""
    return stat.rsplit(")", 1)[1].split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def process_cpu(pid: int | None) -> float | None:
    """CPU seconds of one live process so far, or None when it cannot be read."""
    try:
        return _cpu_seconds(_stat_fields(Path(f"/proc/{pid}/stat").read_text()))
    except (OSError, TypeError):
        return None


def _postgres_role(entry: Path) -> str:
    try:
        title = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return "postgres"
    if not title.startswith("postgres: "):
        return "postgres"  # the postmaster
    for known in ("checkpointer", "background writer", "walwriter", "autovacuum", "logical replication"):
        if known in title:  # "postgres: 15/main: checkpointer" on Debian, "postgres: checkpointer" elsewhere
            return f"postgres: {known}"
    return "postgres: backend"


def spent(before: dict[tuple[int, int], tuple[str, float]], own_pid: int | None = None,
          labels: dict[int, str] | None = None) -> dict[str, float]:
    """CPU seconds per process name since `before`; this process is named `this process`, the pids in
    `labels` by their label (a benchmarked process tree apart from other jobs' processes of the same name)."""
    own_pid = own_pid or os.getpid()
    labels = {own_pid: "this process", **(labels or {})}
    totals: collections.Counter[str] = collections.Counter()
    for key, (name, cpu) in snapshot().items():
        start = before.get(key)
        used = cpu - start[1] if start else cpu
        if used > 0:
            totals[labels.get(key[0], name)] += used
    return dict(totals)


def descendants(pid: int) -> list[int]:
    """The live children, grandchildren, ... of `pid` (from each process's parent in /proc/PID/stat)."""
    parents: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(_stat_fields((entry / "stat").read_text())[1])].append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        out += children
        todo += children
    return out


def per_message(totals: dict[str, float], messages: int, floor_us: float = 0.5) -> str:
    """'name 12.3 us, ...' for the processes that spent at least `floor_us` a message, largest first."""
    parts = [f"{name} {cpu / messages * 1e6:.1f}" for name, cpu in sorted(totals.items(), key=lambda kv: -kv[1])
             if cpu / messages * 1e6 >= floor_us]
    return "CPU us per message: " + ", ".join(parts) + f"; all {sum(totals.values()) / messages * 1e6:.1f}"


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests while this one had work (all CPUs, /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / _TICK
