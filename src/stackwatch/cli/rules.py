"""`stackwatch rules ...`: automation rules (docs/rules.md): list, show, add, remove, test, runs, retry.

The rules live in the rules file (`rules:` in the configuration, else `<data_dir>/rules.yaml`); a running
`serve` reloads it within a second of a change. `runs` and `retry` read the outbox in the store, so they work
whether or not `serve` runs; `retry --send` also sends the re-queued deliveries from this process.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from stackwatch.cli.common import friendly_errors, open_store_for, routes_for, settings
from stackwatch.cli.output import OutputFormat, console, err_console, print_json, print_table

app = typer.Typer(help="Automation rules: list, show, add, remove, test, runs, retry.", no_args_is_help=True)

FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="table or json")]


def _admin():  # noqa: ANN202
    from stackwatch.switchboard.rules.manage import RulesAdmin

    cfg = settings()
    return RulesAdmin(cfg, open_store_for(cfg).engine, routes_for(cfg))


@app.command("list")
@friendly_errors
def list_rules(format: FormatOpt = OutputFormat.table) -> None:
    """Every rule with its matches and its actions' deliveries (pending, done, dead)."""
    admin = _admin()
    rows = admin.list()
    if format is OutputFormat.json:
        print_json(rows)
        return
    print_table(f"rules in {admin.path}", ["name", "on", "actions", "matches", "throttled", "pending", "done", "dead"],
                [(r["name"] + ("" if r["enabled"] else " (disabled)"), ", ".join(r["events"] + r["policy"]),
                  ", ".join(r["actions"]), r["matches"], r["throttled"], r["pending"], r["done"], r["dead"])
                 for r in rows])


@app.command()
@friendly_errors
def show(name: str, format: FormatOpt = OutputFormat.json) -> None:
    """One rule as written, with its recent matches."""
    doc = _admin().show(name)
    if format is OutputFormat.json:
        print_json(doc)
        return
    print_table(name, ["field", "value"], [(k, v) for k, v in doc.items() if k not in ("document", "recent_matches")])
    print_table("recent matches", ["matched at", "message_id", "event type", "throttled", "actions"],
                [(m["matched_at"], m["message_id"], m["event_type"], m["throttled"], m["actions"])
                 for m in doc["recent_matches"]])


@app.command()
@friendly_errors
def add(
    file: Annotated[str, typer.Argument(help="YAML: one rule, a list of rules, or {rules: [...]}; - is stdin")],
    replace: Annotated[bool, typer.Option("--replace", help="replace rules of the same name")] = False,
) -> None:
    """Validate rules and add them to the rules file (a running serve picks them up)."""
    from stackwatch.switchboard.conditions import load_yaml
    from stackwatch.switchboard.rules.model import RuleError

    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    doc = load_yaml(text)
    specs: Any = doc.get("rules") if isinstance(doc, dict) and "rules" in doc else doc
    specs = [specs] if isinstance(specs, dict) else specs
    if not isinstance(specs, list) or not specs:
        raise RuleError(f"{file}: expected a rule, a list of rules or {{rules: [...]}}")
    admin = _admin()
    names = admin.add(specs, replace=replace)
    console.print(f"added {', '.join(names)} to {admin.path}")


@app.command()
@friendly_errors
def remove(name: str) -> None:
    """Remove a rule from the rules file (its history stays in the store)."""
    admin = _admin()
    admin.remove(name)
    console.print(f"removed {name} from {admin.path}")


def _event(admin: Any, source: str, provider: str | None) -> Any:
    """The event of `source`: a notification file (converted as ingest would), else a stored message_id."""
    path = Path(source)
    if source == "-" or path.is_file():
        from stackwatch.events.files import read_source, split_messages

        chunk = next(iter(split_messages(read_source(source))), None)
        if chunk is None:
            raise typer.BadParameter(f"{source} holds no notification", param_hint="--event")
        try:
            return admin.convert(chunk, provider)
        except ValueError as exc:
            raise typer.BadParameter(f"{source}: {exc}", param_hint="--event") from None
    from stackwatch.store.events import EventStore

    event = EventStore(admin.engine).get(source, provider)
    if event is None:
        raise typer.BadParameter(f"{source!r} is neither a file nor a stored message_id", param_hint="--event")
    return event


@app.command()
@friendly_errors
def test(
    name: str,
    event: Annotated[str, typer.Option("--event", help="a notification file, or the message_id of a stored event")],
    provider: Annotated[str | None, typer.Option(help="provider of the event")] = None,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """Whether the rule matches the event and what each action would send, without sending."""
    admin = _admin()
    result = admin.test(name, _event(admin, event, provider))
    if format is OutputFormat.json:
        print_json(result)
        return
    verdict = "[green]matches[/green]" if result["matched"] else "[yellow]does not match[/yellow]"
    console.print(f"rule {name} {verdict} {result['event_type']} {result['message_id']}: {result['why']}",
                  highlight=False)
    for action in result["actions"]:
        console.print(f"\n[bold]action {action['action']}: {action['kind']}[/bold] -> {action['target']}",
                      highlight=False)
        if action["kind"] == "webhook":
            for key, value in action["headers"].items():
                console.print(f"  {key}: {value}", highlight=False, markup=False)
            console.print(f"  body ({len(action['body'])} characters): {action['body'][:400]}", highlight=False,
                          markup=False)
        else:
            console.print(f"  {action['spec']}", highlight=False, markup=False)
    if not result["matched"]:
        raise typer.Exit(1)


@app.command()
@friendly_errors
def runs(
    name: Annotated[str | None, typer.Argument(help="a rule (default: every rule)")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="only the dead-letter list")] = False,
    event: Annotated[str | None, typer.Option("--event", help="only this message_id")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    format: FormatOpt = OutputFormat.table,
) -> None:
    """A rule's actions, newest first: state, attempts, last answer; `--failed`: the dead-letter list."""
    rows = _admin().runs(name, failed=failed, message_id=event, limit=limit)
    if format is OutputFormat.json:
        print_json(rows)
        return
    print_table("dead-letter" if failed else "rule runs",
                ["id", "rule", "action", "target", "message_id", "state", "attempts", "last answer", "created"],
                [(r["id"], r["rule"], f"{r['action']} {r['kind']}", r["target"], r["message_id"], r["state"],
                  f"{r['attempts']}/{r['max_attempts']}",
                  " ".join(str(x) for x in (r["last_status"], r["last_error"]) if x) or None, r["created_at"][:19])
                 for r in rows])


@app.command()
@friendly_errors
def retry(
    name: Annotated[str | None, typer.Argument(help="only this rule's dead deliveries")] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="only these deliveries (repeatable)")] = None,
    send: Annotated[bool, typer.Option("--send", help="send them from this process now and wait")] = False,
    timeout: Annotated[float, typer.Option(help="with --send: seconds to wait")] = 300.0,
) -> None:
    """Re-queue dead-lettered deliveries (a running serve sends them; --send sends them here)."""
    admin = _admin()
    dead = [d.id for d in admin.outbox.list(source="rule", owner=name, state="dead", ids=ids, limit=100_000)]
    count = admin.retry(name, dead) if dead else 0
    console.print(f"re-queued {count} deliveries")
    if not (send and count):
        return
    from stackwatch.switchboard.rules.actions.base import ActionContext
    from stackwatch.switchboard.rules.handler import build_dispatcher

    cfg = admin.settings
    dispatcher = build_dispatcher(ActionContext(cfg, admin.engine), admin.outbox, cfg.automation.workers,
                                  cfg.automation.per_rule, cfg.automation.max_fleeces, 0.2)
    try:
        dispatcher.drain(timeout, until=lambda: all(d.state != "pending" for d in admin.outbox.list(ids=dead)))
    finally:
        dispatcher.stop()
    states = [d.state for d in admin.outbox.list(ids=dead, limit=len(dead))]
    console.print(f"done {states.count('done')}, dead {states.count('dead')}, pending {states.count('pending')}")
    if states.count("done") != len(dead):
        err_console.print("[yellow]some deliveries did not succeed: see `stackwatch rules runs --failed`[/yellow]")
        raise typer.Exit(1)
