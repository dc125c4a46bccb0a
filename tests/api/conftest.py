"""API fixtures: an app with local-token auth over a seeded store (SQLite and PostgreSQL), and its tokens."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from stackwatch.api.app import create_app
from stackwatch.api.auth.tokens import LocalTokens
from stackwatch.config.settings import Settings
from tests.api.world import World, seed

PROJECTS = ("proj-alpha", "proj-bravo")


@dataclass
class Secured:
    client: TestClient
    world: World
    tokens: dict[str, str]  # "admin", a project id (its viewer) -> token
    store: object

    def get(self, who: str | None, url: str, **params):  # noqa: ANN003, ANN201
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return self.client.get(url, params={k: v for k, v in params.items() if v is not None}, headers=headers)


def secured_settings() -> Settings:
    return Settings.model_validate({"api": {"auth": {"tokens": True}}})


@pytest.fixture
def secured(store) -> Secured:  # noqa: ANN001
    world = seed(store, PROJECTS)
    tokens = LocalTokens(store.engine)
    issued = {"admin": tokens.create("admin", name="root")[0]}
    for p in PROJECTS:
        issued[p] = tokens.create("viewer", p)[0]
    client = TestClient(create_app(secured_settings(), store))
    return Secured(client, world, issued, store)
