"""The http monitor: polls any JSON event service, configured only by `events.http` (ManageIQ's http_monitor).

Where the list of events is in the answer (`items`), which fields hold message_id / event_type / timestamp /
payload, and how the next page is asked for are settings: `cursor: param` sends `cursor_param=<cursor_field
of the newest item read>` (a marker, an id, a `since` timestamp), `cursor: next_link` follows the link found
at `next_link`, `none` reads the same URL every time. Each item becomes `{message_id, event_type, timestamp,
payload}` for the catcher (the article's converter); an item without a message_id gets a stable one from its
content, so reading it again stores nothing twice. The cursor is saved after each stored page (`http_poll`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from stackwatch.events.model import RawMessage
from stackwatch.events.monitors.base import Availability
from stackwatch.events.monitors.http_client import (
    Endpoint,
    HttpSource,
    SourceRefused,
    catalog_endpoint,
    plain_session,
)
from stackwatch.events.monitors.http_config import HttpConfig, parse_section
from stackwatch.events.monitors.http_poll import Page, PollingMonitor
from stackwatch.events.monitors.sections import section_verdict
from stackwatch.masking import mask_url

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig

_MISSING = object()


def _section(provider: ProviderConfig) -> Any:
    return getattr(getattr(provider, "events", None), "http", None)


def dig(doc: Any, path: str) -> Any:
    """`a.b.0.c` in nested objects / lists; None when absent. An empty path is the document itself."""
    if not path:
        return doc
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part, _MISSING)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
        if doc is _MISSING:
            return None
    return doc


class HttpMonitor(PollingMonitor):
    name = "http"
    priority = 40

    def __init__(self, provider: ProviderConfig) -> None:
        super().__init__(provider)
        self.cfg = parse_section(HttpConfig, _section(provider), "events.http")
        self.interval = self.cfg.interval_seconds
        self.source: HttpSource | None = None
        self.position: dict[str, Any] | None = None
        self._recent: set[str] = set()  # message_ids of the last page: a `ge` cursor reads them again

    @classmethod
    def available(cls, provider: ProviderConfig) -> Availability:
        cfg, verdict = section_verdict(provider.events, "http", HttpConfig)
        if cfg is None:
            return verdict  # type: ignore[return-value]
        if cfg.auth == "keystone" and not provider.cloud:
            return Availability(False, "events.http.auth keystone needs the provider's cloud")
        return Availability(True, f"polls {mask_url(cfg.url)} every {cfg.interval_seconds:g} s")

    def _open(self) -> None:
        cfg = self.cfg
        if cfg.auth == "keystone":
            session, base = catalog_endpoint(self.provider, cfg.service_type or "identity", cfg.interface)
            url = cfg.url if cfg.url.startswith(("http://", "https://")) else base + "/" + cfg.url.lstrip("/")
            ep = Endpoint(session, url, dict(cfg.headers), cfg.timeout_seconds, authenticated=True)
        else:
            basic = (cfg.username or "", cfg.basic_password() or "") if cfg.auth == "basic" else None
            ep = Endpoint(plain_session(), cfg.url, dict(cfg.headers), cfg.timeout_seconds, basic=basic)
        self.source = HttpSource(ep)

    def _request(self) -> tuple[str, list[tuple[str, str]]]:
        cfg, pos = self.cfg, self.position or {}
        assert self.source is not None
        if cfg.cursor == "next_link" and pos.get("next"):
            return pos["next"], []
        params = [(k, v) for k, vs in cfg.params.items() for v in ([vs] if isinstance(vs, str) else vs)]
        if cfg.page_size_param:
            params.append((cfg.page_size_param, str(cfg.page_size)))
        if cfg.cursor == "param" and pos.get("value") is not None:
            params.append((cfg.cursor_param, str(pos["value"])))
        return self.source.endpoint.base_url, params

    def poll(self) -> Iterator[Page]:
        if self.source is None:
            self._open()
        if self.position is None:
            loaded = self.load_position()
            self.position = loaded if isinstance(loaded, dict) else {}
        assert self.source is not None
        while not self._stop.is_set():
            url, params = self._request()
            doc = self.source.get_json(url, params)
            items = dig(doc, self.cfg.items)
            if not isinstance(items, list):
                raise SourceRefused(f"{mask_url(url)}: no list at {self.cfg.items or 'the top'} of the answer", 200)
            messages, recent = self._messages(items)
            position = dict(self.position)
            if items and self.cfg.cursor == "param":
                values = [v for v in (dig(i, self.cfg.cursor_field) for i in items) if v is not None]
                value = (values[-1] if self.cfg.cursor_from == "last" else max(values, key=str)) if values else None
                if value is not None:
                    position["value"] = value
            link = dig(doc, self.cfg.next_link) if self.cfg.cursor == "next_link" else None
            if isinstance(link, str) and link:
                if not link.startswith(("http://", "https://")):
                    link = url.split("/", 3)[0] + "//" + url.split("/", 3)[2] + "/" + link.lstrip("/")
                position["next"] = link
            self.position = position
            new_recent = recent or self._recent
            done = len(items) < self.cfg.page_size or (self.cfg.cursor == "next_link" and not link) \
                or self.cfg.cursor == "none" or not (recent - self._recent)
            self._recent = new_recent
            yield messages, position
            if done:
                return

    def _messages(self, items: list[Any]) -> tuple[list[RawMessage], set[str]]:
        cfg, out, ids = self.cfg, [], set()
        now = datetime.now(UTC)
        for item in items:
            if cfg.item_format == "as_is":
                mid = dig(item, cfg.message_id)
                if mid is not None:
                    ids.add(str(mid))
                    if str(mid) in self._recent:
                        continue
                out.append(RawMessage(orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS), "http", received_at=now))
                continue
            payload = dig(item, cfg.payload)
            body: dict[str, Any] = {"event_type": dig(item, cfg.event_type), "payload": payload,
                                    "timestamp": dig(item, cfg.timestamp), "publisher_id": f"http:{self.name}"}
            mid = dig(item, cfg.message_id)
            if mid is not None:
                body["message_id"] = str(mid)
                ids.add(str(mid))
                if str(mid) in self._recent:
                    continue
            out.append(RawMessage(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS), "http", received_at=now))
        return out, ids

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["requests"] = self.source.requests if self.source is not None else 0
        return out
