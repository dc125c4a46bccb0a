"""Local API tokens: `stackwatch token create` prints a token once; only its SHA-256 is stored.

Tokens are 256 random bits, so one unsalted SHA-256 is enough (nothing to brute-force), and it lets a
request find its token with one indexed lookup. The short prefix kept in clear names a token in listings
without being usable.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, Index, String, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from stackwatch.api.identity import Caller, Role
from stackwatch.store.errors import as_store_error
from stackwatch.store.models import Base, BigId, UTCDateTime

ROLES: tuple[Role, ...] = ("admin", "operator", "viewer")
TOKEN_PREFIX = "sw_"


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    project_id: Mapped[str | None] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("uq_api_tokens_hash", "token_hash", unique=True),)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    """A stored token as listings show it (never the token)."""

    id: int
    name: str
    role: str
    project_id: str | None
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def to_json_dict(self) -> dict[str, object]:
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {
            "id": self.id, "name": self.name, "role": self.role, "project_id": self.project_id,
            "prefix": self.prefix, "created_at": iso(self.created_at), "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
        }


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(row.id, row.name, row.role, row.project_id, row.prefix, row.created_at, row.expires_at,
                     row.revoked_at)


class TokenError(ValueError):
    """A token cannot be created as asked (the message says why)."""


class LocalTokens:
    """The `api_tokens` table of a migrated store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, role: str, project_id: str | None = None, name: str | None = None, expires_at: datetime | None = None
    ) -> tuple[str, TokenInfo]:
        """A new token (returned once, in clear) and what is stored about it.

        Only admins act on every project: an operator or viewer token must name its project."""
        if role not in ROLES:
            raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if role != "admin" and not project_id:
            raise TokenError(f"a {role} token acts in one project: give --project")
        if role == "admin" and project_id:
            raise TokenError("an admin token sees every project: do not give --project")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiTokenRow(
            name=name or f"{role}{'-' + project_id if project_id else ''}",
            role=role,
            project_id=project_id,
            token_hash=token_hash(token),
            prefix=token[: len(TOKEN_PREFIX) + 6],
            created_at=datetime.now(UTC),
            expires_at=expires_at,
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(row)
                session.flush()
                info = _info(row)
        except SQLAlchemyError as exc:
            raise as_store_error(exc) from exc
        return token, info

    def list(self, include_revoked: bool = False) -> list[TokenInfo]:
        q = select(ApiTokenRow).order_by(ApiTokenRow.id)
        if not include_revoked:
            q = q.where(ApiTokenRow.revoked_at.is_(None))
        try:
            with Session(self.engine) as session:
                return [_info(r) for r in session.scalars(q)]
        except SQLAlchemyError as exc:
            raise as_store_error(exc) from exc

    def revoke(self, ref: str) -> int:
        """Revoke the tokens whose id, name or prefix is `ref`; returns how many were revoked."""
        cond = (ApiTokenRow.name == ref) | (ApiTokenRow.prefix == ref)
        if ref.isdigit():
            cond = cond | (ApiTokenRow.id == int(ref))
        stmt = update(ApiTokenRow).where(cond, ApiTokenRow.revoked_at.is_(None)).values(revoked_at=datetime.now(UTC))
        try:
            with self.engine.begin() as conn:
                return conn.execute(stmt).rowcount
        except SQLAlchemyError as exc:
            raise as_store_error(exc) from exc

    def verify(self, token: str) -> Caller | None:
        """The caller a token stands for, or None when it is unknown, revoked or expired."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        q = select(ApiTokenRow).where(ApiTokenRow.token_hash == token_hash(token))
        try:
            with Session(self.engine) as session:
                row = session.scalars(q).first()
        except SQLAlchemyError as exc:
            raise as_store_error(exc) from exc
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
            return None
        return Caller(name=f"token:{row.name}", role=row.role, project_id=row.project_id)  # type: ignore[arg-type]
