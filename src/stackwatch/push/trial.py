"""`subscription test NAME --event ...`: would this event reach the subscription, and what would it get?

It shows the scope's and the filter's verdict separately (so a user sees *why* an event does not arrive),
the exact headers and body a webhook would receive, and with `send` delivers it once now through the same
sender the dispatcher uses (the answer, or the error, is shown; nothing is written to the outbox).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from stackwatch.events.model import Event
from stackwatch.push.subscriptions import Subscription

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import Settings


def trial(sub: Subscription, event: Event, *, send: bool = False, allow_private: bool = True,
          settings: Settings | None = None) -> dict[str, Any]:
    """The verdicts, headers and body for `event`; with `send`, the destination's answer (`settings` lets a
    `zaqar:` destination find the provider's cloud)."""
    from stackwatch.push.sender import headers_for

    body = orjson.dumps(event.to_json_dict())
    in_scope = sub.scope.admits(event) and event.provider == sub.provider
    matches = sub.filter.matches(event)
    try:
        secret = sub.secret()
        signed = bool(secret)
    except ValueError as exc:
        secret, signed = None, f"cannot sign: {exc}"
    doc: dict[str, Any] = {
        "subscription": sub.name, "message_id": event.message_id, "event_type": event.event_type,
        "project_id": event.project_id, "in_scope": in_scope, "filter_matches": matches,
        "delivered": in_scope and matches, "to": sub.destination, "signed": signed,
        "headers": headers_for(sub, event.message_id, body, secret), "body": body.decode(),
    }
    if send and doc["delivered"]:
        from stackwatch.push.catalog import SubscriptionCatalog
        from stackwatch.push.sender import PushSender
        from stackwatch.push.zaqar import ZaqarDestinations

        sender = PushSender(SubscriptionCatalog(None), allow_private=allow_private,  # type: ignore[arg-type]
                            zaqar=ZaqarDestinations(settings) if settings is not None else None)
        try:
            outcome = sender.send_to(sub, event.message_id, body)
        finally:
            sender.close()
        doc["answer"] = {"verdict": outcome.verdict, "status": outcome.status, "error": outcome.error,
                         "duration_ms": round(outcome.duration * 1000, 1)}
        doc["delivered"] = outcome.ok
    return doc
