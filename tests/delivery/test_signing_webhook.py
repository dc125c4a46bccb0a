"""Signing and the classification of one webhook POST, against a real HTTP server."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from stackwatch.push import signing, webhook
from tests.delivery.receiver import Receiver


def test_signature_is_lowercase_hex_hmac_of_the_exact_bytes():
    body = b'{"a": 1}'
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert signing.signature(body, "s3cret") == expected == signing.signature(body, b"s3cret")
    assert signing.verify(body, "s3cret", expected)
    assert not signing.verify(body + b" ", "s3cret", expected)
    assert not signing.verify(body, "other", expected)
    assert not signing.verify(body, "s3cret", None)
    assert not signing.verify(body, "s3cret", expected.removeprefix("sha256="))
    assert not signing.verify(body, "s3cret", "sha256=é")


@pytest.mark.parametrize(("status", "verdict"), [
    (200, "ok"), (204, "ok"), (301, "final"), (400, "final"), (404, "final"), (410, "final"),
    (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry"),
])
def test_answers_are_classified(status, verdict):
    with Receiver(default=status) as rx:
        client = webhook.new_client()
        outcome = webhook.post(client, rx.url, b"{}", {"X-Test": "1"})
        client.close()
    assert (outcome.verdict, outcome.status) == (verdict, status)
    assert rx.requests[0].headers["x-test"] == "1"


def test_retry_after_is_honoured_in_seconds_and_dates():
    with Receiver(default=429, retry_after="7") as rx:
        outcome = webhook.post(webhook.new_client(), rx.url, b"{}", {})
    assert outcome.retry_after == 7.0
    now = datetime(2026, 12, 7, tzinfo=UTC)
    assert webhook.retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert webhook.retry_after("100000") == webhook.MAX_RETRY_AFTER
    assert webhook.retry_after("soon") is None


def test_redirects_are_not_followed():
    with Receiver(default=302) as rx:
        outcome = webhook.post(webhook.new_client(), rx.url, b"{}", {})
    assert outcome.verdict == "final" and len(rx.requests) == 1


def test_connection_errors_and_timeouts_retry_and_mask_the_url():
    with Receiver() as rx:
        dead = rx.url.replace("127.0.0.1", "u:hunter2@127.0.0.1")
    outcome = webhook.post(webhook.new_client(), dead, b"{}", {})  # the server is gone: connection refused
    assert outcome.verdict == "retry" and outcome.status is None
    assert "hunter2" not in outcome.error and "***" in outcome.error
    with Receiver(hang=True) as rx:
        outcome = webhook.post(webhook.new_client(), rx.url + "?token=hunter2", b"{}", {}, timeout=0.3)
    assert outcome.verdict == "retry" and "timeout" in outcome.error and "hunter2" not in outcome.error


def test_a_missing_secret_variable_is_final(monkeypatch):
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    out = webhook.signed_headers(b"{}", {}, "NO_SUCH_SECRET")
    assert out.verdict == "final" and "NO_SUCH_SECRET" in out.error
    monkeypatch.setenv("NO_SUCH_SECRET", "k")
    headers = webhook.signed_headers(b"{}", {"A": "b"}, "NO_SUCH_SECRET")
    assert signing.verify(b"{}", "k", headers[signing.HEADER]) and headers["A"] == "b"
