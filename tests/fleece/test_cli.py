"""The `fleece` command through Typer's CliRunner on a small app (the lead registers it in main.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from stackwatch.cli.fleece import fleece

app = typer.Typer()
app.command("fleece")(fleece)
app.command("noop")(lambda: None)  # a second command keeps "fleece" a subcommand, as in main.py


def test_json_and_cyclonedx(built):
    d, m = built
    image = m["images"]["rpm-lvm-xfs"]
    res = CliRunner().invoke(app, ["fleece", str(d / image["file"]), "--format", "json"])
    assert res.exit_code == 0, res.output
    reps = json.loads(res.stdout)
    assert len(reps) == 1 and reps[0]["hostname"] == image["hostname"]
    res = CliRunner().invoke(app, ["fleece", str(d / image["file"]), "--format", "cyclonedx"])
    bom = json.loads(res.stdout)
    assert bom["bomFormat"] == "CycloneDX"
    purls = {c["purl"] for c in bom["components"]}
    want = {p["name"] for p in m["roots"]["rpm"]["packages"]}
    assert {c["name"] for c in bom["components"]} == want
    assert "pkg:rpm/fleecel/fleece-shadow-utils@4.9-8.el9?arch=noarch&epoch=2" in purls


def test_table_and_exit_code(built, tmp_path):
    d, m = built
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"\0" * 8192)
    res = CliRunner().invoke(app, ["fleece", str(d / m["images"]["gpt-xfs"]["file"]), str(bad), "-j", "2"])
    assert res.exit_code == 2  # one target has no OS
    assert "gpt-xfs" in res.stdout and "no root filesystem found" in res.stdout


# Runs a command as a child subreaper (PR_SET_CHILD_SUBREAPER): what the command leaves behind when it exits
# is re-parented here instead of to init, and listed (a process that is never waited for shows as Z).
REAPER = """
import ctypes, json, os, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
time.sleep(1.5)
left = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if int(stat[1]) == os.getpid():
        left.append([int(pid), stat[0]])
print(json.dumps({"rc": done.returncode, "stdout": done.stdout, "left": left}))
"""


def test_fleece_process_leaves_no_child_behind(tools, tmp_path):
    """`stackwatch fleece IMAGE` as a user runs it (a script by path, as the console script is): when it
    exits, no process it started is left, running or defunct (a forkserver and its resource tracker were)."""
    import stackwatch
    from tests.fleece.chains import HOSTNAME, guest, overlay

    guest(tmp_path / "base.raw")
    image = overlay(tmp_path / "disk.qcow2", "base.raw")
    script = tmp_path / "stackwatch"
    script.write_text(
        "import sys\nfrom stackwatch.cli.main import app\nif __name__ == '__main__':\n    sys.exit(app())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(stackwatch.__file__).parents[1]))
    cmd = [
        sys.executable,
        "-c",
        REAPER,
        sys.executable,
        str(script),
        "fleece",
        str(image),
        "--format",
        "json",
        "--no-store",
    ]
    out = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
    assert out["rc"] == 0 and json.loads(out["stdout"])[0]["hostname"] == HOSTNAME
    assert out["left"] == []
