"""Shared fixtures: a store on SQLite and on the real PostgreSQL of this machine, and the sample files."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "samples"
PG_ADMIN_URL = os.environ.get("STACKWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def sample_files() -> list[Path]:
    """Every single-notification sample file (arrays are exercised separately)."""
    files = sorted((SAMPLES / "legacy").glob("*/*.json")) + sorted((SAMPLES / "nova_versioned").glob("*.json"))
    files += sorted((SAMPLES / "oslo_wire").glob("*.body.json"))
    return files


@pytest.fixture(autouse=True)
def _isolated_user_config(tmp_path_factory, monkeypatch):
    """No test reads the developer's own ~/.config/stackwatch/stackwatch.yaml, and none inherits the Prometheus
    directory a command run in-process (`serve` through CliRunner) chose: the test after it would count in one
    mode and read in the other."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # recorded, so the teardown restores it (unset)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")


def _pg_admin():
    import psycopg

    return psycopg.connect(PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True,
                           connect_timeout=5)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server, dropped at the end of the session."""
    try:
        admin = _pg_admin()
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}")
    name = f"stackwatch_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL on an empty schema: a fresh SQLite file, or a fresh schema on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'stackwatch.db'}"
        return
    base_url = request.getfixturevalue("pg_database")
    import psycopg

    # every test gets empty tables: drop what the previous test left
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    yield base_url


@pytest.fixture
def store(db_url: str):
    from stackwatch.store.db import open_store

    s = open_store(db_url)
    yield s
    s.dispose()
