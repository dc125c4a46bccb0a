"""nova-compute with devcloud's driver: run by devcloud's nova venv python as `python -P novacompute.py ARGS`.

nova resolves `compute_driver` only as `nova.virt.<value>`, and stackwatch is not installed in the nova
venv (nor should it be: other dependencies). So this starts nova-compute the way its console script does,
after loading novadriver.py, by path, as the module `nova.virt.stackwatch_snapshot`, and overriding
nova.conf's `compute_driver = fake.FakeDriver` with its subclass there (the override, not the file, so
the other nova services and the rendered config stay plain FakeDriver). `-P` keeps this directory off
sys.path, so devcloud's own modules (errors, spec, ...) cannot shadow anything in nova's venv. Standard
library only until nova-compute's own start has run its monkey-patching, as nova/cmd/compute.py requires.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

MODULE = "nova.virt.stackwatch_snapshot"
DRIVER = "stackwatch_snapshot.SnapshotFakeDriver"  # compute_driver: nova prefixes "nova.virt."
DRIVER_FILE = Path(__file__).with_name("novadriver.py")


def load_driver_module() -> None:
    spec = importlib.util.spec_from_file_location(MODULE, DRIVER_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {DRIVER_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)


def main() -> int:
    from nova.cmd import compute  # first: importing it patches the concurrency backend, as nova's script does

    load_driver_module()
    compute.CONF.set_override("compute_driver", DRIVER)
    return compute.main() or 0


if __name__ == "__main__":
    sys.exit(main())
