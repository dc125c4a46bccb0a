"""`stackwatch provider add|list|remove`: manage the providers section of the configuration file.

Kept apart from `provider check` (event monitor selection) because these edit the operator's file (the one
`--config` names, else $STACKWATCH_CONFIG, else ~/.config/stackwatch/stackwatch.yaml, created when missing).
Credentials are never printed: broker URLs are masked in every listing.
"""

from __future__ import annotations

from typing import Annotated

import typer

from stackwatch.cli.common import friendly_errors
from stackwatch.cli.output import OutputFormat, console, print_json, print_table


@friendly_errors
def add(
    name: Annotated[str, typer.Argument(help="provider name")],
    cloud: Annotated[str, typer.Option(help="clouds.yaml entry (or OS_* when absent)")],
    events: Annotated[str, typer.Option(help="auto, none or an installed event monitor (e.g. amqp)")] = "auto",
    amqp_url: Annotated[list[str] | None, typer.Option(help="broker URL; repeat for failover")] = None,
    replace: Annotated[bool, typer.Option(help="replace a provider of the same name")] = False,
) -> None:
    """Add a provider to the configuration file (validated before it is written)."""
    from stackwatch.config.edit import add_provider, config_path
    from stackwatch.config.settings import check_monitor_name

    try:
        monitor = check_monitor_name(events)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--events") from None
    path = config_path(None)
    section: dict = {"monitor": monitor}
    if amqp_url:
        section["amqp"] = {"urls": list(amqp_url)}
    provider = add_provider(path, {"name": name, "cloud": cloud, "events": section}, replace=replace)
    console.print(f"provider [bold]{provider.name}[/bold] (cloud {provider.cloud}, events "
                  f"{provider.events.monitor}) saved in {path}", highlight=False)


@friendly_errors
def remove(name: Annotated[str, typer.Argument(help="provider name")]) -> None:
    """Remove a provider from the configuration file (its stored events stay until purged)."""
    from stackwatch.config.edit import config_path, remove_provider

    path = config_path(None)
    remove_provider(path, name)
    console.print(f"provider [bold]{name}[/bold] removed from {path}", highlight=False)


@friendly_errors
def list_providers(
    format: Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")] = OutputFormat.table,
) -> None:
    """The configured providers, with credentials masked."""
    from stackwatch.config.settings import load_settings
    from stackwatch.masking import mask_url

    docs = []
    for p in load_settings().providers:
        urls = [mask_url(u) for u in ((p.events.amqp or {}).get("urls") or [])]
        docs.append({"name": p.name, "type": p.type, "cloud": p.cloud, "monitor": p.events.monitor,
                     "amqp_urls": urls, "retention_days": p.events.retention_days})
    if format is OutputFormat.json:
        print_json(docs)
        return
    print_table(None, ["name", "cloud", "monitor", "amqp", "retention days"],
                [(d["name"], d["cloud"], d["monitor"], ", ".join(d["amqp_urls"]), d["retention_days"]) for d in docs])
