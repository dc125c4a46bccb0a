"""Metrics capture cost: requests and seconds per capture cycle for N instances, against a real Gnocchi.

Drives the product as an operator does: a configuration with the issue's `metrics` section (defaults
otherwise: batch of 250, SQLite store in a fresh data dir unless --database), then
`stackwatch metrics capture --provider bench --format json`, twice:

1. the first cycle (backfill of the seeded history for every instance);
2. a steady-state cycle after one more 5-minute point was posted for every series (what runs every 5 min).

For comparison it times ManageIQ's shape, one GET per metric per VM, on a sample of VMs and extrapolates.
Gnocchi (tests/metrics/gnocchi_peer.py) is seeded like Ceilometer's publisher leaves it: per instance the
instance metrics (cpu, vcpus, memory, memory.usage, disk.root.size), one disk and one NIC (2 rates each).

    .venv/bin/python bench/metrics.py --instances 1000 --hours 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.metrics.gnocchi_peer import GnocchiPeer  # noqa: E402
from tests.metrics.seed import aligned_now, create_vms, ensure_schema, post_measures, wait_processed  # noqa: E402

KEYS = ("requests", "batches", "points", "seconds", "gnocchi_seconds", "rollup_seconds", "wall_seconds")


def capture(config: Path) -> dict:
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "stackwatch", "-c", str(config), "metrics", "capture",
                           "--provider", "bench", "--format", "json"], capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    report = json.loads(done.stdout)
    report["wall_seconds"] = round(time.monotonic() - t0, 2)  # the whole command, start-up included
    return report


def per_vm_requests(peer: GnocchiPeer, vms: list, sample: int) -> float:
    """Seconds for ManageIQ's per-VM shape (GET one metric of one resource) over `sample` VMs x 8 metrics."""
    s = peer.session()
    t0 = time.monotonic()
    for vm in vms[:sample]:
        for metric in ("cpu", "memory.usage"):
            s.get(f"{peer.url}/v1/resource/generic/{vm.id}/metric/{metric}/measures", params={"granularity": 300})
        for rid in (*vm.disks, *vm.nics):
            kind = "disk.device" if rid in vm.disks else "network"
            for direction in (("read", "write") if kind == "disk.device" else ("incoming", "outgoing")):
                s.get(f"{peer.url}/v1/resource/generic/{rid}/metric/{kind}.{direction}.bytes/measures",
                      params={"granularity": 300})
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=1.0, help="history seeded before the first cycle")
    ap.add_argument("--database", help="store URL (default: SQLite in a fresh data dir, the product default)")
    ap.add_argument("--sample", type=int, default=50, help="VMs timed in ManageIQ's per-VM request shape")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    peer = GnocchiPeer(root / "gnocchi")
    try:
        peer.setup().start()
        ensure_schema(peer.session(), peer.url)
        t0 = time.monotonic()
        chunks = [(i, min(50, args.instances - i)) for i in range(0, args.instances, 50)]
        with ThreadPoolExecutor(4) as pool:
            parts = pool.map(lambda c: create_vms(peer.session(), peer.url, c[1], disks=1, nics=1,
                                                  prefix=f"bench{c[0]}"), chunks)
            vms = [vm for part in parts for vm in part]
        created = time.monotonic() - t0
        now = aligned_now()
        points = int(args.hours * 12)
        stamps = [now - timedelta(minutes=5 * (points + 1 - i)) for i in range(points)]
        t0 = time.monotonic()
        post_measures(peer.session(), peer.url, vms, stamps, base=stamps[0])
        wait_processed(peer, vms, timeout=3600)
        seeded = time.monotonic() - t0
        config = root / "stackwatch.yaml"
        settings = {"data_dir": str(root / "data"),
                    "providers": [{"name": "bench", "metrics": {"gnocchi": {"endpoint": peer.url, "auth": "basic"}}}]}
        if args.database:
            settings["database"] = args.database
        config.write_text(yaml.safe_dump(settings))
        first = capture(config)
        post_measures(peer.session(), peer.url, vms, [now - timedelta(minutes=5)], base=stamps[0])
        wait_processed(peer, vms, timeout=3600)
        steady = capture(config)
        sample = min(args.sample, len(vms))
        per_vm = per_vm_requests(peer, vms, sample)
        result = {
            "instances": len(vms), "gnocchi_metrics": len(vms) * 9, "seeded_points_per_series": points,
            "seed_seconds": {"resources": round(created, 1), "measures_until_readable": round(seeded, 1)},
            "first_cycle": {k: first[k] for k in KEYS},
            "steady_cycle": {k: steady[k] for k in KEYS},
            "manageiq_shape": {"requests": len(vms) * 8,
                               "seconds_extrapolated": round(per_vm / sample * len(vms), 1),
                               "sampled_vms": sample},
            "load_average": os.getloadavg(), "cpus": os.cpu_count(),
        }
        print(json.dumps(result, indent=2))
    finally:
        peer.teardown()


if __name__ == "__main__":
    main()
