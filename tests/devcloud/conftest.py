"""devcloud fixtures: one real OpenStack on loopback for the whole session (``stackwatch.devcloud.up``).

The install cache under ~/.cache/stackwatch/devcloud (or STACKWATCH_DEVCLOUD_HOME) is reused; a cold
install adds a few minutes to the first test. Tests skip only when RabbitMQ / PostgreSQL are not installed.
STACKWATCH_DEVCLOUD_KEEP=1 leaves it running after the session (faster local iterations).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stackwatch import devcloud
from stackwatch.devcloud import postgres, rabbit


def _prerequisites_missing() -> str | None:
    try:
        rabbit.check_installed()
        postgres.bin_dir()
    except devcloud.PrerequisiteError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def devcloud_cloud() -> Iterator[devcloud.DevCloud]:
    missing = _prerequisites_missing()
    if missing:
        pytest.skip(missing)
    info = devcloud.up(fresh=os.environ.get("STACKWATCH_DEVCLOUD_FRESH") == "1")
    yield info
    if os.environ.get("STACKWATCH_DEVCLOUD_KEEP") != "1":
        devcloud.down()


@pytest.fixture(scope="session")
def devcloud_conn(devcloud_cloud: devcloud.DevCloud):
    conn = devcloud_cloud.connect()
    yield conn
    conn.close()
