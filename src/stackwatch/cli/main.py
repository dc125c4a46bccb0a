"""The `stackwatch` command: global options, then one sub-command (group) per part, loaded when it is used.

The root knows each sub-command by name, module and one-line help (`COMMANDS`), and imports the module only
when the command line resolves to it: `stackwatch events count` never imports the fleece or the API code,
and `stackwatch --help` imports none of them (a CLI that took most of a second to start was the complaint).
The root and every loaded command and group get the same `--config/-c` option (`common.config_option`), so
the file can be given before the sub-command or after it, as the docs show, through one option and one
callback (`common.use_config`). Help and usage errors use click's plain formatting (listings still use rich
tables): typer's rich help pulls in rich's markdown, syntax and layout modules, twice the start-up of the rest.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from stackwatch import __version__
from stackwatch.cli.common import ConfigGroup, add_config_option

#: name -> (module, attribute: a typer app or a command function, the one-line help the root lists)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "events": ("stackwatch.cli.events", "app", "The event stream: ingest, list, timeline, purge."),
    "db": ("stackwatch.cli.db", "app", "Database schema."),
    "serve": ("stackwatch.cli.serve", "serve", "Run the API, the event catchers and the handlers."),
    "demo": ("stackwatch.cli.serve", "demo", "Ingest the bundled samples and show a VM's timeline."),
    "provider": ("stackwatch.cli.provider", "app", "Configured providers (clouds): add, list, check."),
    "inventory": ("stackwatch.cli.inventory", "app", "The inventory, one listing per kind (vm, image, ...)."),
    "refresh": ("stackwatch.cli.refresh", "refresh", "Refresh a provider's inventory now (full or targeted)."),
    "handlers": ("stackwatch.cli.handlers", "handlers", "Where each handler is in the event stream, and its backlog."),
    "fleece": ("stackwatch.cli.fleece", "fleece", "Inspect disk images and instances without booting them."),
    "worker": ("stackwatch.cli.worker", "app", "Run one part of stackwatch as its own process."),
    "devcloud": ("stackwatch.cli.devcloud", "app", "A real OpenStack on 127.0.0.1, to try and to test."),
    "rules": ("stackwatch.cli.rules", "app", "Automation rules: list, add, test, runs, retry."),
    "subscription": ("stackwatch.cli.subscription", "app", "Push subscriptions: webhooks, AMQP, Zaqar."),
    "token": ("stackwatch.cli.token", "app", "Local API tokens: create, list, revoke."),
    "metrics": ("stackwatch.cli.metrics", "app", "Metrics from Gnocchi: rollups per VM, host, project."),
}


def _noop() -> None:
    """Holder group (never shown)."""


def load_command(name: str) -> Any:
    """The click command or group `name` of `COMMANDS`, built by typer from its module (imported now)."""
    module, attr, _help = COMMANDS[name]
    target = getattr(importlib.import_module(module), attr)
    holder = typer.Typer(add_completion=False, rich_markup_mode=None)  # passed down to what it holds
    holder.callback()(_noop)  # a holder with a callback is always a group, whatever it holds
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]


class _Listed(TyperCommand):
    """What the root lists before a sub-command is loaded: its name and one-line help."""


class LazyGroup(ConfigGroup):
    """The root group: sub-commands from `COMMANDS`, imported when the command line resolves to one."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)  # the root's own --config first, then the listed placeholders
        for name, (_module, _attr, help_text) in COMMANDS.items():
            self.commands.setdefault(name, _Listed(name, help=help_text))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and isinstance(self.commands.get(args[0]), _Listed):
            command = load_command(args[0])
            add_config_option(command)
            self.commands[args[0]] = command
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="stackwatch",
    cls=LazyGroup,
    rich_markup_mode=None,  # click's plain help and errors: typer's rich help imports ~0.2 s of rich
    help="Agentless, event-driven management engine for OpenStack clouds.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stackwatch {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Agentless, event-driven management engine for OpenStack clouds."""
    from stackwatch.logs import setup_logging

    setup_logging()  # every command logs masked JSON lines, at $STACKWATCH_LOG_LEVEL when set
