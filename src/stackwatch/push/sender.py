"""Sending one subscription delivery: the dispatcher's sender for every push kind.

The outbox stores a subscription delivery with the event's canonical JSON as its body and only the
subscription's name in its spec: the destination (which may hold credentials) and the signing secret are read
here, at send time, from the subscription (decrypted or from the named variable), so neither is copied into
the deliveries table, and a removed subscription's pending deliveries end as final ("subscription removed")
instead of going out. Every destination gets the same headers: `X-Stackwatch-Event-Id` (the message_id, the
idempotency key), `X-Stackwatch-Subscription` and, with a secret, `X-Stackwatch-Signature` (push/signing.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from stackwatch.push import webhook
from stackwatch.push.amqp_destination import AmqpDestinations
from stackwatch.push.destinations import DestinationError, check_allowed
from stackwatch.push.outcome import Outcome
from stackwatch.push.secrets import SecretError
from stackwatch.push.signing import HEADER as SIGNATURE_HEADER
from stackwatch.push.signing import signature

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.push.catalog import SubscriptionCatalog
    from stackwatch.push.outbox import Delivery
    from stackwatch.push.subscriptions import Subscription
    from stackwatch.push.zaqar import ZaqarDestinations

log = logging.getLogger(__name__)

#: outbox kinds of subscription deliveries, by destination kind (distinct from the rules' own kinds)
KINDS: dict[str, str] = {"webhook": "push.webhook", "amqp": "push.amqp", "zaqar": "push.zaqar"}
#: the project queues mode's deliveries (push.project_queues): spec {"project": ID, "queue": NAME}
PROJECT_QUEUE_KIND = "push.project_queue"
EVENT_ID_HEADER = "X-Stackwatch-Event-Id"
SUBSCRIPTION_HEADER = "X-Stackwatch-Subscription"


def headers_for(sub: Subscription, message_id: str, body: bytes, secret: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", EVENT_ID_HEADER: message_id, SUBSCRIPTION_HEADER: sub.name}
    if secret:
        headers[SIGNATURE_HEADER] = signature(body, secret)
    return headers


class PushSender:
    """A dispatcher `Sender` for the push kinds; `send_to` is also what `subscription test --send` uses."""

    def __init__(self, catalog: SubscriptionCatalog, *, allow_private: bool = False,
                 timeout: float = webhook.DEFAULT_TIMEOUT, zaqar: ZaqarDestinations | None = None) -> None:
        self.catalog = catalog
        self.allow_private = allow_private
        self.client = webhook.new_client(timeout)
        self.timeout = timeout
        self.amqp = AmqpDestinations()
        self.zaqar = zaqar

    def __call__(self, delivery: Delivery) -> Outcome:
        if delivery.kind == PROJECT_QUEUE_KIND:
            if self.zaqar is None:
                return Outcome("retry", error="no Zaqar client in this process")
            return self.zaqar.post_to(delivery.provider or "", delivery.spec["project"], delivery.spec["queue"],
                                      delivery.body or b"")
        sub = self.catalog.get(delivery.owner)
        if sub is None:
            return Outcome("final", error="subscription removed")
        if sub.ttl_seconds and datetime.now(UTC) - delivery.created_at > timedelta(seconds=sub.ttl_seconds):
            return Outcome("final", error=f"expired: not delivered within its ttl of {sub.ttl_seconds:g}s")
        outcome = self.send_to(sub, delivery.message_id, delivery.body or b"")
        if not outcome.ok:
            log.info("push attempt failed", extra={
                "subscription": sub.name, "to": sub.destination, "message_id": delivery.message_id,
                "attempt": delivery.attempts + 1, "status": outcome.status, "error": outcome.error,
                "verdict": outcome.verdict})
        return outcome

    def send_to(self, sub: Subscription, message_id: str, body: bytes, extra: Mapping[str, str] | None = None,
                ) -> Outcome:
        try:
            target = sub.target()
            secret = sub.secret()
            if not sub.admin_created:  # checked again at send time: the name may resolve elsewhere now
                check_allowed(target, admin=False, allow_private=self.allow_private)
        except (SecretError, DestinationError) as exc:
            return Outcome("final", error=str(exc))
        headers = headers_for(sub, message_id, body, secret) | dict(extra or {})
        if target.kind == "webhook":
            return webhook.post(self.client, target.url, body, headers, self.timeout)
        if target.kind == "amqp":
            return self.amqp.publish(target, body, headers, sub.ttl_seconds)
        if self.zaqar is None:
            return Outcome("retry", error="no Zaqar client in this process")
        return self.zaqar.post(sub, target, body, headers)

    def close(self) -> None:
        self.client.close()
        self.amqp.close()
