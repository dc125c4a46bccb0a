"""Who is calling the API, and which projects they may see.

Every route that returns or changes data asks for a `Caller` (`caller: Caller = Depends(current_caller)`) and
scopes what it reads with it. How a caller is established (Keystone token, local API token) is the
authenticator's job, set on `app.state.authenticator`; with none (the API open on loopback, as when `api.auth`
is absent) every caller is the local operator, an admin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

Role = Literal["admin", "operator", "viewer"]


@dataclass(frozen=True)
class Caller:
    """An authenticated identity: its role and, unless it is an admin, the one project it acts in."""

    name: str
    role: Role
    project_id: str | None = None  # None: every project (admins only)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may_see(self, project_id: str | None) -> bool:
        """Whether rows of `project_id` (None: events that belong to no project) are visible to this caller."""
        return self.is_admin or (self.project_id is not None and project_id == self.project_id)

    def visible_projects(self) -> tuple[str, ...] | None:
        """The projects a query must be restricted to, or None for no restriction (an admin)."""
        if self.is_admin:
            return None
        return (self.project_id,) if self.project_id is not None else ()


LOCAL_OPERATOR = Caller(name="local", role="admin")

Authenticator = Callable[[HTTPConnection], Caller]  # a Request, or a WebSocket for the event stream


def caller_of(conn: HTTPConnection) -> Caller:
    """The caller of a request or WebSocket, by the app's authenticator (which raises 401/403), or the local
    operator when the API runs without authentication."""
    authenticate: Authenticator | None = getattr(conn.app.state, "authenticator", None)
    if authenticate is None:
        return LOCAL_OPERATOR
    return authenticate(conn)


def current_caller(request: Request) -> Caller:
    """FastAPI dependency for HTTP routes: see `caller_of`."""
    return caller_of(request)


def admin_caller(caller: Caller = Depends(current_caller)) -> Caller:
    """FastAPI dependency for admin-only routes (quarantine, handler positions, metrics): 403 for anyone else."""
    if not caller.is_admin:
        raise HTTPException(403, "this needs the admin role")
    return caller
