"""Writing event rows: executemany on SQLite, COPY (or one JSON INSERT for small batches) on PostgreSQL, and
the collapsed counts of a batch. EventStore (store/events.py) runs these inside its one transaction a batch;
they are apart from it only to keep each module to one job (the repository vs the drivers' fast paths).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson

from stackwatch.events.model import (
    R_MESSAGE_ID,
    R_PAYLOAD,
    R_RECEIVED_AT,
    R_TIMESTAMP,
    RECORD_FIELDS,
    Record,
)
from stackwatch.store.errors import StoreError
from stackwatch.store.reads import sqlite_time

#: the columns a record fills, in record order; `sort_time` and `collapsed_count` are derived in the INSERT
RECORD_COLUMNS: tuple[str, ...] = tuple("event_group" if name == "group" else name for name in RECORD_FIELDS)


_ADD_COLLAPSED = "UPDATE events SET collapsed_count = collapsed_count + {0} WHERE provider = {0} AND message_id = {0}"


def add_collapsed(conn, collapsed: dict[tuple[str, str], int]) -> None:  # noqa: ANN001
    """Add flood counts to their anchor rows, which this transaction inserted or which were stored before.

    The catcher only anchors counts on a record of the same batch (events/flood.py), so every anchor is
    here; one that is not means a bug, and the transaction fails rather than drop the count silently."""
    raw = conn.connection.driver_connection
    pg = conn.dialect.name == "postgresql"
    sql = _ADD_COLLAPSED.format("%s" if pg else "?")
    cursor = raw.cursor()
    try:
        missing = []
        # in key order: transactions running side by side lock the rows they share in one order (no deadlock)
        for (provider, message_id), count in sorted(collapsed.items()):
            cursor.execute(sql, (count, provider, message_id))
            if cursor.rowcount != 1:
                missing.append(message_id)
    finally:
        cursor.close()
    if missing:
        raise StoreError(f"collapsed counts for {len(missing)} event(s) not stored in this batch: {missing[:3]}")


# -- SQLite executemany path ----------------------------------------------------------------------------
_COLUMN_LIST = ", ".join(f'"{c}"' for c in RECORD_COLUMNS)
_INSERT_COLUMNS = f'{_COLUMN_LIST}, "sort_time", "collapsed_count"'
_TS_PARAM, _RECEIVED_PARAM = R_TIMESTAMP + 1, R_RECEIVED_AT + 1  # SQLite numbers parameters from 1
_SQLITE_INSERT = (
    f"INSERT INTO events ({_INSERT_COLUMNS}) "
    f"VALUES ({','.join('?' * len(RECORD_COLUMNS))}, coalesce(?{_TS_PARAM}, ?{_RECEIVED_PARAM}), 0) "
    "ON CONFLICT (provider, message_id) DO NOTHING"
)


def _time_text(value: datetime | str | None, pg: bool, cache: dict[datetime, str]) -> str | None:
    """SQLite: the naive UTC text SQLAlchemy's DATETIME reads back; PostgreSQL: ISO 8601 with its offset.
    A batch shares its receive time, so it is formatted once."""
    if value is None or type(value) is str:  # None, or formatted already (by a store process's parent)
        return value
    text = cache.get(value)
    if text is None:
        utc = value if value.tzinfo is UTC else value.astimezone(UTC)
        text = cache[value] = utc.isoformat() if pg else sqlite_time(utc)
    return text


def times_as_text(records: list[Record], dialect: str) -> list[Record]:
    """The records with their times as text for `dialect`: copies where a time needed formatting (the
    records themselves stay as they are, the catcher still reads them), the record itself where none did.

    SQLite needs text; PostgreSQL takes datetimes, but a store process's parent formats them anyway: a
    pickled datetime carries its time zone object with it, text is one string (bench/RESULTS.md)."""
    pg = dialect == "postgresql"
    out: list[Record] = []
    append = out.append
    cache: dict[datetime, str] = {}
    for record in records:
        ts, received = record[R_TIMESTAMP], record[R_RECEIVED_AT]
        if (ts is None or type(ts) is str) and type(received) is str:
            append(record)
            continue
        record = record.copy()
        record[R_TIMESTAMP] = _time_text(ts, pg, cache)
        record[R_RECEIVED_AT] = _time_text(received, pg, cache)
        append(record)
    return out


def insert_sqlite(conn, records: list[Record]) -> set[str]:  # noqa: ANN001
    """executemany of one INSERT ... ON CONFLICT DO NOTHING on the raw sqlite3 cursor; returns the new ids.

    As cheap as the multi-row VALUES ... RETURNING it replaced (`bench/sqlite_schema.py`: 49.1 vs 49.7 us CPU
    per row) without chunking under SQLite's bound-parameter limit. Which rows were new follows from
    SQLite's rowids: inside one write transaction each inserted row gets max(rowid) + 1, so the `rowcount`
    rows inserted are the rowids up to `last_insert_rowid()`; all new (the usual case) needs no query.
    """
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.executemany(_SQLITE_INSERT, times_as_text(records, "sqlite"))
        inserted = cursor.rowcount
        if inserted == len(records):
            return {record[R_MESSAGE_ID] for record in records}
        if inserted <= 0:
            return set()
        last = cursor.execute("SELECT last_insert_rowid()").fetchone()[0]
        stored = {row[0] for row in cursor.execute(
            "SELECT message_id FROM events WHERE id > ? AND id <= ?", (last - inserted, last)
        )}
    finally:
        cursor.close()
    if len(stored) != inserted:  # cannot happen with SQLite's rowid rule; never guess which were new
        raise StoreError(f"inserted {inserted} rows but found {len(stored)} in their rowid range")
    return stored


# -- PostgreSQL COPY path --------------------------------------------------------------------------------
_STAGE_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS event_records_stage ON COMMIT DELETE ROWS "
    f"AS SELECT {_COLUMN_LIST} FROM events WITH NO DATA"
)
_JSON_NUL = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_SELECT_INSERT = f'SELECT {_COLUMN_LIST}, coalesce("timestamp", "received_at"), 0'


_PG_SMALL_BATCH = 100
_PG_JSON_INSERT = (
    f"INSERT INTO events ({_INSERT_COLUMNS}) {_SELECT_INSERT} FROM json_populate_recordset(NULL::events, %s::json) "
    "ON CONFLICT (provider, message_id) DO NOTHING RETURNING message_id"
)


def copy_insert_pg(conn, rows: list[Record]) -> set[str]:  # noqa: ANN001
    """COPY rows into a session-local staging table, then one INSERT ... ON CONFLICT DO NOTHING.

    COPY skips per-row statement overhead; the INSERT keeps the unique index the single arbiter of dedup.
    Small batches (a quiet cloud, where latency is what counts) skip the stage: the rows go as one JSON
    parameter of one prepared INSERT, which saves the stage's DDL and its truncation at commit (20 rows:
    2.9-3.1 ms instead of 4.1-4.3; at 1,000 rows it loses 20 % to COPY). A multi-row INSERT ... VALUES pays
    psycopg's parsing of the long query: 4-5 ms for 20 rows.
    """
    raw = conn.connection.driver_connection
    if len(rows) <= _PG_SMALL_BATCH:
        return _json_insert_pg(raw, rows)
    with raw.cursor() as cur:
        cur.execute(_STAGE_DDL)
        with cur.copy(f"COPY event_records_stage ({_COLUMN_LIST}) FROM STDIN") as copy:
            for values in rows:
                if _has_nul(values):
                    values = _pg_clean(values)
                copy.write_row(values)
        cur.execute(
            f"INSERT INTO events ({_INSERT_COLUMNS}) {_SELECT_INSERT} FROM event_records_stage "
            "ON CONFLICT (provider, message_id) DO NOTHING RETURNING message_id"
        )
        stored = {r[0] for r in cur.fetchall()}  # ON COMMIT DELETE ROWS empties the stage
    return stored


def _json_insert_pg(raw, rows: list[Record]) -> set[str]:  # noqa: ANN001
    records = []
    for values in rows:
        if _has_nul(values):
            values = _pg_clean(values)
        record = dict(zip(RECORD_COLUMNS, values, strict=True))
        payload = record["payload"]
        record["payload"] = None if payload is None else orjson.Fragment(payload)  # already JSON text
        records.append(record)
    with raw.cursor() as cur:
        cur.execute(_PG_JSON_INSERT, [orjson.dumps(records).decode()])
        return {r[0] for r in cur.fetchall()}


def _has_nul(values: list[object]) -> bool:
    for value in values:  # noqa: SIM110 - a plain loop: any() over a generator cost 3x here, once per event
        if type(value) is str and ("\x00" in value or "\\u0000" in value):
            return True
    return False


def _pg_clean(values: list[object]) -> list[object]:
    """PostgreSQL text cannot hold NUL and jsonb rejects \\u0000: replace them, keep everything else."""
    out = [v.replace("\x00", "\ufffd") if type(v) is str else v for v in values]
    payload = out[R_PAYLOAD]
    if isinstance(payload, str) and "\\u0000" in payload:
        out[R_PAYLOAD] = _JSON_NUL.sub(r"\1\\ufffd", payload)
    return out
