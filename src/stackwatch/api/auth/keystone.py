"""Keystone token validation: a caller's `X-Auth-Token` is checked by the configured cloud's Keystone.

The clouds.yaml entry's credentials act as the service user (`GET /v3/auth/tokens` with the caller's token
as `X-Subject-Token`), through keystoneauth1, so the caller's token is only ever sent to the Keystone of the
cloud it was issued by. Results, valid or not, are cached for `cache_seconds` (never past the token's own
expiry) under a SHA-256 of the token: the token itself is never kept, and Keystone is not asked on every
request. A token revoked in Keystone is thus refused at most `cache_seconds` later.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from stackwatch.api.identity import Caller

log = logging.getLogger(__name__)

#: Keystone role -> stackwatch role, strongest first; `member` and `reader` are viewers of the token's project
ROLE_MAP: tuple[tuple[str, str], ...] = (("admin", "admin"), ("member", "viewer"), ("reader", "viewer"))
CACHE_MAX = 10_000


class KeystoneUnavailable(Exception):
    """Keystone could not answer (down, or the service user's own credentials are refused)."""


class Forbidden(Exception):
    """The token is valid but carries no role stackwatch maps (or no project)."""


def caller_from_token(body: dict[str, Any]) -> Caller:
    """The caller a validated token body (`{"token": {...}}`) stands for; raises Forbidden without a usable role."""
    token = body.get("token") or {}
    roles = {str(r.get("name", "")).lower() for r in token.get("roles") or []}
    user = (token.get("user") or {}).get("name") or "?"
    project = (token.get("project") or {}).get("id")
    for keystone_role, role in ROLE_MAP:
        if keystone_role in roles:
            if role == "admin":
                return Caller(name=f"keystone:{user}", role="admin", project_id=None)
            if project:
                return Caller(name=f"keystone:{user}", role="viewer", project_id=project)
            raise Forbidden("the token is not scoped to a project")
    raise Forbidden("the token has no role stackwatch accepts (admin, member, reader)")


def _expiry(body: dict[str, Any]) -> float | None:
    """The token's expiry as a time.time() value, if Keystone said."""
    text = (body.get("token") or {}).get("expires_at")
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _service_session(cloud: str) -> Any:
    """The keystoneauth1 session of a clouds.yaml entry (no request yet): a missing or broken entry is refused
    when the API is built, with the entry named, not at the first caller's request."""
    import openstack.config
    from openstack import exceptions as os_exc

    from stackwatch.config.settings import ConfigError

    try:
        return openstack.config.OpenStackConfig().get_one(cloud=cloud).get_session()
    except (os_exc.ConfigException, os_exc.SDKException) as exc:
        raise ConfigError(f"api.auth.keystone.cloud: cloud {cloud!r}: {exc}") from None


class KeystoneValidator:
    """Validates tokens with the service session of one cloud, caching results by token hash."""

    def __init__(self, cloud: str, cache_seconds: float = 60.0) -> None:
        self.cloud = cloud
        self.cache_seconds = cache_seconds
        self._session = _service_session(cloud)
        self._cache: OrderedDict[str, tuple[float, Caller | Exception]] = OrderedDict()
        self._lock = threading.Lock()
        self.validations = 0  # calls to Keystone (tests read it)

    def validate(self, token: str) -> Caller:
        """The caller, or raises LookupError (invalid / expired / revoked), Forbidden or KeystoneUnavailable."""
        key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = time.time()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                result = hit[1]
                if isinstance(result, Exception):
                    raise result
                return result
        result, until = self._ask(token, now)
        if self.cache_seconds > 0:
            with self._lock:
                self._cache[key] = (until, result)
                self._cache.move_to_end(key)
                while len(self._cache) > CACHE_MAX:
                    self._cache.popitem(last=False)
        if isinstance(result, Exception):
            raise result
        return result

    def _ask(self, token: str, now: float) -> tuple[Caller | Exception, float]:
        from keystoneauth1 import exceptions as ks_exc

        self.validations += 1
        try:
            resp = self._session.get(
                "/auth/tokens",
                endpoint_filter={"service_type": "identity", "interface": "public", "version": (3, 0)},
                headers={"X-Subject-Token": token},
                raise_exc=False,
            )
        except ks_exc.ClientException as exc:  # the service user cannot authenticate, Keystone down, ...
            log.error("keystone validation failed", extra={"cloud": self.cloud, "error": exc.__class__.__name__})
            raise KeystoneUnavailable(f"cannot reach Keystone of cloud {self.cloud!r}") from None
        until = now + self.cache_seconds
        if resp.status_code in (401, 404):
            return LookupError("invalid, expired or revoked token"), until
        if resp.status_code != 200:
            log.error("keystone validation answered", extra={"cloud": self.cloud, "status": resp.status_code})
            raise KeystoneUnavailable(f"Keystone of cloud {self.cloud!r} answered {resp.status_code}")
        body = resp.json()
        expires = _expiry(body)
        if expires is not None:
            until = min(until, expires)
        try:
            return caller_from_token(body), until
        except Forbidden as exc:
            return exc, until
