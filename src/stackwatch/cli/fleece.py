"""`stackwatch fleece TARGET...`: inspect disk images and instances without booting or downloading them.

`--provider NAME` means what it means in the rest of the CLI: a stackwatch provider from the configuration,
whose `cloud:` names the clouds.yaml entry (none: the OS_* variables). When no provider has that name it
is taken as a clouds.yaml cloud name, so ad-hoc use without a configuration still works. With a store
configured (`database:` in the configuration or $STACKWATCH_DATABASE_URL; `--store` forces the default
one) every report is kept and served at `GET /api/v1/fleece`. Each target is parsed in a worker process
(fleece/worker.py); this module imports only what the chosen output needs (rich for a table or a
progress bar), so a fleece's cost is mostly the worker's.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from stackwatch.cli.common import friendly_errors, open_store_for, settings
from stackwatch.fleece.runner import fleece_many
from stackwatch.fleece.targets import SourceOptions
from stackwatch.fleece.worker import Limits

if TYPE_CHECKING:  # rich is imported when a table or a progress bar is drawn, not for --format json
    from rich.console import Console

    from stackwatch.config.settings import Settings


class Format(StrEnum):
    table = "table"
    json = "json"
    cyclonedx = "cyclonedx"


class Via(StrEnum):
    snapshot = "snapshot"
    hypervisor = "hypervisor"


def _with_progress(targets: list[str], opts: SourceOptions, limits: Limits, jobs: int, via: str) -> list[dict]:
    """fleece_many with a progress bar on the terminal's stderr (several targets)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("fleece"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("fleece", total=len(targets))
        return fleece_many(targets, opts, limits, jobs, via, on_done=lambda _r: progress.advance(task))


def _table(console: Console, rep: dict) -> None:
    from rich.table import Table

    os_info = rep.get("os") or {}
    t = Table(title=rep["target"], show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("os", os_info.get("pretty_name") or os_info.get("id") or "-")
    t.add_row("hostname", rep.get("hostname") or "-")
    t.add_row("users", ", ".join(u["name"] for u in rep["users"] if u["uid"] == 0 or u["uid"] >= 1000) or "-")
    by_mgr: dict[str, int] = {}
    for p in rep["packages"]:
        by_mgr[p["manager"]] = by_mgr.get(p["manager"], 0) + 1
    t.add_row("packages", ", ".join(f"{n} {m}" for m, n in sorted(by_mgr.items())) or "-")
    t.add_row("enabled units", ", ".join(rep["services"]["enabled"]) or "-")
    t.add_row("kernels", ", ".join(rep["kernels"]) or "-")
    t.add_row(
        "filesystems",
        ", ".join(f"{f['device']} {f['type']} {f['mountpoint'] or ''}".strip() for f in rep["filesystems"]) or "-",
    )
    io = rep.get("io") or {}
    if "bytes_read" in io:
        pct = 100.0 * io["bytes_read"] / io["image_size"] if io.get("image_size") else 0.0
        t.add_row(
            "io",
            f"{io['bytes_read']:,} bytes ({pct:.2f} %) in {io['requests']} requests, "
            f"{io['cache_hits']} cache hits, {io['seconds']:.3f} s",
        )
    for e in rep["errors"]:
        t.add_row("[red]error[/red]", e)
    console.print(t)


def resolve_cloud(cfg: Settings, provider: str | None) -> str | None:
    """clouds.yaml cloud for `--provider`: the configured provider's `cloud`, else the name itself."""
    if provider is None:
        return None
    for p in cfg.providers:
        if p.name == provider:
            return p.cloud
    return provider


def keep_reports(cfg: Settings, reports: list[dict], provider: str | None) -> list[int]:
    """Save every report in the configured store (migrated to all heads on open); their ids."""
    from stackwatch.fleece.reports import FleeceReports

    store = open_store_for(cfg)
    try:
        kept = FleeceReports(store.engine)
        return [kept.save(r, provider=provider) for r in reports]
    finally:
        store.dispose()


@friendly_errors
def fleece(
    targets: list[str] = typer.Argument(
        ..., help="path, http(s)://URL, glance:ID, swift:C/O, sftp://host/path, instance:UUID"
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="output format"),
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, help="targets analysed at once"),
    provider: str | None = typer.Option(
        None, "--provider", help="provider (its cloud: in clouds.yaml), or a clouds.yaml cloud name"
    ),
    via: Via = typer.Option(Via.snapshot, "--via", help="instance: read a snapshot, or the disk on its hypervisor"),
    download: bool = typer.Option(False, "--download", help="download whole images when ranges are refused"),
    ssh_key: str | None = typer.Option(None, "--ssh-key", help="private key for sftp:// and --via hypervisor"),
    instances_path: str | None = typer.Option(
        None,
        "--instances-path",
        help="nova.conf instances_path on the hypervisors (default $STACKWATCH_NOVA_INSTANCES_PATH, "
        "else /var/lib/nova/instances); its _base may hold backing files",
    ),
    allow_backing_dir: list[str] = typer.Option(
        [],
        "--allow-backing-dir",
        metavar="DIR",
        help="also read qcow2 backing files from DIR (local and sftp://; repeatable); by default only from "
        "the image's own directory",
    ),
    memory_mib: int = typer.Option(1024, "--memory-mib", help="memory limit of each parsing worker"),
    timeout: float = typer.Option(120.0, "--timeout", help="time limit of each parsing worker, seconds"),
    store: bool | None = typer.Option(
        None, "--store/--no-store", help="keep reports in the store (default: when a database is configured)"
    ),
) -> None:
    """Inspect images and instances (OS, users, packages, services) reading only the blocks needed."""
    cfg = settings()
    opts = SourceOptions(
        cloud=resolve_cloud(cfg, provider),
        download=download,
        ssh_key=ssh_key,
        instances_path=instances_path,
        backing_dirs=tuple(allow_backing_dir),
    )
    limits = Limits(memory_mib=memory_mib, seconds=timeout)
    if len(targets) > 1 and sys.stderr.isatty():
        reports = _with_progress(targets, opts, limits, jobs, via.value)
    else:
        reports = fleece_many(targets, opts, limits, jobs, via.value)
    if fmt is Format.json:
        sys.stdout.write(json.dumps(reports, indent=1) + "\n")
    elif fmt is Format.cyclonedx:
        from stackwatch.fleece.sbom import to_json

        boms = [json.loads(to_json(r)) for r in reports]
        sys.stdout.write(json.dumps(boms[0] if len(boms) == 1 else boms, indent=1) + "\n")
    else:
        from rich.console import Console

        out = Console()
        for rep in reports:
            _table(out, rep)
    if store or (store is None and cfg.database):
        for rep, rid in zip(reports, keep_reports(cfg, reports, provider), strict=True):
            sys.stderr.write(f"kept fleece report {rid} for {rep['target']}\n")
    if any(not (r.get("os") or {}).get("id") for r in reports):
        raise typer.Exit(2)
