"""Subscriptions: who receives which events where. The record, its table, and the store that keeps them.

A subscription is written to the database (by `stackwatch subscription add` or `POST /api/v1/subscriptions`)
and read back by the push handler every few seconds, so a running `serve` picks up new and removed ones
without a restart, and the CLI works whether `serve` runs or not. Secrets never sit in the table in clear:
`secret_env` is a variable's name, `secret_encrypted` and `destination_encrypted` are Fernet tokens
(secrets.py); `destination` itself is kept masked, for listings.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Engine, Float, Integer, String, Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from stackwatch.push import secrets
from stackwatch.push.destinations import Destination, parse_destination
from stackwatch.push.filters import EventFilter, Scope
from stackwatch.store.models import Base, JSONDocument, UTCDateTime

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_MAX_ATTEMPTS = 10


class SubscriptionError(ValueError):
    """A subscription cannot be created or found; the message says why."""


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    project_id: Mapped[str | None] = mapped_column(String(255))
    all_projects: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    filter: Mapped[Any] = mapped_column(JSONDocument, nullable=False)
    destination: Mapped[str] = mapped_column(Text, nullable=False)
    destination_encrypted: Mapped[str | None] = mapped_column(Text)
    secret_env: Mapped[str | None] = mapped_column(String(255))
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    max_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=DEFAULT_MAX_ATTEMPTS)
    ttl_seconds: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(255), nullable=False)
    admin_created: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)


@dataclass(frozen=True)
class Subscription:
    name: str
    provider: str
    scope: Scope
    filter: EventFilter
    destination: str  # masked, for display
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    ttl_seconds: float | None = None
    secret_env: str | None = None
    created_by: str = "local"
    admin_created: bool = True
    created_at: datetime | None = None
    destination_encrypted: str | None = field(default=None, repr=False)
    secret_encrypted: str | None = field(default=None, repr=False)

    @functools.cached_property
    def destination_kind(self) -> str:
        """webhook, amqp or zaqar (from the masked form: the scheme is never masked)."""
        return parse_destination(self.destination).kind

    def target(self) -> Destination:
        """The destination with its credentials (decrypted here, in the delivering process)."""
        url = secrets.decrypt(self.destination_encrypted) if self.destination_encrypted else self.destination
        return parse_destination(url)

    def secret(self) -> str | None:
        """The signing secret, from the named variable or decrypted; None when the subscription has none."""
        if self.secret_env:
            return secrets.from_env(self.secret_env)
        if self.secret_encrypted:
            return secrets.decrypt(self.secret_encrypted)
        return None

    def to_json(self) -> dict[str, Any]:
        """What listings and the API show: never a secret, only whether one is set and how."""
        return {
            "name": self.name, "provider": self.provider, "project_id": self.scope.project_id,
            "all_projects": self.scope.all_projects, **self.filter.to_json(), "to": self.destination,
            "max_attempts": self.max_attempts, "ttl_seconds": self.ttl_seconds,
            "secret": "env:" + self.secret_env if self.secret_env else ("stored" if self.secret_encrypted else None),
            "created_by": self.created_by, "admin_created": self.admin_created,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


def new_subscription(name: str, provider: str, scope: Scope, flt: EventFilter, to: str, *,
                     secret_env: str | None = None, secret: str | None = None,
                     max_attempts: int = DEFAULT_MAX_ATTEMPTS, ttl_seconds: float | None = None,
                     created_by: str = "local", admin_created: bool = True) -> Subscription:
    """Validate user input into a subscription; credentials in `to` and `secret` are encrypted here."""
    if not NAME.match(name):
        raise SubscriptionError(f"name {name!r}: 1-128 letters, digits, '.', '_' or '-', starting with one of the "
                                "first two")
    if scope.all_projects and not admin_created:
        raise SubscriptionError("--all-projects (events of every project and of none) is for admins only")
    if secret_env and secret:
        raise SubscriptionError("give a secret or the variable that holds it, not both")
    if not 1 <= max_attempts <= 1000:
        raise SubscriptionError("max_attempts must be between 1 and 1000")
    if ttl_seconds is not None and ttl_seconds <= 0:
        raise SubscriptionError("ttl must be positive")
    destination = parse_destination(to)
    return Subscription(
        name=name, provider=provider, scope=scope, filter=flt, destination=destination.shown,
        destination_encrypted=secrets.encrypt(destination.url) if destination.has_credentials else None,
        secret_env=secret_env, secret_encrypted=secrets.encrypt(secret) if secret else None,
        max_attempts=max_attempts, ttl_seconds=ttl_seconds, created_by=created_by, admin_created=admin_created,
        created_at=datetime.now(UTC),
    )


def _from_row(row: SubscriptionRow) -> Subscription:
    return Subscription(
        name=row.name, provider=row.provider, scope=Scope(row.project_id, row.all_projects),
        filter=EventFilter.from_json(row.filter), destination=row.destination,
        destination_encrypted=row.destination_encrypted, secret_env=row.secret_env,
        secret_encrypted=row.secret_encrypted, max_attempts=row.max_attempts, ttl_seconds=row.ttl_seconds,
        created_by=row.created_by, admin_created=row.admin_created, created_at=row.created_at,
    )


class SubscriptionStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, sub: Subscription) -> None:
        row = SubscriptionRow(
            name=sub.name, provider=sub.provider, project_id=sub.scope.project_id,
            all_projects=sub.scope.all_projects, filter=sub.filter.to_json(), destination=sub.destination,
            destination_encrypted=sub.destination_encrypted, secret_env=sub.secret_env,
            secret_encrypted=sub.secret_encrypted, max_attempts=sub.max_attempts, ttl_seconds=sub.ttl_seconds,
            created_by=sub.created_by, admin_created=sub.admin_created, created_at=sub.created_at or datetime.now(UTC),
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(row)
        except IntegrityError:
            raise SubscriptionError(f"a subscription named {sub.name!r} exists already") from None

    def get(self, name: str, projects: Sequence[str] | None = None) -> Subscription | None:
        """The subscription `name`, if it exists and (`projects` given) belongs to one of them."""
        with Session(self.engine) as session:
            row = session.get(SubscriptionRow, name)
            if row is None or (projects is not None and row.project_id not in projects):
                return None
            return _from_row(row)

    def list(self, projects: Sequence[str] | None = None, provider: str | None = None) -> list[Subscription]:
        """Every subscription, or those owned by `projects` (a non-admin caller's), by name."""
        stmt = select(SubscriptionRow).order_by(SubscriptionRow.name)
        if projects is not None:
            stmt = stmt.where(SubscriptionRow.project_id.in_(list(projects)))
        if provider is not None:
            stmt = stmt.where(SubscriptionRow.provider == provider)
        with Session(self.engine) as session:
            return [_from_row(row) for row in session.scalars(stmt)]

    def remove(self, name: str, projects: Sequence[str] | None = None) -> bool:
        stmt = delete(SubscriptionRow).where(SubscriptionRow.name == name)
        if projects is not None:
            stmt = stmt.where(SubscriptionRow.project_id.in_(list(projects)))
        with self.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount)
