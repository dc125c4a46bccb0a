"""`stackwatch provider add|list|remove` edit the configuration file safely and keep the operator's comments."""

from __future__ import annotations

import json
import os
import stat

from typer.testing import CliRunner

from stackwatch.cli.main import app
from stackwatch.config.settings import load_settings

runner = CliRunner()


def test_add_list_remove_keeps_comments_and_masks_secrets(tmp_path, monkeypatch):
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    path = tmp_path / "stackwatch.yaml"
    path.write_text("# our lab\ndatabase: sqlite:////tmp/x.db   # keep me\nproviders: []\n")
    add = runner.invoke(app, ["provider", "add", "lab", "--cloud", "lab", "--events", "amqp",
                              "--amqp-url", "amqp://stack:s3cret@10.0.0.5:5672/", "--config", str(path)])
    assert add.exit_code == 0, add.output
    text = path.read_text()
    assert "# our lab" in text and "# keep me" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    cfg = load_settings(path)
    assert cfg.provider("lab").events.amqp == {"urls": ["amqp://stack:s3cret@10.0.0.5:5672/"]}

    listed = runner.invoke(app, ["provider", "list", "--config", str(path), "--format", "json"])
    assert listed.exit_code == 0 and "s3cret" not in listed.output
    assert json.loads(listed.stdout)[0]["amqp_urls"] == ["amqp://stack:***@10.0.0.5:5672/"]

    again = runner.invoke(app, ["provider", "add", "lab", "--cloud", "lab", "--config", str(path)])
    assert again.exit_code == 2 and "already exists" in again.output
    bad = runner.invoke(app, ["provider", "add", "x", "--cloud", "c", "--events", "pigeon", "--config", str(path)])
    assert bad.exit_code == 2 and "providers.1.events.monitor" in bad.output
    assert "pigeon" not in path.read_text()  # nothing invalid was written

    gone = runner.invoke(app, ["provider", "remove", "lab", "--config", str(path)])
    assert gone.exit_code == 0 and load_settings(path).providers == []
    missing = runner.invoke(app, ["provider", "remove", "lab", "--config", str(path)])
    assert missing.exit_code == 2 and "no provider" in missing.output


def test_add_creates_the_default_config(tmp_path, monkeypatch):
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    result = runner.invoke(app, ["provider", "add", "dev", "--cloud", "devcloud"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "stackwatch" / "stackwatch.yaml").exists()
    assert [p.name for p in load_settings().providers] == ["dev"]
