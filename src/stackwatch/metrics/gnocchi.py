"""A small Gnocchi client over keystoneauth1: resource search and the `/v1/aggregates` API, counted.

Two ways in, one HTTP layer: `keystone` sends the provider's token (openstacksdk connection of its cloud) to
the catalog's `metric` endpoint, or to `metrics.gnocchi.endpoint`; `basic` sends HTTP basic auth (Gnocchi's
`auth_mode = basic`) to the configured endpoint only, never a token. Every request is counted
(`requests`), because a capture cycle's cost is measured in requests (docs/metrics.md).
"""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from typing import Any

from stackwatch.config.settings import ProviderConfig
from stackwatch.masking import mask_text

log = logging.getLogger(__name__)
PAGE = 1000  # Gnocchi's default [api] max_limit


class GnocchiError(Exception):
    """Gnocchi could not be reached or refused a request; the capture retries later from its cursors."""


Points = list[tuple[datetime, float]]


class GnocchiClient:
    def __init__(self, session: Any, endpoint: str, *, headers: dict[str, str] | None = None,
                 authenticated: bool = True, timeout: float = 60.0) -> None:
        self.session = session
        self.endpoint = endpoint.rstrip("/")
        self.headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
        self.authenticated = authenticated
        self.timeout = timeout
        self.requests = 0

    @classmethod
    def for_provider(cls, provider: ProviderConfig) -> GnocchiClient:
        """The client the provider's `metrics.gnocchi` section describes."""
        from keystoneauth1 import session as ks_session

        cfg = provider.metrics.gnocchi if provider.metrics else None
        if cfg is None:
            raise GnocchiError(f"provider {provider.name} has no metrics section")
        if cfg.auth == "basic":
            token = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
            return cls(ks_session.Session(verify=cfg.verify), cfg.endpoint or "",
                       headers={"Authorization": f"Basic {token}"}, authenticated=False,
                       timeout=cfg.timeout_seconds)
        from stackwatch.inventory.connect import ProviderConnectError, connect

        try:
            conn = connect(provider)
            endpoint = cfg.endpoint or conn.session.get_endpoint(service_type="metric", interface=cfg.interface)
        except ProviderConnectError as exc:
            raise GnocchiError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - keystoneauth's catalog errors are many
            raise GnocchiError(f"provider {provider.name}: no metric endpoint: {exc.__class__.__name__}") from None
        if not endpoint:
            raise GnocchiError(f"provider {provider.name}: the catalog has no metric (Gnocchi) endpoint")
        return cls(conn.session, endpoint, timeout=cfg.timeout_seconds)

    # -- HTTP --------------------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        from keystoneauth1 import exceptions as ks_exc

        self.requests += 1
        try:
            resp = self.session.request(self.endpoint + path, method, params=params, json=body,
                                        headers=self.headers, authenticated=self.authenticated,
                                        raise_exc=False, timeout=self.timeout, log=False)
        except ks_exc.ClientException as exc:
            raise GnocchiError(f"Gnocchi {method} {path}: {exc.__class__.__name__}: {mask_text(str(exc))}") from None
        if resp.status_code >= 400:
            raise GnocchiError(f"Gnocchi {method} {path}: HTTP {resp.status_code}: {mask_text(resp.text[:300])}")
        return resp.json()

    # -- API -----------------------------------------------------------------------------------------------
    def search(self, resource_type: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Every resource of `resource_type` matching `query`, page by page (POST: a GET `filter` is ignored)."""
        found: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            params = {"limit": PAGE, "sort": "id:asc", **({"marker": marker} if marker else {})}
            page = self._request("POST", f"/v1/search/resource/{resource_type}", params=params, body=query)
            found.extend(page)
            if len(page) < PAGE:
                return found
            marker = page[-1]["id"]

    def aggregates(self, resource_type: str, metrics: list[str], search: dict[str, Any], *, start: datetime,
                   stop: datetime | None = None, granularity: int = 300,
                   groupby: str | None = None) -> list[tuple[dict[str, Any], dict[str, dict[str, Points]]]]:
        """The `mean` series of `metrics` for every resource matching `search`, in ONE request, as
        [(group, {resource id: {metric: [(timestamp, value)]}})]; without `groupby`, one group `{}`."""
        operations = "(metric " + " ".join(f"({m} mean)" for m in metrics) + ")"
        params: dict[str, Any] = {"granularity": granularity, "start": start.isoformat(), "details": "false"}
        if stop is not None:
            params["stop"] = stop.isoformat()
        if groupby:
            params["groupby"] = groupby
        doc = self._request("POST", "/v1/aggregates", params=params,
                            body={"operations": operations, "resource_type": resource_type, "search": search})
        groups = doc if isinstance(doc, list) else [{"group": {}, "measures": doc}]
        out = []
        for group in groups:
            measures = group.get("measures", {}).get("measures", {})
            parsed = {rid: {metric: [(datetime.fromisoformat(ts), float(v)) for ts, _g, v in aggs.get("mean", [])]
                            for metric, aggs in per_metric.items()}
                      for rid, per_metric in measures.items()}
            out.append((group.get("group", {}), parsed))
        return out

    def close(self) -> None:
        try:
            self.session.session.close()
        except Exception:  # noqa: BLE001 - nothing to do about a session that cannot close
            log.debug("gnocchi session close failed", exc_info=True)
