"""Fleece benchmark: each built image over loopback HTTP Range vs a full download; then 8 images at once.

Usage: python bench/fleece.py [--jobs 8] [--large] [--compressed]   (builds or reuses the fixture images first)
       python bench/fleece.py --startup IMAGE [--runs 10]   (the whole `stackwatch fleece IMAGE` process)
Per image it prints bytes read, % of the file, requests, wall time of the isolated fleece (worker start
included) and the wall time of downloading the whole file from the same server. `--large` adds the
reference-size image of scripts/fleece/build_large.py (a 3 GiB Debian disk in a ~270 MiB qcow2: the size
the issue's <= 1 % figure is about); it is built only here, never in CI. `--compressed` adds a
`qemu-img convert -c` copy of every other standalone qcow2 (rows `NAME+c`, in a temporary directory), so
the compressed-cluster reader is measured on more than the one compressed image the builder makes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts" / "fleece"))

from rangeserver import serve  # noqa: E402

from stackwatch.fleece.runner import fleece_many  # noqa: E402
from stackwatch.fleece.worker import run_isolated  # noqa: E402


def full_download(url: str) -> tuple[int, float]:
    t = time.monotonic()
    n = 0
    with requests.get(url, stream=True, timeout=600) as r:
        for chunk in r.iter_content(1 << 20):
            n += len(chunk)
    return n, time.monotonic() - t


def built(script: str) -> Path:
    out = subprocess.run([sys.executable, str(REPO / script)], check=True, text=True, stdout=subprocess.PIPE)
    return Path(out.stdout.strip().splitlines()[-1])


def compressed_copies(sources: dict[str, tuple[dict, Path]], directory: Path) -> list[tuple[str, dict, Path]]:
    """`qemu-img convert -c` of each standalone, uncompressed qcow2 among `sources` (name -> manifest, path)."""
    out = []
    for name, (img, path) in sources.items():
        if path.suffix != ".qcow2" or img.get("backing") or "compressed" in name:
            continue
        target = directory / f"{name}+c.qcow2"
        subprocess.run(["qemu-img", "convert", "-q", "-c", "-O", "qcow2", str(path), str(target)], check=True)
        out.append((f"{name}+c", {**img, "file": target.name, "size": target.stat().st_size}, target))
    return out


SCRIPT = "import sys\nfrom stackwatch.cli.main import app\nif __name__ == '__main__':\n    sys.exit(app())\n"


def _reap_orphans() -> None:
    """Wait for every process re-parented to us (we are a subreaper), so their CPU time is counted."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def startup(image: str, runs: int) -> int:
    """`stackwatch fleece IMAGE --format json` as a whole process, `runs` times: the wall time until the
    command exits (what a user waits) and the CPU time of every process it started, also those that outlive
    it (we become a child subreaper, so orphans are re-parented to us and counted when reaped), beside the
    analysis seconds the report itself gives. The console script is run as a script by path, as installed."""
    import ctypes
    import resource
    import statistics

    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "stackwatch"
        script.write_text(SCRIPT)
        cmd = [sys.executable, str(script), "fleece", image, "--format", "json", "--no-store"]
        walls, cpus, analysis = [], [], []
        for i in range(runs + 1):  # the first run warms the page cache and is not counted
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.monotonic()
            out = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.monotonic() - t
            _reap_orphans()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if out.returncode not in (0, 2):
                raise SystemExit(out.stderr)
            if i:
                walls.append(wall)
                cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
                analysis.append(json.loads(out.stdout)[0]["io"]["seconds"])
    med = statistics.median
    print(
        f"stackwatch fleece {image} ({runs} runs, median [min-max]): wall {med(walls):.3f} s "
        f"[{min(walls):.3f}-{max(walls):.3f}], CPU of all its processes {med(cpus):.3f} s "
        f"[{min(cpus):.3f}-{max(cpus):.3f}], analysis (report io.seconds) {med(analysis):.3f} s"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--large", action="store_true", help="also the 3 GiB reference image (built on first use)")
    ap.add_argument("--compressed", action="store_true", help="also a qemu-img -c copy of each standalone qcow2")
    ap.add_argument("--startup", metavar="IMAGE", help="only: the whole `stackwatch fleece IMAGE` process")
    ap.add_argument("--runs", type=int, default=10, help="runs of --startup")
    a = ap.parse_args()
    if a.startup:
        return startup(a.startup, a.runs)
    d = built("scripts/fleece/build.py")
    manifest = json.loads((d / "manifest.json").read_text())
    srv, base = serve(str(d))
    images = [(name, img, base + img["file"]) for name, img in manifest["images"].items()]
    sources = {name: (img, d / img["file"]) for name, img in manifest["images"].items()}
    servers = [srv]
    if a.large:  # its own directory and server: the test images' cache stays as the builder left it
        large = built("scripts/fleece/build_large.py")
        lsrv, lbase = serve(str(large))
        servers.append(lsrv)
        lm = json.loads((large / "manifest.json").read_text())
        images += [(name, img, lbase + img["file"]) for name, img in lm["images"].items()]
        sources.update({name: (img, large / img["file"]) for name, img in lm["images"].items()})
    tmp = tempfile.TemporaryDirectory(prefix="fleece-bench-")
    if a.compressed:
        copies = compressed_copies(sources, Path(tmp.name))
        csrv, cbase = serve(tmp.name)
        servers.append(csrv)
        images += [(name, img, cbase + img["file"]) for name, img, _path in copies]
    run_isolated(base + manifest["images"]["rpm-lvm-xfs"]["file"])  # page cache and server warm
    rows = []
    print(f"{'image':22} {'file MiB':>9} {'read KiB':>9} {'%':>6} {'req':>4} {'fleece s':>9} {'download s':>10}")
    for name, img, url in images:
        t = time.monotonic()
        rep = run_isolated(url)
        wall = time.monotonic() - t
        assert not rep["errors"], rep["errors"]
        io = rep["io"]
        size, dl = full_download(url)
        total = img["size"] + ((d / img["backing"]).stat().st_size if img.get("backing") else 0)
        pct = 100.0 * io["bytes_read"] / total  # an overlay's reads include its backing file's
        rows.append(
            {
                "image": name,
                "file_bytes": img["size"],
                "bytes_read": io["bytes_read"],
                "percent": pct,
                "requests": io["requests"],
                "fleece_s": wall,
                "download_s": dl,
            }
        )
        print(
            f"{name:22} {total / 2**20:9.1f} {io['bytes_read'] / 1024:9.0f} {pct:6.2f} "
            f"{io['requests']:4d} {wall:9.3f} {dl:10.3f}"
        )
    names = list(manifest["images"])[: a.jobs]
    while len(names) < a.jobs:
        names += names[: a.jobs - len(names)]
    t = time.monotonic()
    reps = fleece_many([base + manifest["images"][n]["file"] for n in names], jobs=a.jobs)
    wall = time.monotonic() - t
    assert all(not r["errors"] for r in reps)
    print(
        f"{a.jobs} images at once (--jobs {a.jobs}): {wall:.3f} s wall, "
        f"{sum(r['io']['bytes_read'] for r in reps) / 2**20:.1f} MiB, {sum(r['io']['requests'] for r in reps)} "
        "requests"
    )
    for s in servers:
        s.shutdown()
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
