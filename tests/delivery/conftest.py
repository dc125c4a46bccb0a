"""The delivery tests' store: a migrated engine on SQLite and on the real PostgreSQL (`db_url`)."""

from __future__ import annotations

import pytest

from stackwatch.store.db import make_engine, upgrade


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()
