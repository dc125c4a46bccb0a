"""`stackwatch rules add|list|show|test|remove` in-process (typer's runner) on the default rules file
(`<data_dir>/rules.yaml`), a sample notification file and a stored event."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from stackwatch.cli.main import app
from stackwatch.store.db import open_store
from tests.rules.samples import VERSIONED_CREATE, VERSIONED_ERROR, sample

runner = CliRunner()
RULE = """
name: errors
events: ["instance.*.error"]
when: {field: payload.state, not_equals: deleted}
actions:
  - webhook: {url: "https://hooks.example/x", secret_env: CLI_SECRET}
  - log: {level: warning}
"""


def test_rules_commands(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    monkeypatch.setenv("CLI_SECRET", "k")
    rule_file = tmp_path / "rule.yaml"
    rule_file.write_text(RULE)
    added = runner.invoke(app, ["rules", "add", str(rule_file)])
    assert added.exit_code == 0, added.output
    assert (tmp_path / "data" / "rules.yaml").stat().st_mode & 0o077 == 0  # 0600: URLs may be secrets
    again = runner.invoke(app, ["rules", "add", str(rule_file)])
    assert again.exit_code == 2 and "already exists" in again.output
    (listed,) = json.loads(runner.invoke(app, ["rules", "list", "--format", "json"]).output)
    assert listed["name"] == "errors" and listed["actions"] == ["webhook", "log"]
    tested = runner.invoke(app, ["rules", "test", "errors", "--event", str(VERSIONED_ERROR), "--format", "json"])
    result = json.loads(tested.output)
    assert result["matched"] and [a["kind"] for a in result["actions"]] == ["webhook", "log"]
    webhook = result["actions"][0]
    assert webhook["headers"]["Idempotency-Key"] == f"errors:{result['message_id']}"
    assert webhook["headers"]["X-Stackwatch-Signature"].startswith("sha256=")
    assert json.loads(webhook["body"])["event_type"] == "instance.create.error"
    table = runner.invoke(app, ["rules", "test", "errors", "--event", str(VERSIONED_CREATE)])
    assert table.exit_code == 1 and "does not match" in table.output
    store = open_store(db_url)
    store.write_batch([sample(VERSIONED_ERROR)])
    store.dispose()
    stored = runner.invoke(app, ["rules", "test", "errors", "--event", sample(VERSIONED_ERROR).message_id])
    assert stored.exit_code == 0 and "matches" in stored.output and "Idempotency-Key" in stored.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nevents: [y]\nactions: [{webhook: {url: ftp://h}}]\n")
    refused = runner.invoke(app, ["rules", "add", str(bad)])
    assert refused.exit_code == 2 and "(x).actions[0].webhook.url" in refused.output
    assert runner.invoke(app, ["rules", "remove", "errors"]).exit_code == 0
    assert json.loads(runner.invoke(app, ["rules", "list", "--format", "json"]).output) == []
