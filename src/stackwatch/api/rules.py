"""`/api/v1/rules`: automation rules over HTTP, the same operations as `stackwatch rules` (switchboard/rules/
manage.py does both). Managing rules is for admins and operators: a viewer, or a project user, gets 403,
because a rule sees every project's events and sends them where it says."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request

from stackwatch.api import schemas
from stackwatch.api.identity import Caller, current_caller
from stackwatch.config.settings import ConfigError

router = APIRouter(prefix="/api/v1/rules", tags=["rules"],
                   responses=schemas.AUTH_ERRORS | schemas.NOT_FOUND | schemas.INVALID)


def rules_admin(request: Request, caller: Caller = Depends(current_caller)) -> Any:
    """The RulesAdmin of this app, for admins and operators only."""
    if caller.role not in ("admin", "operator"):
        raise HTTPException(403, "managing automation rules needs the admin or operator role")
    from stackwatch.switchboard.routes import RoutingTable
    from stackwatch.switchboard.rules.manage import RulesAdmin

    state = request.app.state
    if getattr(state, "rules_admin", None) is None:
        state.rules_admin = RulesAdmin(state.settings, state.store.engine, RoutingTable.load(state.settings.routes))
    return state.rules_admin


Admin = Annotated[Any, Depends(rules_admin)]


def _checked(call: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return call(*args, **kwargs)
    except ConfigError as exc:  # RuleError: names the rule and the key
        status = 404 if str(exc).startswith("no rule ") else 422
        raise HTTPException(status, str(exc)) from None


@router.get("")
def list_rules(admin: Admin) -> list[dict[str, Any]]:
    return _checked(admin.list)


@router.get("/{name}")
def get_rule(name: str, admin: Admin) -> dict[str, Any]:
    return _checked(admin.show, name)


@router.post("", status_code=201)
def add_rules(admin: Admin,
              body: Annotated[dict[str, Any] | list[dict[str, Any]],
                              Body(description="a rule, a list of rules or {rules: [...]}")],
              replace: bool = False) -> dict[str, Any]:
    specs = body.get("rules") if isinstance(body, dict) and "rules" in body else body
    specs = [specs] if isinstance(specs, dict) else specs
    if not isinstance(specs, list) or not specs:
        raise HTTPException(422, "expected a rule, a list of rules or {rules: [...]}")
    return {"added": _checked(admin.add, specs, replace=replace)}


@router.delete("/{name}", status_code=204)
def remove_rule(name: str, admin: Admin) -> None:
    _checked(admin.remove, name)


@router.get("/{name}/runs")
def rule_runs(name: str, admin: Admin, failed: bool = False, event: str | None = None,
              limit: Annotated[int, Query(ge=1, le=10_000)] = 50) -> list[dict[str, Any]]:
    return _checked(admin.runs, name, failed=failed, message_id=event, limit=limit)


@router.post("/{name}/retry")
def retry_rule(name: str, admin: Admin) -> dict[str, int]:
    return {"requeued": _checked(admin.retry, name)}


@router.post("/{name}/test")
def test_rule(name: str, admin: Admin, request: Request,
              body: Annotated[dict[str, Any], Body(description="{message_id, provider?} of a stored event, or "
                                                               "{notification: {...}, provider?}")]) -> dict[str, Any]:
    provider = body.get("provider")
    if "notification" in body:
        try:
            event = admin.convert(body["notification"], provider)
        except ValueError as exc:  # the conversion error is the answer
            raise HTTPException(422, f"notification cannot be converted: {exc}") from None
    elif "message_id" in body:
        event = request.app.state.store.get(str(body["message_id"]), provider)
        if event is None:
            raise HTTPException(404, f"no event with message_id {body['message_id']!r}")
    else:
        raise HTTPException(422, "give message_id or notification")
    return _checked(admin.test, name, event)
