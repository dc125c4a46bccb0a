"""`amqp://user:pass@host:port/vhost?exchange=X&routing_key=Y`: a persistent message on the user's exchange.

One connection per destination URL, shared by the dispatcher's threads under a lock (pika's blocking
connection is not thread-safe), with publisher confirms and `mandatory`, so a message counts as delivered
only when the broker has routed it to at least one queue and taken responsibility for it. A broker that is
down, an exchange that does not exist (yet) or a message no queue takes are retried with the outbox's
back-off; refused credentials are final (retrying cannot fix them). The message carries the same headers
as a webhook (event id, subscription, signature of the body) and, with a ttl, an AMQP expiration.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from stackwatch.masking import mask_text
from stackwatch.push.destinations import Destination
from stackwatch.push.outcome import Outcome

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 5.0


class AmqpDestinations:
    """Publishes to AMQP destinations, one cached connection each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._links: dict[str, tuple[threading.Lock, list]] = {}

    def _link(self, url: str) -> tuple[threading.Lock, list]:
        with self._lock:
            return self._links.setdefault(url, (threading.Lock(), [None, None]))

    def publish(self, destination: Destination, body: bytes, headers: Mapping[str, str],
                ttl_seconds: float | None = None) -> Outcome:
        import pika
        import pika.exceptions as px

        lock, link = self._link(destination.url)
        start = time.monotonic()
        with lock:
            try:
                if link[0] is None or not link[0].is_open:
                    params = pika.URLParameters(destination.url.split("?", 1)[0])
                    params.socket_timeout = params.blocked_connection_timeout = CONNECT_TIMEOUT
                    params.connection_attempts = 1
                    params.heartbeat = 0  # an idle publisher between events must not be dropped for silence
                    link[0] = pika.BlockingConnection(params)
                    link[1] = None
                if link[1] is None or not link[1].is_open:
                    link[1] = link[0].channel()
                    link[1].confirm_delivery()
                props = pika.BasicProperties(
                    content_type="application/json", delivery_mode=2, headers=dict(headers),
                    message_id=headers.get("X-Stackwatch-Event-Id"),
                    expiration=str(int(ttl_seconds * 1000)) if ttl_seconds else None)
                link[1].basic_publish(destination.exchange or "", destination.routing_key, body, props, mandatory=True)
            except px.ProbableAuthenticationError as exc:
                self._drop(link)
                return Outcome("final", error=f"broker refused the credentials of {destination.shown}: "
                                              f"{mask_text(str(exc))}", duration=time.monotonic() - start)
            except px.UnroutableError:
                return Outcome("retry", error=f"no queue is bound to take it on {destination.shown}",
                               duration=time.monotonic() - start)
            except (px.AMQPError, OSError) as exc:
                self._drop(link)
                return Outcome("retry", error=f"{type(exc).__name__}: {mask_text(str(exc))} publishing to "
                                              f"{destination.shown}", duration=time.monotonic() - start)
        return Outcome.success(duration=time.monotonic() - start)

    @staticmethod
    def _drop(link: list) -> None:
        connection, link[0], link[1] = link[0], None, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - closing a broken link
                log.debug("closing an AMQP destination link failed", exc_info=True)

    def close(self) -> None:
        with self._lock:
            links = list(self._links.values())
            self._links.clear()
        for lock, link in links:
            with lock:
                self._drop(link)
