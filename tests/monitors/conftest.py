"""Fixtures for the monitor tests: a real Panko 10 API (its own venv, `stackwatch.devcloud.telemetry_install`),
a store on the real PostgreSQL, and a runner that drives a monitor into the catcher as `stackwatch serve` does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackwatch.config.settings import ProviderConfig
from stackwatch.devcloud import telemetry_install
from tests.amqp.conftest import wait_for
from tests.monitors.peers.panko_api import Panko

__all__ = ["wait_for"]


def _need_telemetry(name: str) -> None:
    """Install the peer venv (cached; .ci/run pre-installs it in the background) or skip off CI."""
    try:
        telemetry_install.ensure(name)
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("CI"):
            raise
        pytest.skip(f"cannot install the {name} test peer: {exc}")


@pytest.fixture
def panko(tmp_path: Path) -> Iterator[Panko]:
    """A Panko 10 API (noauth) over a fresh SQLite database, stopped afterwards."""
    _need_telemetry("panko")
    p = Panko(tmp_path / "panko", f"sqlite:///{tmp_path / 'panko' / 'panko.sqlite'}")
    p.configure()
    p.start()
    yield p
    p.stop()


@pytest.fixture
def pg_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An EventStore on an empty schema of the real PostgreSQL."""
    import psycopg

    from stackwatch.store.db import open_store

    base_url = request.getfixturevalue("pg_database")
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    store = open_store(base_url)
    yield store
    store.dispose()


def provider(name: str = "lab", **events: Any) -> ProviderConfig:
    return ProviderConfig.model_validate({"name": name, "events": events})


def run_catcher(prov: ProviderConfig, store: Any):
    """The provider's selected monitor into a catcher on `store`, started in a thread (wiring.build_runner)."""
    from stackwatch.wiring import build_runner

    return build_runner(prov, store).start()


@pytest.fixture
def panko_pg(tmp_path: Path) -> Iterator[Panko]:
    """A Panko 10 API over its own database on the real PostgreSQL, at REPEATABLE READ (the recipe's setting:
    Panko reads a page and its traits in two statements of one transaction)."""
    import uuid

    import psycopg

    _need_telemetry("panko")
    name = f"monitors_panko_{uuid.uuid4().hex[:8]}"
    admin_url = os.environ.get("STACKWATCH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f"ALTER DATABASE \"{name}\" SET default_transaction_isolation TO 'repeatable read'")
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://")
    p = Panko(tmp_path / "panko", f"{base}/{name}")
    p.configure()
    p.start()
    yield p
    p.stop()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stored_ids(store: Any, provider_name: str = "lab") -> Any:
    """How many times each message_id of the provider is stored (a Counter: every value must be 1)."""
    from collections import Counter

    from sqlalchemy import text

    with store.engine.connect() as conn:
        return Counter(conn.execute(text("SELECT message_id FROM events WHERE provider = :p"),
                                    {"p": provider_name}).scalars().all())
