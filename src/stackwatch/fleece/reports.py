"""Kept fleece reports: save each report with the image / server it describes, list and fetch them.

The CLI saves when a store is configured and the API serves them (`/api/v1/fleece`). Reports are stored
whole as JSON, so the API returns exactly what `stackwatch fleece --format json` printed; the target, the
Glance image id, the server id and the I/O cost are also columns, for filtering without parsing JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, false, or_, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from stackwatch import selfmetrics
from stackwatch.fleece.models import FleeceReportRow
from stackwatch.store.errors import StoreError, StoreUnavailable


def ids_of(target: str) -> tuple[str | None, str | None]:
    """(Glance image id, server id) a target names: `glance:ID` and `instance:UUID`; others name neither."""
    kind, _, rest = target.partition(":")
    if kind == "glance" and rest:
        return rest, None
    if kind == "instance" and rest:
        return None, rest
    return None, None


@dataclass(frozen=True)
class ReportSummary:
    id: int
    provider: str | None
    target: str
    image_id: str | None
    vm_id: str | None
    created_at: datetime
    ok: bool
    io: dict[str, Any]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "provider": self.provider,
            "target": self.target,
            "image_id": self.image_id,
            "vm_id": self.vm_id,
            "created_at": self.created_at.isoformat(),
            "ok": self.ok,
            "io": self.io,
        }


def _summary(row: FleeceReportRow) -> ReportSummary:
    io = {"image_size": row.image_size, "bytes_read": row.bytes_read, "requests": row.requests, "seconds": row.seconds}
    return ReportSummary(row.id, row.provider, row.target, row.image_id, row.vm_id, row.created_at, row.ok, io)


def _visible(projects: tuple[str, ...] | None):  # noqa: ANN202
    """Reports a scoped caller may see: of servers or images the inventory puts in their projects (reports of
    other targets, local files say, are an admin's). None: no restriction."""
    if projects is None:
        return None
    if not projects:
        return false()
    from stackwatch.inventory.models import InventoryItemRow

    def uids(kind: str):  # noqa: ANN202
        return select(InventoryItemRow.uid).where(
            InventoryItemRow.kind == kind, InventoryItemRow.project_id.in_(list(projects))
        ).scalar_subquery()

    return or_(
        and_(FleeceReportRow.vm_id.is_not(None), FleeceReportRow.vm_id.in_(uids("servers"))),
        and_(FleeceReportRow.image_id.is_not(None), FleeceReportRow.image_id.in_(uids("images"))),
    )


def _wrap(exc: SQLAlchemyError) -> StoreError:
    if isinstance(exc, OperationalError):
        return StoreUnavailable(f"database unavailable: {exc.orig or exc}")
    return StoreError(f"{exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}")


class FleeceReports:
    """Reports in the `fleece_reports` table of an already migrated store (open_store upgrades all heads)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def save(self, report: dict[str, Any], provider: str | None = None, when: datetime | None = None) -> int:
        image_id, vm_id = ids_of(report["target"])
        io = report.get("io") or {}
        row = FleeceReportRow(
            provider=provider,
            target=report["target"],
            image_id=image_id,
            vm_id=vm_id,
            created_at=when or datetime.now(UTC),
            ok=bool((report.get("os") or {}).get("id")) and not report.get("errors"),
            report=report,
            image_size=io.get("image_size"),
            bytes_read=io.get("bytes_read"),
            requests=io.get("requests"),
            seconds=io.get("seconds"),
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(row)
                session.flush()
                report_id = row.id
        except SQLAlchemyError as exc:
            raise _wrap(exc) from exc
        selfmetrics.record_fleece(provider, io.get("bytes_read"), io.get("seconds"))
        return report_id

    def list(
        self,
        target: str | None = None,
        image_id: str | None = None,
        vm_id: str | None = None,
        provider: str | None = None,
        limit: int = 100,
        projects: tuple[str, ...] | None = None,
    ) -> list[ReportSummary]:
        """Newest first; `projects` restricts them to a scoped caller's (see `_visible`)."""
        q = select(FleeceReportRow)
        visible = _visible(projects)
        if visible is not None:
            q = q.where(visible)
        for column, value in (
            (FleeceReportRow.target, target),
            (FleeceReportRow.image_id, image_id),
            (FleeceReportRow.vm_id, vm_id),
            (FleeceReportRow.provider, provider),
        ):
            if value is not None:
                q = q.where(column == value)
        q = q.order_by(FleeceReportRow.created_at.desc(), FleeceReportRow.id.desc()).limit(limit)
        try:
            with Session(self.engine) as session:
                return [_summary(r) for r in session.scalars(q)]
        except SQLAlchemyError as exc:
            raise _wrap(exc) from exc

    def get(self, report_id: int, projects: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        q = select(FleeceReportRow.report).where(FleeceReportRow.id == report_id)
        visible = _visible(projects)
        if visible is not None:
            q = q.where(visible)
        try:
            with Session(self.engine) as session:
                report = session.scalars(q).first()
                return None if report is None else dict(report)  # type: ignore[call-overload]
        except SQLAlchemyError as exc:
            raise _wrap(exc) from exc
