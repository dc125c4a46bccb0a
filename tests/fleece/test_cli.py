"""The `fleece` command through Typer's CliRunner on a small app (the lead registers it in main.py)."""

from __future__ import annotations

import json

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
