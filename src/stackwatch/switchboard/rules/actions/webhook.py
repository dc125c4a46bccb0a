"""The `webhook` action: POST the event (or a body rendered from a sandboxed Jinja2 template) to a URL.

`headers_env` names variables holding header values (an AWX or EDA token: `{Authorization: AWX_AUTH}`).
Headers: `X-Stackwatch-Event-Id` (the message_id), `X-Stackwatch-Rule`, `Idempotency-Key: <rule>:<message_id>`
and, with `secret_env`, `X-Stackwatch-Signature` (push/signing.py; the sending process reads the variable, the
secret never enters the database). The body is fixed when the delivery is enqueued, so every retry sends
the same bytes under the same key. Sending, retries and their classification are push/webhook.py's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import orjson

from stackwatch.events.model import Event
from stackwatch.masking import mask_url
from stackwatch.push.outbox import DEFAULT_MAX_ATTEMPTS
from stackwatch.push.webhook import DEFAULT_TIMEOUT, WebhookSender
from stackwatch.switchboard.rules.actions.base import ActionContext, ActionError, Plan

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = {"x-stackwatch-event-id", "x-stackwatch-rule", "idempotency-key", "x-stackwatch-signature"}
_OPTIONS = {"url", "secret_env", "max_attempts", "timeout", "headers", "headers_env", "template"}


def event_body(event: Event) -> bytes:
    """The canonical event as JSON, with the field names of `events list --format json`, payload included."""
    return orjson.dumps(event.to_json_dict())


def _template(source: str, where: str) -> Any:
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
    try:
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        raise ActionError(f"{where}.template: line {exc.lineno}: {exc.message}") from None


class WebhookAction:
    name = "webhook"
    default_max_attempts = DEFAULT_MAX_ATTEMPTS

    def parse(self, options: Any, where: str) -> dict[str, Any]:
        if isinstance(options, str):
            options = {"url": options}
        if not isinstance(options, Mapping):
            raise ActionError(f"{where}: must be a mapping with at least `url`")
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ActionError(f"{where}: unknown option {unknown[0]!r} (options: {', '.join(sorted(_OPTIONS))})")
        url = options.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ActionError(f"{where}.url: must be an http:// or https:// URL")
        secret_env = options.get("secret_env")
        if secret_env is not None and not (isinstance(secret_env, str) and _ENV_NAME.match(secret_env)):
            raise ActionError(f"{where}.secret_env: must name an environment variable (the secret stays out of "
                              "the rules file and the database)")
        attempts = options.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or not 1 <= attempts <= 100:
            raise ActionError(f"{where}.max_attempts: must be an integer from 1 to 100")
        timeout = options.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 300:
            raise ActionError(f"{where}.timeout: must be a number of seconds, at most 300")
        headers = options.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in headers.items()):
            raise ActionError(f"{where}.headers: must map header names to strings")
        if clash := sorted(k for k in headers if k.lower() in _RESERVED):
            raise ActionError(f"{where}.headers: {clash[0]} is set by stackwatch")
        headers_env = options.get("headers_env") or {}
        if not isinstance(headers_env, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) and _ENV_NAME.match(v) for k, v in headers_env.items()):
            raise ActionError(f"{where}.headers_env: must map header names to environment variable names")
        if clash := sorted(k for k in headers_env if k.lower() in _RESERVED):
            raise ActionError(f"{where}.headers_env: {clash[0]} is set by stackwatch")
        template = options.get("template")
        if template is not None:
            if not isinstance(template, str):
                raise ActionError(f"{where}.template: must be a string (a Jinja2 template of the body)")
            _template(template, where)
        return {"url": url, "secret_env": secret_env, "max_attempts": int(attempts), "timeout": float(timeout),
                "headers": dict(headers), "headers_env": dict(headers_env), "template": template}

    def plan(self, rule: str, options: Mapping[str, Any], event: Event) -> Plan:
        if options.get("template"):
            doc = event.to_json_dict()
            body = _template(options["template"], "template").render(event=doc, payload=doc["payload"],
                                                                    rule=rule).encode()
        else:
            body = event_body(event)
        headers = {**options.get("headers", {}), "X-Stackwatch-Event-Id": event.message_id,
                   "X-Stackwatch-Rule": rule, "Idempotency-Key": f"{rule}:{event.message_id}"}
        spec = {"url": options["url"], "headers": headers, "headers_env": options.get("headers_env") or {},
                "secret_env": options.get("secret_env"), "timeout": options.get("timeout", DEFAULT_TIMEOUT)}
        return Plan(kind="webhook", spec=spec, target=mask_url(options["url"]), body=body)

    def sender(self, context: ActionContext) -> WebhookSender:
        return WebhookSender()
