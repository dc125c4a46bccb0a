#!/usr/bin/env python3
"""Longer fuzz run of the fleece container/volume parsers, plus the whole isolated pipeline (libyal GPT,
LVM and ext4 included) on mutated copies of a small built disk.

Usage: python scripts/fleece/fuzz.py [--seconds 180] [--seed 1]
Prints per target: executions, clean results, FleeceErrors, unexpected exceptions (bugs), worker deaths.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fleece"))

from fuzzing import HEADERS, TARGETS, mutate, seeds  # noqa: E402

from stackwatch.fleece.errors import FleeceError  # noqa: E402
from stackwatch.fleece.worker import Limits, run_isolated  # noqa: E402


def small_disk(tmp: Path) -> bytes:
    """A 24 MiB GPT disk: an LVM PV whose LV holds a tiny ext4 root (mkfs.ext4 -d)."""
    root = tmp / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text('ID=fuzz\nVERSION_ID="1"\n')
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    fs = tmp / "fs.img"
    fs.write_bytes(b"")
    subprocess.run(["truncate", "-s", "8M", str(fs)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(fs)], check=True)
    pv = tmp / "pv.img"
    subprocess.run(
        [sys.executable, str(REPO / "scripts/fleece/mklvm2pv.py"), str(pv), "--lv", f"root={fs}"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    disk = tmp / "disk.raw"
    subprocess.run(
        ["bash", str(REPO / "scripts/fleece/mkdisk.sh"), str(disk), "gpt", f"lvm:{pv}"],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    return disk.read_bytes()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=180)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    s = seeds()
    stats = {k: {"runs": 0, "ok": 0, "fleece_error": 0, "bug": 0} for k in [*TARGETS, "pipeline"]}
    stats["pipeline"]["worker_died"] = 0
    bugs: list[str] = []
    with tempfile.TemporaryDirectory() as tmpd:
        tmp = Path(tmpd)
        disk = small_disk(tmp)
        target = tmp / "mut.raw"
        end = time.monotonic() + a.seconds
        i = 0
        while time.monotonic() < end:
            i += 1
            if i % 50 == 0:  # the isolated pipeline: slower, covers libyal
                edits = [(rng.randrange(0, 3 << 20), rng.randrange(256)) for _ in range(rng.randint(1, 40))]
                target.write_bytes(mutate(disk, edits, None))
                rep = run_isolated(str(target), limits=Limits(memory_mib=512, seconds=20))
                st = stats["pipeline"]
                st["runs"] += 1
                errs = " ".join(rep["errors"])
                if "worker died" in errs or "time limit" in errs:
                    st["worker_died"] += 1
                    bugs.append(f"pipeline: {errs[:200]}")
                elif "internal error" in errs:
                    st["bug"] += 1
                    bugs.append(f"pipeline: {errs[:200]}")
                elif rep["errors"]:
                    st["fleece_error"] += 1
                else:
                    st["ok"] += 1
                continue
            kind = rng.choice(list(TARGETS))
            edits = [(rng.randrange(HEADERS[kind]), rng.randrange(256)) for _ in range(rng.randint(1, 12))]
            cut = rng.choice([None, None, None, rng.randrange(HEADERS[kind])])
            st = stats[kind]
            st["runs"] += 1
            try:
                TARGETS[kind](mutate(s[kind], edits, cut))
                st["ok"] += 1
            except FleeceError:
                st["fleece_error"] += 1
            except Exception:  # noqa: BLE001 - exactly what we are hunting
                st["bug"] += 1
                bugs.append(f"{kind}: {traceback.format_exc(limit=3)}")
    for k, v in stats.items():
        print(k, " ".join(f"{n}={c}" for n, c in v.items()))
    for b in bugs[:10]:
        print("BUG", b)
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
