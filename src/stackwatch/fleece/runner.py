"""Many targets at once: instance targets become snapshot or hypervisor reads, each target runs isolated."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from stackwatch.fleece.errors import FleeceError
from stackwatch.fleece.report import empty_report
from stackwatch.fleece.targets import SourceOptions
from stackwatch.fleece.worker import Limits, run_isolated
from stackwatch.masking import mask_text, mask_url


def fleece_one(target: str, opts: SourceOptions, limits: Limits, via: str = "snapshot") -> dict:
    try:
        if target.startswith("instance:"):
            from stackwatch.fleece import openstack

            server_id = target.partition(":")[2]
            conn = openstack.connect(opts.cloud)
            if via == "hypervisor":
                url = openstack.hypervisor_disk_url(conn, server_id, instances_path=opts.instances_path)
                rep = run_isolated(url, opts, limits)
            else:
                with openstack.instance_snapshot(conn, server_id) as image_id:
                    rep = run_isolated(f"glance:{image_id}", opts, limits)
            rep["target"] = target
            return rep
        return run_isolated(target, opts, limits)
    except FleeceError as e:
        rep = empty_report(target)
        rep["errors"].append(str(e))
        return rep


def fleece_many(
    targets: list[str],
    opts: SourceOptions = SourceOptions(),
    limits: Limits = Limits(),
    jobs: int = 4,
    via: str = "snapshot",
    on_done: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Reports in the order of `targets`; `on_done` is called as each finishes (progress display)."""

    def one(t: str) -> dict:
        rep = fleece_one(t, opts, limits, via)
        rep.update(target=mask_url(rep["target"]), errors=[mask_text(e) for e in rep["errors"]])  # URL secrets
        if on_done:
            on_done(rep)
        return rep

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, targets))
