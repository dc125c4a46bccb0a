"""The report's shape, without the readers: what the caller's side (CLI, runner, the worker's parent) needs
to build the report of a target that failed before any analysis, importing no parser or library."""

from __future__ import annotations

import copy

# each inspect section's value when it found nothing (inspect/__init__.py fills them)
EMPTY_SECTIONS: dict[str, object] = {
    "os": {"id": None, "name": None, "version": None, "pretty_name": None},
    "hostname": None,
    "users": [],
    "groups": [],
    "packages": [],
    "services": {"enabled": []},
    "kernels": [],
}


def empty_report(target: str) -> dict:
    """A report with every key and nothing found (fresh lists and dicts: callers append to `errors`)."""
    rep: dict = {"target": target}
    rep.update(copy.deepcopy(EMPTY_SECTIONS))
    rep.update(filesystems=[], io={}, errors=[])
    return rep
