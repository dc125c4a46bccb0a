"""`GET /api/v1/stream` (WebSocket): the caller's events as they are stored, filtered, resumable.

Query: `events` (globs, repeatable), `group`, `vm`, `host` (and any ref as `NAME_ref`), `provider`, `project`
(admins; a non-admin is always scoped to its own project and naming another is refused), `last_event_id`.
Each message is `{"id": CURSOR, "event": {canonical event}}`; CURSOR is opaque (every provider's stream
position), and a client that reconnects with `last_event_id=CURSOR` gets every matching event stored after the
one it last received, none twice. Without it the stream starts at the head (what is stored from now on). The
first message, `{"id": CURSOR, "event": null}`, says where the stream starts: a client that loses the
connection before any event arrives resumes from there without a gap.

The scope and filter are the subscriptions' own (`push/filters.py`), applied to every event before it is sent,
so a query can narrow what a caller sees and never widen it. Close codes: 4400 bad query or cursor, 4401/4403
not authenticated / not allowed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import contextlib
import logging
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from sqlalchemy import distinct, select
from starlette.concurrency import run_in_threadpool

from stackwatch.api.identity import Caller, current_caller
from stackwatch.events.model import REF_FIELDS
from stackwatch.push.filters import REF_ALIASES, EventFilter, FilterError, Scope, selects
from stackwatch.store.models import EventRow
from stackwatch.store.stream import EventStream, StreamItem, StreamPosition

log = logging.getLogger(__name__)
router = APIRouter(tags=["stream"])
POLL_SECONDS = 0.05
BATCH = 500


class StreamQueryError(ValueError):
    """A query or cursor the stream cannot use (closed with 4400)."""


class StreamHub:
    """One reader of the stored stream per API process, shared by every connected client.

    It reads each provider's new events once (every `POLL_SECONDS` when idle) and keeps the last `keep` of
    them in memory, in stream order; a client whose position is within what the hub holds takes its events
    from there and sleeps until the hub has more, so a hundred clients cost one database read per poll, not a
    hundred. A client further behind (a resume from an old cursor) reads the database itself until it has
    caught up. `floor[p]` is the position up to which provider p's events are no longer (or never were) held.
    """

    def __init__(self, stream: EventStream, providers: list[str], keep: int = 20_000) -> None:
        self.stream = stream
        self.providers = list(providers)
        self.keep = keep
        self.items: dict[str, list[StreamItem]] = {p: [] for p in providers}
        self.floor: dict[str, StreamPosition] = {}
        self.version = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> StreamHub:
        head = await run_in_threadpool(self.stream.head)
        self.floor = dict.fromkeys(self.providers, head)
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                grew = False
                for provider in self.providers:
                    held = self.items[provider]
                    last = held[-1].position if held else self.floor[provider]
                    new = await run_in_threadpool(self.stream.read, provider, last, BATCH)
                    if new:
                        held = held + new
                        if len(held) > self.keep:
                            self.floor[provider] = held[-self.keep - 1].position
                            held = held[-self.keep:]
                        self.items[provider] = held
                        grew = True
                failures = 0
            except Exception:  # noqa: BLE001 - the database is away: clients wait, the hub tries again
                failures += 1
                log.warning("stream hub read failed", exc_info=failures == 1)
                await asyncio.sleep(min(5.0, POLL_SECONDS * 2 ** failures))
                continue
            if grew:
                self.version += 1
                self._changed.set()
                self._changed = asyncio.Event()
            else:
                await asyncio.sleep(POLL_SECONDS)

    def after(self, provider: str, position: StreamPosition) -> list[StreamItem] | None:
        """The held events after `position`, or None when `position` is before what the hub holds."""
        if provider not in self.floor or position < self.floor[provider]:
            return None
        held = self.items[provider]
        return held[bisect.bisect_right(held, position, key=lambda item: item.position):]

    async def wait(self, seen: int, timeout: float) -> None:
        """Until the hub has read more than it had at version `seen` (at once if it has), or `timeout`."""
        if self.version != seen:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)


async def _hub(websocket: WebSocket, stream: EventStream, providers: list[str]) -> StreamHub:
    state = websocket.app.state
    hub = getattr(state, "push_stream_hub", None)
    if hub is None:
        hub = state.push_stream_hub = StreamHub(stream, providers)
        await hub.start()
    return hub


def encode_cursor(positions: dict[str, StreamPosition]) -> str:
    doc = {p: [pos.txid, pos.event_id] for p, pos in sorted(positions.items())}
    return base64.urlsafe_b64encode(orjson.dumps(doc)).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, StreamPosition]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return {str(p): StreamPosition(int(v[0]), int(v[1])) for p, v in doc.items()}
    except (binascii.Error, ValueError, TypeError, AttributeError, IndexError, orjson.JSONDecodeError):
        raise StreamQueryError("last_event_id is not a cursor this stream sent") from None


def _scope(caller: Caller, project: str | None) -> Scope:
    if caller.is_admin:
        return Scope(project) if project else Scope(all_projects=True)
    if caller.project_id is None or (project is not None and project != caller.project_id):
        raise HTTPException(403, "you may stream only your own project's events")
    return Scope(caller.project_id)


def _filter(params: Any) -> EventFilter:
    refs = {k: v for k, v in params.items() if k in REF_ALIASES or k in REF_FIELDS}
    try:
        return EventFilter.build(params.getlist("events") or None, params.getlist("group") or None, refs)
    except FilterError as exc:
        raise StreamQueryError(str(exc)) from None


def _providers(websocket: WebSocket, stream: EventStream, wanted: str | None) -> list[str]:
    if wanted:
        return [wanted]
    configured = [p.name for p in websocket.app.state.settings.providers]
    if configured:
        return configured
    with stream.engine.connect() as conn:  # no providers configured: those events were ingested under
        return sorted(conn.execute(select(distinct(EventRow.provider))).scalars())


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Accept, then close with `code`: a client sees the code and reason (a refusal before accepting is a bare
    HTTP 403 to it)."""
    await websocket.accept()
    await websocket.close(code=code, reason=reason[:120])


async def _until_closed(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends until it goes away, so an idle stream notices a disconnect."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


@router.websocket("/api/v1/stream")
async def stream_events(websocket: WebSocket) -> None:
    params = websocket.query_params
    try:
        caller = current_caller(websocket)  # type: ignore[arg-type] - reads only headers and app state
        scope = _scope(caller, params.get("project"))
    except HTTPException as exc:
        await _refuse(websocket, 4401 if exc.status_code == 401 else 4403, str(exc.detail))
        return
    try:
        flt = _filter(params)
        resume = decode_cursor(params["last_event_id"]) if params.get("last_event_id") else {}
    except StreamQueryError as exc:
        await _refuse(websocket, 4400, str(exc))
        return
    await websocket.accept()
    stream = EventStream(websocket.app.state.store.engine)
    providers = await run_in_threadpool(_providers, websocket, stream, params.get("provider"))
    head = await run_in_threadpool(stream.head) if set(providers) - set(resume) else None
    positions = {p: resume.get(p, head) for p in providers}
    hub = await _hub(websocket, stream, await run_in_threadpool(_providers, websocket, stream, None))
    closed = asyncio.create_task(_until_closed(websocket))
    try:
        # text frames: JSON is text, and a browser then hands the console a string, not a Blob
        await websocket.send_text(orjson.dumps({"id": encode_cursor(positions), "event": None}).decode())
        while not closed.done():
            seen, full = hub.version, False
            for provider in providers:
                items = hub.after(provider, positions[provider])
                if items is None:  # behind what the hub holds, or a provider it does not read
                    items = await run_in_threadpool(stream.read, provider, positions[provider], BATCH)
                    full |= len(items) == BATCH
                for item in items:
                    positions[provider] = item.position
                    if selects(scope, flt, item.event):
                        await websocket.send_text(orjson.dumps(
                            {"id": encode_cursor(positions), "event": item.event.to_json_dict()}).decode())
            if not full:
                await asyncio.wait({closed, asyncio.ensure_future(hub.wait(seen, POLL_SECONDS))},
                                   return_when=asyncio.FIRST_COMPLETED)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        closed.cancel()
