"""`/api/v1/subscriptions`: push subscriptions, each scoped by the caller (`api/identity.py`).

A caller sees and manages only its own project's subscriptions; the owner project of one it creates is its
own (naming another is refused). Only admins may create `all_projects` subscriptions, and only admins (or any
caller when `push.allow_private_destinations` is set) may deliver to loopback or private addresses. Viewers
read; operators and admins write. Secrets never come back: a listing says only whether one is set.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from stackwatch.api import schemas
from stackwatch.api.identity import Caller, current_caller
from stackwatch.push.destinations import DestinationError, check_allowed, parse_destination
from stackwatch.push.filters import EventFilter, FilterError, Scope
from stackwatch.push.secrets import SecretError
from stackwatch.push.subscriptions import (
    DEFAULT_MAX_ATTEMPTS,
    SubscriptionError,
    SubscriptionStore,
    new_subscription,
)

router = APIRouter(prefix="/api/v1/subscriptions", tags=["subscriptions"],
                   responses=schemas.AUTH_ERRORS | schemas.NOT_FOUND | schemas.INVALID)
CallerDep = Annotated[Caller, Depends(current_caller)]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    provider: str
    to: str = Field(description="http(s)://URL, zaqar:QUEUE or amqp://user:pass@host/vhost?exchange=X&routing_key=Y")
    project_id: str | None = Field(None, description="the owner project; a non-admin's own by default")
    all_projects: bool = Field(False, description="every project's events and those of none (admins only)")
    events: list[str] = Field(default_factory=lambda: ["*"], description="event type globs")
    groups: list[str] = Field(default_factory=list)
    refs: dict[str, str] = Field(default_factory=dict, description="e.g. {\"vm\": UUID}")
    secret: str | None = Field(None, description="HMAC secret, stored encrypted ($STACKWATCH_SECRET_KEY)")
    secret_env: str | None = Field(None, description="variable the delivering process reads the secret from")
    max_attempts: int = Field(DEFAULT_MAX_ATTEMPTS, ge=1, le=1000)
    ttl_seconds: float | None = Field(None, gt=0)


def _store(request: Request) -> SubscriptionStore:
    return SubscriptionStore(request.app.state.store.engine)


def _projects(caller: Caller) -> tuple[str, ...] | None:
    return caller.visible_projects()


@router.get("")
def list_subscriptions(request: Request, caller: CallerDep) -> list[dict[str, Any]]:
    return [s.to_json() for s in _store(request).list(_projects(caller))]


@router.post("", status_code=201)
def create(body: SubscriptionIn, request: Request, caller: CallerDep) -> dict[str, Any]:
    if caller.role == "viewer":
        raise HTTPException(403, "viewers cannot create subscriptions")
    project = body.project_id
    if not caller.is_admin:
        if body.all_projects:
            raise HTTPException(403, "all_projects subscriptions are for admins only")
        if project is not None and project != caller.project_id:
            raise HTTPException(403, "a subscription's owner project must be your own")
        if body.secret_env:  # would sign with any variable of stackwatch's own processes (an oracle on them)
            raise HTTPException(403, "secret_env names a variable of stackwatch's processes: admins only; give secret")
        project = caller.project_id
        if project is None:
            raise HTTPException(403, "your identity has no project to own a subscription")
    push = request.app.state.settings.push
    try:
        destination = parse_destination(body.to)
        check_allowed(destination, admin=caller.is_admin, allow_private=push.allow_private_destinations)
        sub = new_subscription(
            body.name, body.provider, Scope(project, body.all_projects),
            EventFilter.build(body.events, body.groups, body.refs), body.to, secret_env=body.secret_env,
            secret=body.secret, max_attempts=body.max_attempts, ttl_seconds=body.ttl_seconds,
            created_by=caller.name, admin_created=caller.is_admin,
        )
        _store(request).add(sub)
    except (DestinationError, FilterError, SecretError, SubscriptionError) as exc:
        raise HTTPException(409 if "exists already" in str(exc) else 422, str(exc)) from None
    return sub.to_json()


@router.get("/{name}")
def show(name: str, request: Request, caller: CallerDep) -> dict[str, Any]:
    from stackwatch.push.report import subscription_report

    doc = subscription_report(request.app.state.store.engine, name, _projects(caller))
    if doc is None:
        raise HTTPException(404, f"no subscription named {name!r}")
    return doc


@router.delete("/{name}", status_code=204)
def remove(name: str, request: Request, caller: CallerDep) -> None:
    if caller.role == "viewer":
        raise HTTPException(403, "viewers cannot remove subscriptions")
    if not _store(request).remove(name, _projects(caller)):
        raise HTTPException(404, f"no subscription named {name!r}")
