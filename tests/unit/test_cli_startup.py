"""The CLI's shape: sub-commands load on use, `--config` is accepted everywhere, start-up imports stay small.

Speed itself is measured in bench/cli.py; these tests check the causes that can be asserted exactly: which
modules a command imports, and which options every command has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from stackwatch.cli.common import config_option, use_config
from stackwatch.cli.main import COMMANDS, app, load_command
from stackwatch.store.db import _alembic_config
from stackwatch.store.heads import code_heads
from tests.docs.cliparse import parse

runner = CliRunner()
#: what no short command needs: the database layer, the API server, fleece, the intake, the cloud SDK
HEAVY = ("sqlalchemy", "alembic", "pydantic", "yaml", "fastapi", "uvicorn", "openstack", "pika",
         "stackwatch.store", "stackwatch.events", "stackwatch.fleece", "stackwatch.api", "stackwatch.inventory")


def _walk(command, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


def _modules_after(tmp_path, *argv: str, env: dict | None = None) -> set[str]:
    """Top-level and stackwatch modules imported by `stackwatch ARGV` in a fresh interpreter."""
    out = tmp_path / "modules.json"
    code = (
        "import json, sys\nfrom stackwatch.cli.main import app\n"
        f"try:\n    app({list(argv)!r}, prog_name='stackwatch')\nexcept SystemExit:\n    pass\n"
        f"json.dump(sorted(sys.modules), open({str(out)!r}, 'w'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env={**os.environ, **(env or {})})
    return set(json.loads(out.read_text()))


def _loaded(modules: set[str], prefix: str) -> bool:
    return any(m == prefix or m.startswith(prefix + ".") for m in modules)


def test_help_imports_no_sub_command_and_no_heavy_library(tmp_path):
    modules = _modules_after(tmp_path, "--help")
    assert [p for p in HEAVY if _loaded(modules, p)] == []
    assert sorted(m for m in modules if m.startswith("stackwatch.cli.")) == ["stackwatch.cli.common",
                                                                           "stackwatch.cli.main"]


@pytest.mark.parametrize("argv", [("events", "count"), ("events", "list"), ("events", "show", "nope")])
def test_read_commands_on_a_current_sqlite_database_skip_sqlalchemy(tmp_path, argv):
    env = {"STACKWATCH_DATA_DIR": str(tmp_path), "STACKWATCH_DATABASE_URL": "", "STACKWATCH_CONFIG": ""}
    first = _modules_after(tmp_path, *argv, env=env)  # no database yet: the full store creates and migrates it
    assert _loaded(first, "sqlalchemy") and _loaded(first, "alembic")
    modules = _modules_after(tmp_path, *argv, env=env)  # a database at the code's heads: sqlite3 alone reads it
    assert _loaded(modules, "stackwatch.store.reads") and _loaded(modules, "sqlite3")
    not_needed = ("sqlalchemy", "alembic", "mako", "fastapi", "uvicorn", "openstack", "pika", "stackwatch.fleece",
                  "stackwatch.api", "stackwatch.inventory", "stackwatch.events.catcher", "stackwatch.store.events",
                  "stackwatch.store.db", "rich.progress", "stackwatch.cli.serve", "stackwatch.cli.fleece")
    assert [p for p in not_needed if _loaded(modules, p)] == []


def test_root_lists_every_command_without_loading_it():
    result = runner.invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == list(COMMANDS)
    assert [help_text for _module, _attr, help_text in COMMANDS.values()] == [
        line.split(None, 1)[1] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_listed_command_loads_under_its_name(name):
    command = load_command(name)
    assert command.name == name
    assert command.callback is not None or command.commands


def test_every_command_and_group_accepts_config_after_it():
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    for name in COMMANDS:
        root.resolve_command(ctx, [name])  # resolving through the root loads it and adds --config
    missing = [" ".join(path) or "stackwatch" for path, command in _walk(root)
               if not any(p.name == "config" and "--config" in p.opts and "-c" in p.secondary_opts + p.opts
                          for p in command.params)]
    assert missing == []


@pytest.mark.parametrize("argv", [
    ["serve", "--config", "F"],
    ["serve", "--port", "1", "-c", "F"],
    ["events", "count", "--config", "F"],
    ["events", "-c", "F", "count"],
    ["inventory", "vm", "--config", "F"],
    ["db", "upgrade", "--config", "F"],
    ["devcloud", "status", "--config", "F"],
    ["worker", "catcher", "--provider", "P", "--config", "F"],
    ["fleece", "IMAGE", "--config", "F"],
    ["refresh", "P", "--config", "F"],
])
def test_config_after_the_sub_command_parses(argv):
    assert parse(app, argv)[1] == argv[0]


@pytest.mark.parametrize(("name", "kind"), [
    ("vm", "servers"), ("vms", "servers"), ("server", "servers"), ("servers", "servers"),
    ("image", "images"), ("hypervisor", "hypervisors"), ("host", "hypervisors"), ("floating-ip", "floating_ips"),
    ("floating_ips", "floating_ips"), ("availability-zone", "availability_zones"), ("snapshot", "volume_snapshots"),
])
def test_inventory_kinds_answer_to_singular_plural_and_aliases(name, kind):
    from stackwatch.cli.inventory import find_kind

    assert find_kind(name).name == kind
    assert parse(app, ["inventory", name, "--format", "json"]) == ["stackwatch", "inventory", name]


def test_inventory_refuses_an_unknown_kind():
    result = runner.invoke(app, ["inventory", "vmz"])
    assert result.exit_code == 2 and "No such command 'vmz'" in result.output


def test_config_callback_restores_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STACKWATCH_CONFIG", "/etc/outer.yaml")
    ctx = typer.Context(typer.main.get_command(app))
    with ctx:
        use_config(ctx, tmp_path / "inner.yaml")
        assert os.environ["STACKWATCH_CONFIG"] == str(tmp_path / "inner.yaml")
    assert os.environ["STACKWATCH_CONFIG"] == "/etc/outer.yaml"
    assert config_option().opts == ["--config", "-c"] and config_option().expose_value is False


def test_code_heads_are_alembics_heads():
    from alembic.script import ScriptDirectory

    assert code_heads() == frozenset(ScriptDirectory.from_config(_alembic_config()).get_heads())
