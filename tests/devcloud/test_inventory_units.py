"""Inventory engine without a cloud: the kinds table against openstacksdk, and apply_listing on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stackwatch.inventory import query, refresh
from stackwatch.inventory.kinds import BY_NAME, KINDS, kind_named
from stackwatch.inventory.models import InventoryChangeRow
from stackwatch.store.db import open_store

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(db_url):  # tests/conftest.py: a fresh SQLite file, then a fresh schema on the real PostgreSQL
    store = open_store(db_url)
    yield store.engine
    store.dispose()


def test_every_kind_names_real_sdk_calls():
    import openstack.block_storage.v3._proxy as block_storage
    import openstack.compute.v2._proxy as compute
    import openstack.identity.v3._proxy as identity
    import openstack.image.v2._proxy as image
    import openstack.network.v2._proxy as network
    import openstack.orchestration.v1._proxy as orchestration

    proxies = {
        "compute": compute,
        "image": image,
        "identity": identity,
        "network": network,
        "block_storage": block_storage,
        "orchestration": orchestration,
    }
    assert len(KINDS) == 18
    for k in KINDS:
        proxy = proxies[k.proxy].Proxy
        assert callable(getattr(proxy, k.method, None)), k.name
        assert k.get is None or callable(getattr(proxy, k.get, None)), k.name
        assert k.uid in k.fields, k.name
    vm = kind_named("vm")
    assert vm.name == "servers"
    for f in (
        "id",
        "name",
        "status",
        "power_state",
        "host",
        "flavor_id",
        "image_id",
        "project_id",
        "created_at",
        "updated_at",
    ):
        assert f in vm.fields
    assert {
        "servers",
        "hypervisors",
        "flavors",
        "images",
        "projects",
        "networks",
        "subnets",
        "ports",
        "routers",
        "floating_ips",
        "security_groups",
        "security_group_rules",
        "volumes",
        "volume_snapshots",
        "stacks",
        "aggregates",
        "keypairs",
        "availability_zones",
    } <= set(BY_NAME)


def test_parse_target():
    k, uid = refresh.parse_target("vm:abc")
    assert (k.name, uid) == ("servers", "abc")
    assert refresh.parse_target("floating_ip:1")[0].name == "floating_ips"
    with pytest.raises(ValueError):
        refresh.parse_target("vm")
    with pytest.raises(KeyError):
        refresh.parse_target("nosuch:1")


def _apply(engine, items, now, complete=True, gone=()):
    with Session(engine) as s, s.begin():
        return refresh.apply_listing(s, "p", kind_named("servers"), items, now, None, complete=complete, gone=gone)


def _changes(engine):
    with Session(engine) as s:
        return [
            (c.uid, c.action, c.changes) for c in s.scalars(select(InventoryChangeRow).order_by(InventoryChangeRow.id))
        ]


def test_created_updated_deleted_restored_are_recorded(engine):
    a = {"id": "a", "name": "vm-a", "status": "ACTIVE", "power_state": 1}
    b = {"id": "b", "name": "vm-b", "status": "ACTIVE", "power_state": 1}
    r = _apply(engine, {"a": a, "b": b}, T0)
    assert (r.created, r.updated, r.deleted) == (2, 0, 0)
    r = _apply(engine, {"a": a, "b": b}, T0 + timedelta(seconds=1))
    assert (r.created, r.updated, r.deleted) == (0, 0, 0)
    a2 = a | {"status": "SHUTOFF", "power_state": 4}
    r = _apply(engine, {"a": a2}, T0 + timedelta(seconds=2))
    assert (r.updated, r.deleted) == (1, 1)
    live = query.items(engine, kind_named("servers"))
    assert [d["id"] for d in live] == ["a"] and live[0]["status"] == "SHUTOFF"
    all_ = {d["id"]: d for d in query.items(engine, kind_named("servers"), deleted=True)}
    assert all_["b"]["deleted_at"].startswith("2026-11-22T12:00:02")
    r = _apply(engine, {"a": a2, "b": b}, T0 + timedelta(seconds=3))
    assert r.restored == 1
    assert _changes(engine) == [
        ("a", "created", a),
        ("b", "created", b),
        ("a", "updated", {"status": ["ACTIVE", "SHUTOFF"], "power_state": [1, 4]}),
        ("b", "deleted", None),
        ("b", "restored", None),
    ]


def test_partial_listing_deletes_only_what_is_gone(engine):
    _apply(engine, {u: {"id": u, "name": u} for u in "abc"}, T0)
    r = _apply(engine, {"a": {"id": "a", "name": "renamed"}}, T0 + timedelta(seconds=1), complete=False, gone=["b"])
    assert (r.updated, r.deleted) == (1, 1)
    live = {d["id"]: d["name"] for d in query.items(engine, kind_named("servers"))}
    assert live == {"a": "renamed", "c": "c"}
    assert [c["action"] for c in query.changes(engine, "a")] == ["created", "updated"]


def test_plain_and_read_path_make_json_safe_values():
    class Res:
        def __init__(self, **kw):
            self.__dict__.update(kw)

        def to_dict(self, computed=False):
            return dict(self.__dict__, location={"cloud": "x"})

    r = Res(flavor=Res(original_name="m1.tiny"), when=T0, tags=("a", "b"))
    assert refresh.read_path(r, "flavor.original_name") == "m1.tiny"
    assert refresh.read_path(r, "flavor.id") is None
    assert refresh.read_path(r, "when") == "2026-11-22T12:00:00+00:00"
    assert refresh.plain(r)["flavor"] == {"original_name": "m1.tiny"}  # client-side location dropped
    assert refresh.plain(r)["tags"] == ["a", "b"]


def test_migration_0002_matches_the_models(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from stackwatch.inventory import models

    ours = {
        models.InventoryItemRow.__tablename__,
        models.InventoryChangeRow.__tablename__,
        models.InventoryRefreshRow.__tablename__,
    }
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), models.Base.metadata)

    def table_of(diff) -> str | None:
        d = diff[0] if isinstance(diff, list) else diff
        for part in d[1:]:
            name = getattr(part, "name", None) if not hasattr(part, "table") else part.table.name
            if name:
                return name
        return None

    mine = [d for d in diffs if table_of(d) in ours]
    assert mine == []
