"""The one request signature: `sha256=<lowercase hex HMAC-SHA256 of the exact body bytes>`.

Automation webhooks and push subscriptions both send it in `X-Stackwatch-Signature`, so a receiver verifies
both kinds with the same five lines (docs/rules.md shows them). The HMAC covers the body bytes as sent, not
a re-serialised form, so a receiver must hash the raw request body before parsing it.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Stackwatch-Signature"
PREFIX = "sha256="


def _key(secret: str | bytes) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def signature(body: bytes, secret: str | bytes) -> str:
    """`sha256=<hex>` of `body` under `secret` (a str is taken as UTF-8)."""
    return PREFIX + hmac.new(_key(secret), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str | bytes, header: str | None) -> bool:
    """Whether `header` is the signature of `body` under `secret`; compared in constant time, so a forger
    learns nothing from how long a wrong guess took. A missing or malformed header is simply False."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(signature(body, secret).encode("ascii"), header.strip().encode("ascii", "replace"))
