"""One HTTP client for the polling monitors (panko, http): auth, timeouts, error classes, request counts.

Keystone auth goes through keystoneauth1 (a token from the provider's cloud in clouds.yaml; the session fetches
a new token and retries once on a 401). The token is sent only to the URL the catalog (or the operator) named:
a `next` link pointing at another host is refused rather than followed with the token. Basic and no auth use
the same session without a plugin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from stackwatch.masking import mask_url

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig

log = logging.getLogger(__name__)


class SourceUnavailable(Exception):
    """The event service cannot answer now (refused, timed out, 5xx): retry later, nothing is lost."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SourceRefused(Exception):
    """The event service refused the request (4xx): a configuration problem an operator must fix."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Endpoint:
    """Where to send requests and with what: a keystoneauth session, the base URL, fixed headers."""

    session: Any
    base_url: str
    headers: dict[str, str]
    timeout: float
    basic: tuple[str, str] | None = None
    authenticated: bool = False


def keystone_session(provider: ProviderConfig) -> tuple[Any, Any]:
    """(keystoneauth session, cloud region) for the provider's clouds.yaml entry (or the OS_* variables)."""
    import openstack.config

    region = openstack.config.OpenStackConfig().get_one(cloud=provider.cloud) if provider.cloud else \
        openstack.config.OpenStackConfig().get_one()
    return region.get_session(), region


def catalog_endpoint(provider: ProviderConfig, service_type: str, interface: str | None) -> tuple[Any, str]:
    """(session, endpoint URL of `service_type`) from the provider's Keystone catalog; authenticates."""
    from keystoneauth1 import exceptions as ks_exc

    session, region = keystone_session(provider)
    try:
        url = session.get_endpoint(service_type=service_type, interface=interface or region.get_interface(),
                                   region_name=region.get_region_name(service_type))
    except ks_exc.ConnectFailure as exc:
        raise SourceUnavailable(f"Keystone unreachable: {type(exc).__name__}") from None
    except ks_exc.ClientException as exc:
        raise SourceRefused(f"Keystone: {type(exc).__name__}: {exc}", 401) from None
    if not url:
        raise SourceRefused(f"no {service_type!r} endpoint in the Keystone catalog", 404)
    return session, url.rstrip("/")


def plain_session() -> Any:
    from keystoneauth1 import session as ks_session

    return ks_session.Session()


class HttpSource:
    """GET JSON from one service; counts requests (the benchmarks and tests read `requests`)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.requests = 0
        self._host = urlsplit(endpoint.base_url).netloc

    def same_host(self, url: str) -> bool:
        return urlsplit(url).netloc == self._host

    def get_json(self, url: str, params: list[tuple[str, str]] | None = None) -> Any:
        """The decoded JSON of GET `url`; SourceUnavailable / SourceRefused otherwise."""
        from keystoneauth1 import exceptions as ks_exc

        if not self.same_host(url):
            raise SourceRefused(f"refusing to send credentials to {mask_url(url)} (not {self._host})", 400)
        ep = self.endpoint
        self.requests += 1
        kwargs: dict[str, Any] = {}
        if ep.basic is not None:
            import requests.auth

            kwargs["requests_auth"] = requests.auth.HTTPBasicAuth(*ep.basic)
        try:
            resp = ep.session.get(url, params=params, headers={"Accept": "application/json", **ep.headers},
                                  timeout=ep.timeout, raise_exc=False, authenticated=ep.authenticated,
                                  log=False, **kwargs)
        except (ks_exc.ConnectFailure, ks_exc.ConnectionError, ks_exc.RetriableConnectionFailure) as exc:
            raise SourceUnavailable(f"{mask_url(url)}: {type(exc).__name__}") from None
        except ks_exc.ClientException as exc:  # token could not be had (Keystone down or credentials wrong)
            raise SourceUnavailable(f"{mask_url(url)}: {type(exc).__name__}: {exc}") from None
        status = resp.status_code
        if status >= 500:
            raise SourceUnavailable(f"{mask_url(url)}: HTTP {status}: {resp.text[:200]}", status)
        if status >= 400:
            raise SourceRefused(f"{mask_url(url)}: HTTP {status}: {resp.text[:200]}", status)
        try:
            return orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise SourceRefused(f"{mask_url(url)}: answer is not JSON: {resp.text[:120]!r}", status) from None
