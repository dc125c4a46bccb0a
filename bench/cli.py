"""Start-up cost of short CLI commands, as a user runs them: CPU time of the whole `stackwatch` process.

Each command runs through the venv's `stackwatch` script in a fresh process with the user's defaults
(bytecode caching on: the first, warm-up run writes the .pyc files, into a scratch PYTHONPYCACHEPREFIX so the
source tree stays clean) on an embedded SQLite store that holds the bundled demo events and is at the code's
migration heads. CPU time is the child's user + system time from wait4 (its own children included), the
median of several runs; wall time is reported beside it. `--baseline SRC` measures another checkout's
sources (e.g. /work/main/src before a change) in the same run, alternating, so both see the same machine.

    .venv/bin/python bench/cli.py [--runs 9] [--baseline /path/to/other/src]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE_SRC = Path(__file__).resolve().parents[1] / "src"
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("--help",),
    ("events", "count"),
    ("events", "list"),
    ("events", "list", "--format", "json", "--limit", "50"),
    ("inventory", "servers"),
)
#: floors in the same units: the interpreter alone, and the libraries a command on the store cannot do without
REFERENCES: tuple[tuple[str, str], ...] = (
    ("python -c pass", "pass"),
    ("python: import typer", "import typer"),
    ("python: import typer, pydantic, yaml, sqlalchemy", "import typer, pydantic, yaml, sqlalchemy"),
)


def stackwatch_script() -> str:
    """The console script beside this interpreter (the one `pip install` made), as a user would type it."""
    script = Path(sys.executable).with_name("stackwatch")
    if not script.exists():
        raise SystemExit(f"no stackwatch script beside {sys.executable}: pip install -e . first")
    return str(script)


def user_env(src: Path, data_dir: Path, pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STACKWATCH_") and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env.update(PYTHONPATH=str(src), PYTHONPYCACHEPREFIX=str(pycache), STACKWATCH_DATA_DIR=str(data_dir),
               COLUMNS="100")
    return env


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one whole process, its children included."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err[-2000:]}")
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="measured runs per command (after one warm-up)")
    parser.add_argument("--baseline", type=Path, help="another checkout's src/ to measure alongside")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document")
    args = parser.parse_args()

    script = stackwatch_script()
    trees = {"this": HERE_SRC} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    results: dict[str, dict[str, dict[str, float]]] = {name: {} for name in trees}
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        envs = {}
        for name, src in trees.items():
            envs[name] = user_env(src, Path(tmp) / name / "data", Path(tmp) / name / "pycache")
            run_once([script, "demo"], envs[name])  # the store: created, migrated, the demo events in it
        samples: dict[tuple[str, tuple[str, ...]], list[tuple[float, float]]] = {}
        for command in COMMANDS:
            for name in trees:
                run_once([script, *command], envs[name])  # warm-up: .pyc written, page cache filled
        for _ in range(args.runs):
            for command in COMMANDS:
                for name in trees:  # alternate the trees so both see the same moments of a shared machine
                    samples.setdefault((name, command), []).append(run_once([script, *command], envs[name]))
        references = {label: [run_once([sys.executable, "-c", code], envs["this"]) for _ in range(args.runs)]
                      for label, code in REFERENCES}
        for (name, command), runs in samples.items():
            cpu = [c for c, _w in runs]
            results[name][" ".join(command)] = {
                "cpu_median_s": round(statistics.median(cpu), 3),
                "cpu_min_s": round(min(cpu), 3),
                "wall_median_s": round(statistics.median(w for _c, w in runs), 3),
            }
    floors = {label: round(statistics.median(c for c, _w in runs), 3) for label, runs in references.items()}
    if args.json:
        print(json.dumps({"runs": args.runs, "cpus": os.cpu_count(), "load": os.getloadavg(), **results,
                          "references": floors}, indent=1))
        return
    print(f"stackwatch start-up, CPU seconds of the whole process (median of {args.runs}; min; wall median)"
          f"  load {os.getloadavg()[0]:.2f}")
    for command in COMMANDS:
        key = " ".join(command)
        cells = [f"{name}: {r[key]['cpu_median_s']:.3f} ({r[key]['cpu_min_s']:.3f}; {r[key]['wall_median_s']:.3f})"
                 for name, r in results.items()]
        print(f"  stackwatch {key:<38} " + "   ".join(cells))
    for label, cpu in floors.items():
        print(f"  {label:<49} {cpu:.3f}")


if __name__ == "__main__":
    main()
