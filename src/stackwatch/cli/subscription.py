"""`stackwatch subscription add|list|show|remove|test`: push subscriptions, written to the store.

The commands work whether `serve` runs or not: they write the subscriptions table, and a running push handler
re-reads it within `push.reload_seconds`. The CLI is the operator's tool, so what it creates counts as created
by an admin (private destinations allowed, `--all-projects` possible).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from stackwatch.cli.common import ConfigGroup, friendly_errors, open_store_for, settings
from stackwatch.cli.output import OutputFormat, console, err_console, print_json, print_table, short_time

app = typer.Typer(cls=ConfigGroup, help="Push subscriptions: events delivered to webhooks, AMQP, Zaqar.",
                  no_args_is_help=True)
FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")]
F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _group() -> None:
    """Push subscriptions: events delivered to webhooks, AMQP exchanges, Zaqar queues."""


def _push_errors(func: F) -> F:
    """The push layer's input errors (bad name, filter, destination, missing key) as one red line, exit 2."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from stackwatch.push.destinations import DestinationError
        from stackwatch.push.filters import FilterError
        from stackwatch.push.secrets import SecretError
        from stackwatch.push.subscriptions import SubscriptionError

        try:
            return func(*args, **kwargs)
        except (DestinationError, FilterError, SecretError, SubscriptionError) as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None

    return friendly_errors(wrapper)  # type: ignore[return-value]


def _default_provider(provider: str | None) -> str:
    if provider:
        return provider
    names = [p.name for p in settings().providers]
    if len(names) == 1:
        return names[0]
    raise typer.BadParameter(f"name the provider ({', '.join(names) or 'none configured'})", param_hint="--provider")


@app.command("add")
@_push_errors
def add(
    name: Annotated[str, typer.Argument(help="subscription name (unique)")],
    to: Annotated[str, typer.Option("--to", help="http(s)://URL, zaqar:QUEUE or amqp://...?exchange=X&routing_key=Y")],
    provider: Annotated[str | None, typer.Option(help="provider (default: the only one configured)")] = None,
    project: Annotated[str | None, typer.Option(help="owner project id: only its events are delivered")] = None,
    all_projects: Annotated[bool, typer.Option("--all-projects",
                                               help="every project's events and those of none")] = False,
    events: Annotated[list[str] | None, typer.Option("--events", help="event type glob (repeatable)")] = None,
    group: Annotated[list[str] | None, typer.Option("--group", help="timeline group (repeatable)")] = None,
    vm: Annotated[str | None, typer.Option(help="only events of this instance")] = None,
    host: Annotated[str | None, typer.Option(help="only events of this compute host")] = None,
    ref: Annotated[list[str] | None, typer.Option("--ref", help="another ref, NAME=VALUE (image=ID, ...)")] = None,
    secret_env: Annotated[str | None, typer.Option(help="variable holding the HMAC secret (read when sending)")] = None,
    max_attempts: Annotated[int, typer.Option(min=1, max=1000, help="then the dead-letter")] = 10,
    ttl: Annotated[float | None, typer.Option(help="seconds an event may wait to be delivered")] = None,
) -> None:
    """Deliver the owner project's events that pass the filter to a destination, at least once."""
    from stackwatch.push.filters import EventFilter, Scope
    from stackwatch.push.subscriptions import SubscriptionStore, new_subscription

    if all_projects == (project is not None):
        raise typer.BadParameter("give --project ID or --all-projects", param_hint="--project")
    refs: dict[str, str] = {}
    for pair in ref or ():
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--ref")
        refs[key] = value
    if vm:
        refs["vm"] = vm
    if host:
        refs["host"] = host
    sub = new_subscription(
        name, _default_provider(provider), Scope(project, all_projects), EventFilter.build(events, group, refs),
        to, secret_env=secret_env, max_attempts=max_attempts, ttl_seconds=ttl, created_by="cli", admin_created=True,
    )
    store = open_store_for(settings())
    try:
        SubscriptionStore(store.engine).add(sub)
    finally:
        store.dispose()
    console.print(f"subscription [bold]{name}[/bold] -> {sub.destination}", highlight=False)


@app.command("list")
@_push_errors
def list_subscriptions(
    project: Annotated[str | None, typer.Option(help="only this project's")] = None,
    provider: Annotated[str | None, typer.Option(help="only this provider's")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """The subscriptions, by name."""
    from stackwatch.push.subscriptions import SubscriptionStore

    store = open_store_for(settings())
    try:
        subs = SubscriptionStore(store.engine).list([project] if project else None, provider)
    finally:
        store.dispose()
    if format is OutputFormat.json:
        print_json([s.to_json() for s in subs])
        return
    print_table("subscriptions", ["name", "provider", "project", "events", "to", "max attempts", "created"],
                [(s.name, s.provider, s.scope.project_id or "(all)", ", ".join(s.filter.events), s.destination,
                  s.max_attempts, short_time(s.created_at)) for s in subs])


@app.command("show")
@_push_errors
def show(name: Annotated[str, typer.Argument(help="subscription name")], format: FormatOpt = OutputFormat.table,
         ) -> None:
    """One subscription: its filter and destination, deliveries by state, and its dead letters."""
    from stackwatch.push.report import subscription_report

    store = open_store_for(settings())
    try:
        doc = subscription_report(store.engine, name)
    finally:
        store.dispose()
    if doc is None:
        err_console.print(f"[red]error:[/red] no subscription named {name!r}")
        raise typer.Exit(1)
    if format is OutputFormat.json:
        print_json(doc)
        return
    dead = doc.pop("dead", [])
    print_table(None, ["field", "value"], [(k, v) for k, v in doc.items()])
    if dead:
        print_table("dead letters", ["message_id", "attempts", "last error"],
                    [(d["message_id"], d["attempts"], d["last_error"]) for d in dead])


@app.command("remove")
@_push_errors
def remove(name: Annotated[str, typer.Argument(help="subscription name")]) -> None:
    """Stop delivering to this subscription (what it still had pending ends as "subscription removed")."""
    from stackwatch.push.subscriptions import SubscriptionStore

    store = open_store_for(settings())
    try:
        removed = SubscriptionStore(store.engine).remove(name)
    finally:
        store.dispose()
    if not removed:
        err_console.print(f"[red]error:[/red] no subscription named {name!r}")
        raise typer.Exit(1)
    console.print(f"removed subscription [bold]{name}[/bold]", highlight=False)


@app.command("retry")
@_push_errors
def retry(name: Annotated[str, typer.Argument(help="subscription name")]) -> None:
    """Send the subscription's dead letters again (each gets its max attempts anew); serve sends them."""
    from stackwatch.push.report import retry_dead

    store = open_store_for(settings())
    try:
        count = retry_dead(store.engine, name)
    finally:
        store.dispose()
    if count < 0:
        err_console.print(f"[red]error:[/red] no subscription named {name!r}")
        raise typer.Exit(1)
    console.print(f"{count} dead deliveries of [bold]{name}[/bold] queued again", highlight=False)


@app.command("test")
@_push_errors
def test(
    name: Annotated[str, typer.Argument(help="subscription name")],
    event: Annotated[str, typer.Option(help="a notification file (JSON), or the message_id of a stored event")],
    send: Annotated[bool, typer.Option("--send", help="also deliver it once now and show the answer")] = False,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Whether an event would reach the subscription (scope, then filter), and, with --send, its answer."""
    from stackwatch.push.subscriptions import SubscriptionStore
    from stackwatch.push.trial import trial

    cfg = settings()
    store = open_store_for(cfg)
    try:
        sub = SubscriptionStore(store.engine).get(name)
        if sub is None:
            err_console.print(f"[red]error:[/red] no subscription named {name!r}")
            raise typer.Exit(1)
        ev = _load_event(event, sub.provider, store, cfg)
        doc = trial(sub, ev, send=send, settings=cfg)
    finally:
        store.dispose()
    if format is OutputFormat.json:
        print_json(doc)
    else:
        print_table(None, ["field", "value"], [(k, v) for k, v in doc.items() if k != "body"])
    if not doc["delivered"]:
        raise typer.Exit(1)


def _load_event(ref: str, provider: str, store: Any, cfg: Any) -> Any:
    """A stored event by message_id, or the first notification of a file converted as the catcher would."""
    path = Path(ref)
    if not path.is_file():
        found = store.get(ref, provider)
        if found is None:
            raise typer.BadParameter(f"{ref!r} is neither a file nor a stored event of {provider}",
                                     param_hint="--event")
        return found
    from stackwatch.events.convert import Converter
    from stackwatch.events.files import iter_raw_messages
    from stackwatch.events.model import Event
    from stackwatch.switchboard.routes import RoutingTable

    converter = Converter(RoutingTable.load(cfg.routes))
    for raw in iter_raw_messages([str(path)]):
        return Event.from_record(converter.record(raw.body, provider, raw.source))
    raise typer.BadParameter(f"{ref} holds no notification", param_hint="--event")
