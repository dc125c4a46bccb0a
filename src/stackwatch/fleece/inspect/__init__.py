"""What the guest holds: OS, hostname, accounts, packages, enabled units, kernels.

Each section fails alone: its error goes into the report's `errors` and the others still run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from stackwatch.fleece.errors import FleeceError, PartialResult
from stackwatch.fleece.inspect import accounts, apk, dpkg, kernels, release, rpmdb, systemd
from stackwatch.fleece.report import EMPTY_SECTIONS

PACKAGE_SOURCES: tuple[Callable, ...] = (dpkg.packages, rpmdb.packages, apk.packages)


def _packages(root) -> list[dict]:
    out: list[dict] = []
    for source in PACKAGE_SOURCES:
        found = source(root)
        if found:
            out.extend(found)
    return sorted(out, key=lambda p: (p["manager"], p["name"], p["arch"]))


_READERS: dict[str, Callable] = {
    "os": release.os_info,
    "hostname": release.hostname,
    "users": accounts.users,
    "groups": accounts.groups,
    "packages": _packages,
    "services": systemd.enabled,
    "kernels": kernels.kernels,
}
# section -> (reader, value when it fails); the empty values live in report.py, which imports no reader
SECTIONS: dict[str, tuple[Callable, object]] = {key: (fn, EMPTY_SECTIONS[key]) for key, fn in _READERS.items()}


def inspect_root(root) -> tuple[dict, list[str]]:
    report: dict = {}
    errors: list[str] = []
    for key, (fn, empty) in SECTIONS.items():
        try:
            report[key] = fn(root)
        except PartialResult as e:
            report[key] = e.value
            errors.append(f"{key}: {e}")
        except (FleeceError, OSError, ValueError, UnicodeError) as e:
            report[key] = copy.deepcopy(empty)
            errors.append(f"{key}: {type(e).__name__}: {e}")
    return report, errors
