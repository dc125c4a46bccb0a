"""Table of kept fleece reports, on the store's shared declarative Base.

One row per fleece run: the report as JSON (what `stackwatch fleece --format json` prints), plus the
columns the API filters on (target, Glance image id, server id) and the I/O cost, so the cost of fleecing
can be queried without opening every report. Its migration lives on its own branch ("fleece") so this
part never edits the event store's revisions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from stackwatch.store.models import Base, BigId, JSONDocument, UTCDateTime


class FleeceReportRow(Base):
    __tablename__ = "fleece_reports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str | None] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(2048), nullable=False)
    image_id: Mapped[str | None] = mapped_column(String(255))
    vm_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    report: Mapped[object] = mapped_column(JSONDocument, nullable=False)
    image_size: Mapped[int | None] = mapped_column(BigInteger)
    bytes_read: Mapped[int | None] = mapped_column(BigInteger)
    requests: Mapped[int | None] = mapped_column(Integer)
    seconds: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_fleece_reports_image", "image_id", "created_at"),
        Index("ix_fleece_reports_vm", "vm_id", "created_at"),
        Index("ix_fleece_reports_created", "created_at"),
    )
