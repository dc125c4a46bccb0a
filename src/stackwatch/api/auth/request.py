"""The app's authenticator: a request's credentials -> a `Caller`, or 401 (none / invalid) / 403 (no usable role).

Credentials are read from `Authorization: Bearer TOKEN` or `X-Auth-Token: TOKEN`. A browser's WebSocket cannot
set headers, so a WebSocket handshake may instead carry the console's `stackwatch_token` cookie (set by the
login page, SameSite=Strict), accepted only when the handshake's Origin is this server (no cross-site
WebSocket hijacking); plain HTTP routes never read the cookie, so they need no CSRF defence. Local tokens
(`sw_...`) are checked in the store, anything else by Keystone when it is configured.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException
from starlette.requests import HTTPConnection

from stackwatch.api.auth.keystone import Forbidden, KeystoneUnavailable, KeystoneValidator
from stackwatch.api.auth.tokens import TOKEN_PREFIX, LocalTokens
from stackwatch.api.identity import Caller
from stackwatch.config.settings import ApiAuthConfig

log = logging.getLogger(__name__)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="stackwatch"'}
COOKIE = "stackwatch_token"


def presented_token(conn: HTTPConnection) -> str | None:
    """The token a request or WebSocket carries, if any."""
    auth = conn.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if conn.headers.get("x-auth-token"):
        return conn.headers["x-auth-token"].strip()
    if conn.scope.get("type") == "websocket" and conn.cookies.get(COOKIE) and _same_origin(conn):
        return conn.cookies[COOKIE]
    return None


def _same_origin(conn: HTTPConnection) -> bool:
    """Whether a WebSocket handshake comes from a page of this server (its Origin names the Host it asks)."""
    origin, host = conn.headers.get("origin", ""), conn.headers.get("host", "")
    return bool(host) and origin.split("://", 1)[-1].rstrip("/") == host


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers=CHALLENGE)


class Authenticator:
    """Set on `app.state.authenticator`; `api.identity.current_caller` calls it for every request."""

    def __init__(self, tokens: LocalTokens | None, keystone: KeystoneValidator | None) -> None:
        if tokens is None and keystone is None:
            raise ValueError("an authenticator needs local tokens, Keystone, or both")
        self.tokens = tokens
        self.keystone = keystone

    def __call__(self, conn: HTTPConnection) -> Caller:
        token = presented_token(conn)
        if token is None:
            raise unauthorized("authentication required: send Authorization: Bearer TOKEN or X-Auth-Token")
        if token.startswith(TOKEN_PREFIX) and self.tokens is not None:
            caller = self.tokens.verify(token)
            if caller is None:
                raise unauthorized("invalid, expired or revoked token")
            return caller
        if self.keystone is None:
            raise unauthorized("invalid token")
        try:
            return self.keystone.validate(token)
        except LookupError:
            raise unauthorized("invalid, expired or revoked token") from None
        except Forbidden as exc:
            raise HTTPException(403, str(exc)) from None
        except KeystoneUnavailable as exc:
            raise HTTPException(503, str(exc)) from None


def build_authenticator(auth: ApiAuthConfig | None, engine) -> Authenticator | None:  # noqa: ANN001
    """The authenticator `api.auth` describes, or None when the section is absent (the API is open)."""
    if auth is None:
        return None
    tokens = LocalTokens(engine) if auth.tokens else None
    keystone = KeystoneValidator(auth.keystone.cloud, auth.keystone.cache_seconds) if auth.keystone else None
    if tokens is None and keystone is None:
        raise ValueError("api.auth needs `keystone: {cloud: NAME}`, `tokens: true`, or both")
    return Authenticator(tokens, keystone)
