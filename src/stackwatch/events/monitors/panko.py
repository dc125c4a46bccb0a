"""The panko monitor: polls Panko 10's (Ceilometer v2) `/v2/events`, pages that never stall, a persisted cursor.

ManageIQ's poller asks for `start_timestamp ge <last>` with no limit or marker: when more than a page of events
share one `generated` time it never advances, and late arrivals are missed. Here every cycle reads
`start_timestamp ge (cursor - read_back_seconds)` sorted `generated:asc, message_id:asc`, in pages of
`page_size` chained by `marker` (the last message_id of the previous page), until a short page. The cursor is
the newest `generated` seen and the message_ids seen at it; it is saved after each stored page
(`http_poll`), so a restart resumes there. Events re-read inside the window are skipped by message_id (and
the store's unique message_id absorbs what a restart re-reads).

Panko's quirks: an unknown marker answers 500 (the event was expired meanwhile): the cycle starts again from
the timestamp cursor without a marker. `limit=0` means 100, so the limit is always explicit. Trait values
come as strings with a separate type (`panko_convert` types them). On PostgreSQL at READ COMMITTED an event
inserted while a page is read can come back with no traits: such an event (and the rest of its page) is
read again, up to `traitless_retries` times, before it is taken as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stackwatch.events.convert import ConversionError
from stackwatch.events.model import RawMessage
from stackwatch.events.monitors.base import Availability
from stackwatch.events.monitors.http_client import (
    Endpoint,
    HttpSource,
    SourceUnavailable,
    catalog_endpoint,
    plain_session,
)
from stackwatch.events.monitors.http_config import PankoConfig, parse_section
from stackwatch.events.monitors.http_poll import Page, PollingMonitor
from stackwatch.events.monitors.sections import section_verdict
from stackwatch.events.panko_convert import event_body
from stackwatch.events.timestamps import TimestampError, parse_timestamp
from stackwatch.masking import mask_url

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig

log = logging.getLogger(__name__)

SERVICE_TYPE = "event"
#: at most this many message_ids are kept in the cursor (events sharing the newest `generated` time)
MAX_CURSOR_IDS = 20_000


def _section(provider: ProviderConfig) -> Any:
    return getattr(getattr(provider, "events", None), "panko", None)


def _iso(ts: datetime) -> str:
    """Panko's own form: naive UTC, microseconds only when there are some."""
    return ts.astimezone(UTC).replace(tzinfo=None).isoformat()


class Cursor:
    """The newest `generated` time read and the message_ids read at it; `floor` (skip_history) hides older."""

    def __init__(self, generated: datetime | None = None, ids: set[str] | None = None,
                 floor: datetime | None = None) -> None:
        self.generated = generated
        self.ids = ids or set()
        self.floor = floor

    def advance(self, generated: datetime, message_id: str) -> None:
        if self.generated is None or generated > self.generated:
            self.generated, self.ids = generated, {message_id}
        elif generated == self.generated and len(self.ids) < MAX_CURSOR_IDS:
            self.ids.add(message_id)

    def position(self) -> dict[str, Any]:
        return {"generated": _iso(self.generated) if self.generated else None, "ids": sorted(self.ids),
                "floor": _iso(self.floor) if self.floor else None}

    @classmethod
    def from_position(cls, position: Any) -> Cursor:
        if not isinstance(position, dict):
            return cls()
        gen, floor = position.get("generated"), position.get("floor")
        return cls(parse_timestamp(gen) if gen else None, set(position.get("ids") or ()),
                   parse_timestamp(floor) if floor else None)


class PankoMonitor(PollingMonitor):
    name = "panko"
    priority = 60

    def __init__(self, provider: ProviderConfig) -> None:
        super().__init__(provider)
        self.cfg = parse_section(PankoConfig, _section(provider), "events.panko")
        self.interval = self.cfg.interval_seconds
        self.skip_history = bool(getattr(provider.events, "skip_history", False))
        self.source: HttpSource | None = None
        self.cursor: Cursor | None = None  # None until loaded from the store
        self._seen: dict[str, datetime] = {}  # message_id -> generated, inside the read-back window

    # -- plugin contract -------------------------------------------------------------------------------
    @classmethod
    def available(cls, provider: ProviderConfig) -> Availability:
        cfg, verdict = section_verdict(provider.events, "panko", PankoConfig)
        if cfg is None:
            return verdict  # type: ignore[return-value]
        if cfg.endpoint:
            return Availability(True, f"polls {mask_url(cfg.endpoint)}/v2/events every {cfg.interval_seconds:g} s")
        if cfg.auth != "keystone":
            return Availability(False, "events.panko.endpoint is needed with auth none", misconfigured=True)
        if not provider.cloud:
            return Availability(False, "no events.panko.endpoint and no cloud to find the `event` service in")
        return Availability(True, f"polls the `event` service of cloud {provider.cloud!r} every "
                                  f"{cfg.interval_seconds:g} s")

    @classmethod
    def probe(cls, provider: ProviderConfig) -> Availability | None:
        if _section(provider) is None:
            return None
        monitor = cls(provider)
        try:
            monitor._open()
            assert monitor.source is not None
            monitor.source.get_json(monitor._events_url(), monitor._params(None, None, 1))
        except Exception as exc:  # noqa: BLE001 - a verdict for humans
            return Availability(False, f"{type(exc).__name__}: {exc}")
        return Availability(True, f"{mask_url(monitor._events_url())} answers")

    # -- polling ---------------------------------------------------------------------------------------
    def _open(self) -> None:
        cfg = self.cfg
        if cfg.auth == "keystone":
            session, url = catalog_endpoint(self.provider, SERVICE_TYPE, cfg.interface)
            base = cfg.endpoint.rstrip("/") if cfg.endpoint else url
            ep = Endpoint(session, base, dict(cfg.headers), cfg.timeout_seconds, authenticated=True)
        else:
            ep = Endpoint(plain_session(), (cfg.endpoint or "").rstrip("/"), dict(cfg.headers), cfg.timeout_seconds)
        self.source = HttpSource(ep)

    def _events_url(self) -> str:
        assert self.source is not None
        return self.source.endpoint.base_url + "/v2/events"

    def _params(self, start: datetime | None, marker: str | None, limit: int) -> list[tuple[str, str]]:
        # q.field / q.op / q.type / q.value are zipped by position: always all four, or Panko answers 500
        params: list[tuple[str, str]] = []
        if self.cfg.all_tenants:
            params += [("q.field", "all_tenants"), ("q.op", "eq"), ("q.type", ""), ("q.value", "true")]
        if start is not None:
            params += [("q.field", "start_timestamp"), ("q.op", "ge"), ("q.type", ""), ("q.value", _iso(start))]
        params += [("limit", str(limit)), ("sort", "generated:asc"), ("sort", "message_id:asc")]
        if marker:
            params.append(("marker", marker))
        return params

    def _load_cursor(self) -> Cursor:
        cursor = Cursor.from_position(self.load_position())
        if cursor.generated is None and cursor.floor is None and self.skip_history:
            cursor.floor = datetime.now(UTC)
            self.save_position(cursor.position())
            log.info("monitor %s/panko: skip_history: events generated before %s are not read",
                     self.provider.name, _iso(cursor.floor))
        self._seen = dict.fromkeys(cursor.ids, cursor.generated) if cursor.generated else {}
        return cursor

    def poll(self) -> Iterator[Page]:
        if self.source is None:
            self._open()
        if self.cursor is None:
            self.cursor = self._load_cursor()
        cursor = self.cursor
        start = cursor.generated - timedelta(seconds=self.cfg.read_back_seconds) if cursor.generated else None
        if cursor.floor is not None and (start is None or start < cursor.floor):
            start = cursor.floor
        marker: str | None = None
        traitless_tries = 0
        size = self.cfg.page_size
        while not self._stop.is_set():
            try:
                page = self._get_page(start, marker, size)
            except SourceUnavailable as exc:
                if marker is None or exc.status != 500 or "arker" not in str(exc):
                    raise
                log.warning("monitor %s/panko: marker %s is gone (%s); reading again from the timestamp cursor",
                            self.provider.name, marker, exc)
                marker = None
                continue
            messages, cut, last_id = self._page_messages(page, traitless_tries < self.cfg.traitless_retries)
            yield messages, cursor.position()
            if cut:
                traitless_tries += 1
                marker = last_id or marker
                self._stop.wait(0.2 * traitless_tries)
                continue
            traitless_tries = 0
            if len(page) < size:
                break
            marker = page[-1].get("message_id")
        self._prune()

    def _get_page(self, start: datetime | None, marker: str | None, size: int) -> list[dict[str, Any]]:
        assert self.source is not None
        page = self.source.get_json(self._events_url(), self._params(start, marker, size))
        if not isinstance(page, list):
            raise SourceUnavailable(f"Panko answered a {type(page).__name__}, not a list of events")
        return page

    def _page_messages(self, page: list[Any], wait_for_traits: bool) -> tuple[list[RawMessage], bool, str | None]:
        """The page's new events as raw messages; (messages, cut short at a traitless event, last id kept)."""
        assert self.cursor is not None
        cursor, seen = self.cursor, self._seen
        out: list[RawMessage] = []
        now = datetime.now(UTC)
        last_id: str | None = None
        for event in page:
            if not isinstance(event, dict):
                out.append(RawMessage(repr(event).encode()[:65536], "panko", received_at=now))
                continue
            message_id = event.get("message_id")
            if wait_for_traits and event.get("traits") == []:
                # Panko's READ COMMITTED race: read it (and what follows) again rather than store it bare
                return out, True, last_id
            last_id = message_id if isinstance(message_id, str) else last_id
            try:
                generated = parse_timestamp(event.get("generated"))
            except TimestampError:
                generated = None
            if isinstance(message_id, str) and message_id in seen:
                continue
            if generated is not None and cursor.floor is not None and generated < cursor.floor:
                continue
            try:
                body = event_body(event)
            except ConversionError:
                import orjson  # the catcher quarantines it with the converter's reason

                body = orjson.dumps(event)
            out.append(RawMessage(body, "panko", received_at=now))
            if isinstance(message_id, str) and generated is not None:
                seen[message_id] = generated
                cursor.advance(generated, message_id)
        return out, False, last_id

    def _prune(self) -> None:
        """Forget ids older than the read-back window (they cannot be read again by a cycle)."""
        cursor = self.cursor
        if cursor is None or cursor.generated is None:
            return
        horizon = cursor.generated - timedelta(seconds=self.cfg.read_back_seconds + 1)
        self._seen = {k: v for k, v in self._seen.items() if v >= horizon}

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["requests"] = self.source.requests if self.source is not None else 0
        return out
