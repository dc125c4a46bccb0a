"""The worker's processes (worker.py, zygote.py): a caller that dies leaves none behind, and many targets at
once each get their own answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from stackwatch.fleece.runner import fleece_many
from stackwatch.fleece.worker import Limits
from tests.fleece.chains import HOSTNAME, guest

# As a child subreaper, start a caller whose target never ends (a FIFO: opening it waits for a writer),
# count the caller's descendants, SIGKILL the caller, and list what is still alive a while later (orphans
# are re-parented to us; we reap the ones that exit).
HARNESS = """
import ctypes, json, os, signal, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)

def descendants(root):
    kids = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z":
            kids.setdefault(int(stat[1]), []).append(int(pid))
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out

code = "import sys; from stackwatch.fleece.worker import run_isolated; run_isolated(sys.argv[1])"
caller = subprocess.Popen([sys.executable, "-c", code, sys.argv[1]])
deadline = time.monotonic() + 30
while len(descendants(caller.pid)) < 2 and time.monotonic() < deadline:
    time.sleep(0.1)
before = len(descendants(caller.pid))
os.kill(caller.pid, signal.SIGKILL)
caller.wait()
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    if not descendants(os.getpid()):
        break
    time.sleep(0.1)
print(json.dumps({"before": before, "left": descendants(os.getpid())}))
"""


def test_a_killed_caller_leaves_no_process(tmp_path):
    fifo = tmp_path / "never.img"
    os.mkfifo(fifo)
    out = subprocess.run([sys.executable, "-c", HARNESS, str(fifo)], capture_output=True, text=True, timeout=90)
    got = json.loads(out.stdout)
    assert got["before"] >= 2, got  # the zygote and its child for the target were running
    assert got["left"] == [], got


def test_many_targets_at_once_each_get_their_own_report(tools, tmp_path):
    paths = []
    for i in range(6):
        paths.append(str(guest(tmp_path / f"g{i}.raw", hostname=f"{HOSTNAME}-{i}")))
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"\0" * 4096)
    reps = fleece_many([*paths, str(bad)], limits=Limits(seconds=60), jobs=4)
    assert [r["target"] for r in reps] == [*paths, str(bad)]
    assert [r["hostname"] for r in reps[:6]] == [f"{HOSTNAME}-{i}" for i in range(6)]
    assert reps[6]["hostname"] is None and any("no root filesystem" in e for e in reps[6]["errors"])
    assert json.dumps(reps)  # as the CLI prints them
