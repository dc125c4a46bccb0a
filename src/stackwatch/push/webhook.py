"""One webhook POST and what its answer means for the delivery.

- 2xx: delivered (`ok`).
- connection errors, timeouts, 429 and 5xx: `retry` (429/503 with `Retry-After` say how long to wait);
- any other answer, 3xx included (redirects are never followed: a redirect could carry a signed event and its
  headers to a host the operator never named), is `final`.

The URL may hold a credential (Slack's and many ticketing systems' webhook URLs are secrets themselves, or
carry `?token=`): every error text and log line shows it through `stackwatch.masking.mask_url`.

A `Delivery`'s `spec` for kind "webhook" is `{"url": ..., "headers": {...}, "secret_env": VAR | None,
"timeout": seconds}`; the body is the delivery's stored bytes, sent as they are, so the signature and any
retry cover the same bytes.
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import httpx

from stackwatch.masking import mask_text, mask_url
from stackwatch.push.outcome import Outcome
from stackwatch.push.signing import HEADER as SIGNATURE_HEADER
from stackwatch.push.signing import signature

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.push.outbox import Delivery

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "stackwatch-webhook/1"
#: the longest Retry-After honoured; a peer asking for more is retried after this (the back-off's own cap)
MAX_RETRY_AFTER = 300.0


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), capped; None when absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), MAX_RETRY_AFTER)


def classify(status: int, headers: Mapping[str, str] | None = None, duration: float = 0.0) -> Outcome:
    """The outcome of an HTTP answer with `status`."""
    if 200 <= status < 300:
        return Outcome("ok", status=status, duration=duration)
    if status == 429 or status >= 500:
        wait = retry_after((headers or {}).get("retry-after")) if status in (429, 503) else None
        return Outcome("retry", status=status, error=f"HTTP {status}", retry_after=wait, duration=duration)
    return Outcome("final", status=status, error=f"HTTP {status}", duration=duration)


def new_client(timeout: float = DEFAULT_TIMEOUT) -> httpx.Client:
    """A client for deliveries: no redirects, no proxies from the environment for loopback, a bounded pool."""
    return httpx.Client(
        follow_redirects=False,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )


def post(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str],
         timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """POST `body` to `url` once and classify the result; never raises for what the network or peer does."""
    start = time.monotonic()
    try:
        response = client.post(url, content=body, headers=dict(headers), timeout=timeout)
    except httpx.TimeoutException as exc:
        return Outcome("retry", error=f"timeout after {timeout:g}s ({type(exc).__name__}) posting to "
                       f"{mask_url(url)}", duration=time.monotonic() - start)
    except httpx.TransportError as exc:
        return Outcome("retry", error=f"{type(exc).__name__}: {mask_text(str(exc))} posting to {mask_url(url)}",
                       duration=time.monotonic() - start)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        return Outcome("final", error=f"bad webhook URL {mask_url(url)}: {mask_text(str(exc))}",
                       duration=time.monotonic() - start)
    duration = time.monotonic() - start
    return classify(response.status_code, response.headers, duration)


def signed_headers(body: bytes, headers: Mapping[str, str], secret_env: str | None) -> dict[str, str] | Outcome:
    """`headers` plus the JSON content type and, with `secret_env`, the signature of `body` under the value of
    that environment variable (read here, in the sending process: the secret never enters the database).
    An Outcome (final) when the variable is not set: sending unsigned would look valid to nobody."""
    out = {"Content-Type": "application/json", **headers}
    if secret_env:
        secret = os.environ.get(secret_env)
        if not secret:
            return Outcome("final", error=f"signing secret variable {secret_env} is not set in the sending process")
        out[SIGNATURE_HEADER] = signature(body, secret)
    return out


def send(client: httpx.Client, delivery: Delivery) -> Outcome:
    """Sender for outbox deliveries of kind "webhook" (see the module docstring for its `spec`)."""
    spec = delivery.spec
    headers = signed_headers(delivery.body or b"", spec.get("headers") or {}, spec.get("secret_env"))
    if isinstance(headers, Outcome):
        return headers
    outcome = post(client, spec["url"], delivery.body or b"", headers, float(spec.get("timeout") or DEFAULT_TIMEOUT))
    if not outcome.ok:
        log.info("webhook attempt failed", extra={
            "delivery": delivery.id, "owner": delivery.owner, "url": mask_url(spec["url"]),
            "attempt": delivery.attempts + 1, "status": outcome.status, "error": outcome.error,
            "verdict": outcome.verdict})
    return outcome


class WebhookSender:
    """A `Sender` for the dispatcher holding one pooled client (keep-alive to each receiver)."""

    kind = "webhook"

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.client = new_client(timeout)

    def __call__(self, delivery: Delivery) -> Outcome:
        return send(self.client, delivery)

    def close(self) -> None:
        self.client.close()
