"""`stackwatch provider add|list|remove|check`: the configuration file is edited safely (comments kept),
a monitor that is not installed is refused, and `check` says when `auto` catches nothing."""

from __future__ import annotations

import json
import logging
import os
import stat
from importlib.metadata import entry_points

import pytest
import yaml
from typer.testing import CliRunner

from stackwatch.cli.main import app
from stackwatch.config.settings import ConfigError, load_settings

runner = CliRunner()
INSTALLED = ", ".join(sorted({ep.name for ep in entry_points(group="stackwatch.monitors")}))


def flat(text: str) -> str:
    """CLI output with rich's box drawing and line wrapping taken out."""
    return " ".join(text.replace("│", " ").split())


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
    assert bad.exit_code == 2
    assert f"'pigeon' is not an installed event monitor (installed: {INSTALLED}; or auto / none)" in flat(bad.output)
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


@pytest.mark.parametrize("monitor", ["zaqar", "gnocchi", "Carrier-Pigeon"])
def test_a_monitor_that_is_not_installed_is_refused_with_the_installed_list(tmp_path, monkeypatch, monitor):
    """A name no installed plugin answers to is refused, with the list of those that are."""
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    assert monitor.lower() not in INSTALLED.split(", ")
    path = tmp_path / "stackwatch.yaml"
    add = runner.invoke(app, ["provider", "add", "lab", "--cloud", "lab", "--events", monitor, "-c", str(path)])
    assert add.exit_code == 2 and not path.exists()
    assert f"Invalid value for --events: '{monitor}' is not an installed event monitor (installed: {INSTALLED}" \
        in flat(add.output)

    path.write_text(yaml.safe_dump({"providers": [{"name": "lab", "events": {"monitor": monitor}}]}))
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert f"providers.0.events.monitor: Value error, '{monitor}' is not an installed event monitor " \
           f"(installed: {INSTALLED}; or auto / none)" in str(refused.value)


def test_installed_monitor_names_are_accepted_in_any_case(tmp_path):
    path = tmp_path / "stackwatch.yaml"
    path.write_text(yaml.safe_dump({"providers": [{"name": "a", "events": {"monitor": " AMQP "}},
                                                  {"name": "b", "events": {"monitor": "None"}}]}))
    assert [p.events.monitor for p in load_settings(path).providers] == ["amqp", "none"]


def test_check_warns_when_auto_finds_no_monitor_that_catches_events(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    path = tmp_path / "stackwatch.yaml"
    path.write_text(yaml.safe_dump({
        "database": f"sqlite:///{tmp_path / 'sw.db'}",
        "providers": [{"name": "quiet"},
                      {"name": "off", "events": {"monitor": "none"}},
                      {"name": "lab", "events": {"amqp": {"urls": ["amqp://u:pw@127.0.0.1:5672/"]}}}],
    }))
    with caplog.at_level(logging.WARNING, logger="stackwatch.events.monitors.registry"):
        table = runner.invoke(app, ["provider", "check", "quiet", "--no-probe", "--config", str(path)])
    assert table.exit_code == 0, table.output
    warning = ("provider 'quiet': events.monitor auto found no available event monitor, so no events are caught "
               "(amqp: no events.amqp section for this provider")
    assert "-> null" in flat(table.output) and f"warning: {warning}" in flat(table.output)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING][0].startswith(warning)

    as_json = runner.invoke(app, ["-c", str(path), "provider", "check", "quiet", "--no-probe", "--format", "json"])
    assert json.loads(as_json.stdout)["selected"] == "null"
    assert json.loads(as_json.stdout)["warning"].startswith(warning)
    # `none` asks for no events: nothing to warn about; an available monitor: nothing either
    for name, selected in (("off", "null"), ("lab", "amqp")):
        quiet = runner.invoke(app, ["provider", "check", name, "--no-probe", "-f", "json", "-c", str(path)])
        assert (json.loads(quiet.stdout)["selected"], json.loads(quiet.stdout)["warning"]) == (selected, None)


def test_config_before_or_after_the_sub_command_is_the_same_file(tmp_path, monkeypatch):
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    path = tmp_path / "stackwatch.yaml"
    path.write_text(yaml.safe_dump({"providers": [{"name": "lab", "cloud": "lab"}]}))
    outputs = [runner.invoke(app, argv).stdout for argv in (
        ["--config", str(path), "provider", "list", "--format", "json"],
        ["provider", "list", "--format", "json", "--config", str(path)],
        ["provider", "-c", str(path), "list", "--format", "json"],
    )]
    assert [[p["name"] for p in json.loads(o)] for o in outputs] == [["lab"]] * 3
    assert "STACKWATCH_CONFIG" not in os.environ  # restored when the command's context closed
