"""The migration heads this code expects, read from the version files' literals without Alembic or SQLAlchemy.

Both the store (`db.upgrade` skips Alembic when the database is at these heads) and the lean read path of short
commands (`reads.open_sqlite_reader`, which must not import SQLAlchemy at all) ask whether a database is current.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: a module-level `revision = ...` / `down_revision: ... = ...` line (only its value is parsed: ~10x cheaper
#: than parsing the whole file, which a short command does on every start)
_ASSIGNMENT = re.compile(r"^(?P<name>revision|down_revision)\b[^=\n]*=(?P<value>[^\n#]*)", re.MULTILINE)


@functools.cache
def code_heads() -> frozenset[str] | None:
    """Head revisions of the shipped migrations, from each version file's `revision` and `down_revision`
    literals (read, not imported); None when a file does not state them plainly: Alembic decides then."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        if path.name == "__init__.py":
            continue
        found: dict[str, object] = {}
        for match in _ASSIGNMENT.finditer(path.read_text(encoding="utf-8")):
            try:
                found.setdefault(match["name"], ast.literal_eval(match["value"].strip()))
            except (ValueError, SyntaxError):
                return None
        down = found.get("down_revision")
        if not isinstance(found.get("revision"), str) or not isinstance(down, str | tuple | list | None):
            return None
        revisions.add(found["revision"])  # type: ignore[arg-type]
        parents.update([down] if isinstance(down, str) else (down or ()))
    return frozenset(revisions - parents) or None
