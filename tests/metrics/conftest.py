"""Fixtures of the metrics tests: a real Gnocchi per test (fresh database, storage and Redis db), a provider
configured for it with basic auth, and helpers to wait for metricd and read what stackwatch stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.metrics.gnocchi_peer import GnocchiPeer
from tests.metrics.seed import ensure_schema, wait_processed  # noqa: F401 - the tests import it from here


@pytest.fixture
def gnocchi_bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GnocchiPeer]:
    """A fresh Gnocchi as `gnocchi-upgrade` leaves it: no Ceilometer resource types or archive policies."""
    peer = GnocchiPeer(tmp_path_factory.mktemp("gnocchi"))
    try:
        peer.setup().start()
        yield peer
    finally:
        peer.teardown()


@pytest.fixture
def gnocchi(gnocchi_bare: GnocchiPeer) -> GnocchiPeer:
    """A fresh Gnocchi with Ceilometer 27's resource types and archive policies."""
    ensure_schema(gnocchi_bare.session(), gnocchi_bare.url)
    return gnocchi_bare


def provider_doc(peer: GnocchiPeer, name: str = "lab", **metrics) -> dict:
    """The issue's configuration shape, with basic auth and no cloud."""
    return {"name": name, "metrics": {"gnocchi": {"endpoint": peer.url, "auth": "basic", "username": "admin"},
                                      **metrics}}


def stored_rows(engine, provider: str = "lab") -> dict[tuple, tuple[float, float]]:
    """{(scope, ref, metric, granularity, period_start): (avg, max)} of everything stored for `provider`."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT scope, ref, metric, granularity, period_start, avg, max FROM metric_rollups WHERE provider = :p"),
            {"p": provider})
        out = {}
        for r in rows:
            start = r.period_start
            if isinstance(start, str):
                from datetime import datetime

                start = datetime.fromisoformat(start)
            start = start.replace(tzinfo=None)
            out[(r.scope, r.ref, r.metric, r.granularity, start)] = (r.avg, r.max)
        return out

