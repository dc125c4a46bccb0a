"""Project scoping of SQLAlchemy reads (inventory, fleece reports): the WHERE clause a query serving a
non-admin caller adds. Event reads are SQL text (store/reads.py) and state the same rule there.

`projects` is None for no restriction (an admin), else the projects the caller may see (possibly none).
Pushed into SQL, so limits, counts and sort orders only ever see visible rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import false


def project_clause(column: Any, projects: Sequence[str] | None) -> Any | None:
    """The condition restricting `column` to `projects`, or None when nothing is restricted."""
    if projects is None:
        return None
    if not projects:
        return false()
    return column.in_(list(projects))


def restrict(stmt: Any, column: Any, projects: Sequence[str] | None) -> Any:
    """`stmt` with `project_clause` added (unchanged for an admin)."""
    clause = project_clause(column, projects)
    return stmt if clause is None else stmt.where(clause)
