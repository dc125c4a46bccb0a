"""Store errors an operator (or a monitor deciding whether to ack) can act on, and the one rule that sorts them.

A write fails for one of two reasons, and the caller must treat them oppositely:

- the database cannot be written now (locked, connection lost, server shutting down or full): nothing is
  wrong with the batch. Retry it, forever, with back-off; acknowledge nothing meanwhile (`StoreUnavailable`);
- the database refuses what the batch holds (a constraint, a value it cannot take): retrying the same rows
  fails the same way, so the caller isolates the message it refuses (`StoreError`, "refused").

Drivers raise the first kind in many shapes: SQLAlchemy wraps some (`OperationalError`), but a raw cursor
(our executemany and COPY paths) raises `sqlite3.OperationalError` or `psycopg.OperationalError` /
`AdminShutdown` bare, and a pipe to a dead store process raises `OSError`. `is_unavailable` looks through
all of them, so every write path (thread writer, store process, process runner) decides alike.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class of store errors; raised as is, the database refused what the batch holds."""


class StoreUnavailable(StoreError):
    """The database could not be reached or written: nothing of the batch may be acknowledged."""


#: SQLSTATE classes that say nothing about the rows: connection exception (08), insufficient resources
#: (53: disk full, out of memory, too many connections), operator intervention (57: admin / crash shutdown,
#: cannot connect now, query canceled), system error (58: I/O), and transaction rollback (40: serialization
#: failure, deadlock), which a retry of the same rows resolves.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})
#: ... and single conditions of other classes: lock not available, read-only transaction (a standby),
#: data or index corrupted.
_UNAVAILABLE_SQLSTATES = frozenset({"55P03", "25006", "XX001", "XX002"})


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and what it wraps: SQLAlchemy's `.orig`, `raise ... from`, and the error being handled."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo and len(seen) < 16:
        current = todo.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def _one_is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, StoreUnavailable):
        return True
    if type(exc) is StoreError:
        return False  # decided already by whoever raised it; look at its cause for anything else
    if isinstance(exc, (ConnectionError, EOFError, TimeoutError, OSError)):
        return True
    module = type(exc).__module__.split(".", 1)[0]
    name = type(exc).__name__
    if module == "sqlalchemy":
        if getattr(exc, "connection_invalidated", False):
            return True
        return name in ("OperationalError", "DisconnectionError", "TimeoutError", "InvalidatePoolError")
    if module in ("sqlite3", "_sqlite3"):
        # sqlite3 raises OperationalError for the file, not the rows: locked, busy, disk I/O, disk full,
        # unable to open; DatabaseError itself for a corrupt file. What a row causes is one of the other
        # subclasses: IntegrityError (a constraint, a trigger's RAISE), DataError, InterfaceError, ...
        return name in ("OperationalError", "DatabaseError")
    if module == "psycopg":
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate:
            return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
        # no SQLSTATE: the server never answered (connection lost, closed, COPY cut off)
        return name in ("OperationalError", "InterfaceError") or isinstance(exc, (OSError,))
    return False


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the store cannot be written now (retry, ack nothing), False when the store
    refused the batch's content. Looks through wrappers; any unavailable cause makes the whole unavailable."""
    return any(_one_is_unavailable(cause) for cause in _causes(exc))


def as_store_error(exc: BaseException, what: str = "cannot store batch") -> StoreError:
    """`exc` as the store error the caller acts on: `StoreUnavailable` or a `StoreError` (refused)."""
    if isinstance(exc, StoreError) and isinstance(exc, StoreUnavailable) == is_unavailable(exc):
        return exc
    detail = f"{exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}"
    if is_unavailable(exc):
        return StoreUnavailable(f"database unavailable: {detail}")
    return StoreError(f"{what}: {detail}")
