"""The rules file: loading (with reload on change or SIGHUP) and the edits of `rules add|remove` and the API.

The file is named by `rules:` in the configuration (a relative path is read from the configuration file's
folder), else `<data_dir>/rules.yaml`. A reload that fails validation keeps the rules already running and
logs the error (naming the rule and key), so a typo never stops automation. Edits round-trip the file with
ruamel.yaml (comments and order kept), are validated whole before writing, and replace it atomically.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from io import StringIO
from pathlib import Path
from typing import Any

from stackwatch.config.edit import round_trip_yaml, write_private
from stackwatch.config.settings import Settings
from stackwatch.switchboard.conditions import WrittenFloat, WrittenInt, load_yaml
from stackwatch.switchboard.rules.model import Rule, RuleError, parse_rule, parse_rules

log = logging.getLogger(__name__)


def rules_path(settings: Settings) -> Path:
    return Path(settings.rules).expanduser() if settings.rules else settings.data_dir / "rules.yaml"


def read_rules(path: Path) -> list[Rule]:
    """The rules of `path` (none when it does not exist); RuleError names the file, rule and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise RuleError(f"cannot read rules file {path}: {exc.strerror or exc}") from exc
    try:
        document = load_yaml(text)
    except Exception as exc:  # noqa: BLE001 - any YAML error, reported with the file
        raise RuleError(f"rules file {path} is not valid YAML: {exc}") from None
    return parse_rules(document, str(path))


class RulesSource:
    """The current rules of a file, re-read when the file changes (checked at most every `check_seconds`)
    or when `request_reload()` was called (SIGHUP)."""

    def __init__(self, path: Path, check_seconds: float = 1.0) -> None:
        self.path = path
        self.check_seconds = check_seconds
        self._stamp: tuple[int, int] | None = None
        self._checked_at = 0.0
        self._forced = threading.Event()
        self.rules: list[Rule] | None = None  # None: never loaded (the file was invalid from the start)
        self.generation = 0
        self.last_error: str | None = None
        self._load()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def _load(self) -> None:
        stamp = self._file_stamp()
        try:
            rules = read_rules(self.path)
        except RuleError as exc:
            self._stamp = stamp
            self.last_error = str(exc)
            log.error("rules not loaded; the previous rules keep running" if self.rules is not None else
                      "rules not loaded; rule handling waits until the file is fixed", extra={"error": str(exc)})
            return
        self._stamp, self.rules, self.last_error = stamp, rules, None
        self.generation += 1
        log.info("rules loaded", extra={"path": str(self.path), "rules": len(rules), "generation": self.generation})

    def request_reload(self) -> None:
        self._forced.set()

    def refresh(self) -> bool:
        """Reload when due and changed; True when the rules were replaced."""
        now = time.monotonic()
        if not self._forced.is_set() and now - self._checked_at < self.check_seconds:
            return False
        self._checked_at = now
        forced = self._forced.is_set()
        self._forced.clear()
        if not forced and self._file_stamp() == self._stamp:
            return False
        before = self.generation
        self._load()
        return self.generation != before


# -- edits ---------------------------------------------------------------------------------------------------

def _yaml() -> Any:
    yaml = round_trip_yaml()
    # numbers an operator wrote (`0123`) are written back as written, not as what YAML read them as
    yaml.representer.add_representer(WrittenInt, lambda r, v: r.represent_scalar("tag:yaml.org,2002:int", v.text))
    yaml.representer.add_representer(WrittenFloat,
                                     lambda r, v: r.represent_scalar("tag:yaml.org,2002:float", v.text))
    return yaml


def _load_doc(path: Path) -> Any:
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    doc = _yaml().load(text or "rules: []\n")
    if doc is None or not hasattr(doc, "get"):
        raise RuleError(f"rules file {path} must be a mapping with `rules:`")
    if doc.get("rules") is None:
        doc["rules"] = []
    return doc


def _write(path: Path, doc: Any) -> None:
    buffer = StringIO()
    _yaml().dump(doc, buffer)
    text = buffer.getvalue()
    parse_rules(load_yaml(text), str(path))  # the whole file must stay valid
    write_private(path, text)


def add_rules(path: Path, specs: list[Mapping[str, Any]], replace: bool = False) -> list[Rule]:
    """Add (or with `replace`, replace by name) rules in the file; each is validated first."""
    parsed = [parse_rule(s, f"new rule [{i}]") for i, s in enumerate(specs)]
    doc = _load_doc(path)
    items = doc["rules"]
    for spec, rule in zip(specs, parsed, strict=True):
        at = [i for i, r in enumerate(items) if hasattr(r, "get") and r.get("name") == rule.name]
        if at and not replace:
            raise RuleError(f"rule {rule.name!r} already exists in {path} (use --replace)")
        if at:
            items[at[0]] = dict(spec)
        else:
            items.append(dict(spec))
    _write(path, doc)
    return parsed


def remove_rule(path: Path, name: str) -> None:
    doc = _load_doc(path)
    items = doc["rules"]
    keep = [r for r in items if not (hasattr(r, "get") and r.get("name") == name)]
    if len(keep) == len(items):
        raise RuleError(f"no rule {name!r} in {path}")
    items[:] = keep
    _write(path, doc)
