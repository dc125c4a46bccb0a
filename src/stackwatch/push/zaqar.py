"""`zaqar:QUEUE` destinations and the project queues mode: a message on a Zaqar queue of a project.

Zaqar takes the project a message belongs to from the Keystone token (keystonemiddleware), so a post into
project P's queue needs a token scoped to P. The provider cloud's own credentials are used for it (its
`clouds.yaml` entry, password authentication), scoped to the owner project: the operator grants stackwatch's
user a role on the projects it delivers to (`openstack role add --user stackwatch --project P member`, or once
on their domain with `--inherited`); without one Keystone refuses the token and the delivery is final with a
message saying so. Zaqar's endpoint is found in that token's catalog (service type `messaging`). One
keystoneauth session per (provider, project), which keeps and renews its token.

The message body is the canonical event (the webhook's body, decoded), with the subscription's ttl (Zaqar's
default hour without one). Answers are sorted like a webhook's (push/webhook.py's `classify`: 5xx and 429
retried, other 4xx final); connection errors and timeouts are retried.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from stackwatch.masking import mask_text
from stackwatch.push.outcome import Outcome
from stackwatch.push.webhook import classify

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import Settings
    from stackwatch.push.destinations import Destination
    from stackwatch.push.subscriptions import Subscription

log = logging.getLogger(__name__)

PROJECT_QUEUE = "stackwatch-events"
DEFAULT_TTL = 3600
#: Zaqar wants a Client-ID (a UUID) on every request; one per stackwatch process
CLIENT_ID = str(uuid.uuid4())
_UNSCOPED_KEYS = ("project_name", "project_id", "project_domain_name", "project_domain_id", "tenant_name",
                  "tenant_id")


class ZaqarDestinations:
    """Posts to Zaqar queues of a project, through the provider cloud's Keystone."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._lock = threading.Lock()
        self._sessions: dict[tuple[str, str], tuple[Any, str | None]] = {}

    def _session(self, provider: str, project: str) -> tuple[Any, str | None]:
        key = (provider, project)
        with self._lock:
            if key not in self._sessions:
                from keystoneauth1 import session as ks_session
                from keystoneauth1.identity import v3
                from openstack import config as os_config

                cloud_name = self.settings.provider(provider).cloud
                cloud = os_config.OpenStackConfig().get_one(cloud=cloud_name) if cloud_name else \
                    os_config.OpenStackConfig().get_one()
                auth = {k: v for k, v in cloud.auth.items() if k not in _UNSCOPED_KEYS}
                session = ks_session.Session(auth=v3.Password(project_id=project, **auth), timeout=self.timeout)
                self._sessions[key] = (session, cloud.config.get("region_name") or None)
            return self._sessions[key]

    def post(self, sub: Subscription, target: Destination, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """Sender path for a subscription's `zaqar:QUEUE` (its owner project's queue)."""
        if sub.scope.project_id is None:
            return Outcome("final", error="a zaqar: destination needs an owner project (not --all-projects)")
        return self.post_to(sub.provider, sub.scope.project_id, target.queue or "", body, sub.ttl_seconds)

    def post_to(self, provider: str, project: str, queue: str, body: bytes, ttl: float | None = None) -> Outcome:
        from keystoneauth1 import exceptions as ks_exc

        start = time.monotonic()
        message = {"messages": [{"ttl": max(60, int(ttl or DEFAULT_TTL)), "body": orjson.loads(body)}]}
        try:
            session, region = self._session(provider, project)
            endpoint = session.get_endpoint(service_type="messaging", interface="public", region_name=region)
            if not endpoint:
                return Outcome("retry", error=f"no messaging (Zaqar) endpoint in {provider}'s catalog",
                               duration=time.monotonic() - start)
            answer = session.post(f"{endpoint.rstrip('/')}/v2/queues/{queue}/messages", json=message,
                                  headers={"Client-ID": CLIENT_ID}, raise_exc=False, authenticated=True)
        except (ks_exc.Unauthorized, ks_exc.Forbidden) as exc:
            return Outcome("final", error=f"Keystone refused a token for project {project} ({type(exc).__name__}): "
                                          "grant stackwatch's user a role on it", duration=time.monotonic() - start)
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.DiscoveryFailure, ks_exc.RequestTimeout,
                ks_exc.EndpointNotFound, ks_exc.ServiceUnavailable) as exc:
            return Outcome("retry", error=f"{type(exc).__name__}: {mask_text(str(exc))}",
                           duration=time.monotonic() - start)
        except Exception as exc:  # noqa: BLE001 - a configuration problem (no such cloud): keep it for inspection
            return Outcome("retry", error=f"{type(exc).__name__}: {mask_text(str(exc))}",
                           duration=time.monotonic() - start)
        outcome = classify(answer.status_code, answer.headers, time.monotonic() - start)
        if not outcome.ok and answer.text:
            outcome = Outcome(outcome.verdict, outcome.status, f"{outcome.error}: {mask_text(answer.text[:300])}",
                              outcome.retry_after, outcome.duration)
        return outcome
