"""The runner without a broker: in-order acks, retry while the store is down, a refused message isolated."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import orjson
import pytest

from stackwatch.config.settings import ProviderConfig
from stackwatch.events.catcher import Catcher
from stackwatch.events.model import R_PAYLOAD, RawMessage
from stackwatch.events.monitors.base import Availability, Batch, Monitor
from stackwatch.events.runner import CatcherRunner
from stackwatch.store.db import open_store
from stackwatch.store.errors import StoreError, StoreUnavailable
from tests.amqp.corpus import envelope_bodies


class ListMonitor(Monitor):
    """Hands out prepared batches, records acks; ends when every batch was acknowledged."""

    name = "list"

    def __init__(self, provider: ProviderConfig, batches: list[list[bytes]]) -> None:
        super().__init__(provider)
        self._batches = [Batch(tuple(RawMessage(b, "test") for b in bodies), i + 1)
                         for i, bodies in enumerate(batches)]
        self.acked: list[int] = []
        self.done = threading.Event()
        self._stopped = threading.Event()

    @classmethod
    def available(cls, provider: ProviderConfig) -> Availability:
        return Availability(True, "test")

    def start(self) -> None: ...

    def stop(self) -> None:
        self._stopped.set()

    def batches(self) -> Iterator[Batch]:
        for batch in self._batches:
            if self._stopped.is_set():
                return
            yield batch
        self._stopped.wait(30)

    def ack(self, batch: Batch) -> None:
        self.acked.append(batch.seq)
        if len(self.acked) == len(self._batches):
            self.done.set()


class FlakyCatcher(Catcher):
    """Refuses events whose payload says "poison" (StoreError); down for the first `down` commits."""

    def __init__(self, *args, down: int = 0, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.down = down
        self.calls = 0

    def commit(self, prepared):  # noqa: ANN001, ANN201
        self.calls += 1
        if self.calls <= self.down:
            raise StoreUnavailable("database is down (test)")
        if any("poison" in (rec[R_PAYLOAD] or "") for rec in prepared.records):
            raise StoreError("value refused (test)")
        return super().commit(prepared)


def _poison() -> bytes:
    return orjson.dumps({"event_type": "compute.instance.update", "message_id": "poison-1",
                         "payload": {"instance_id": "poison"}})


@pytest.mark.parametrize("writers", [1, 2])
def test_store_down_then_a_refused_message_is_isolated_and_everything_else_stored(tmp_path, writers):
    store = open_store(f"sqlite:///{tmp_path / 'sw.db'}")
    prov = ProviderConfig.model_validate({"name": "lab", "events": {"flood": {"window_seconds": 0}}})
    good = [b for _, b in envelope_bodies(40)]
    batches = [good[:5] + [_poison()] + good[5:10], good[10:20], good[20:30], good[30:]]
    monitor = ListMonitor(prov, batches)
    catcher = FlakyCatcher(store, prov, down=2)
    runner = CatcherRunner(monitor, catcher, retry_min=0.01, retry_max=0.05, writers=writers).start()
    try:
        assert monitor.done.wait(30), (monitor.acked, vars(runner.stats))
    finally:
        runner.stop()
    assert monitor.acked == [1, 2, 3, 4]  # in order, each once
    assert store.count("lab") == 40
    assert store.get("poison-1", "lab") is None
    [item] = store.quarantined("lab")
    assert "store refused this event" in item.reason and b"poison" in item.raw
    assert runner.stats.store_failures >= 2 + 3
    store.dispose()


def test_nothing_is_acknowledged_while_the_store_stays_down(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'sw.db'}")
    prov = ProviderConfig(name="lab")
    monitor = ListMonitor(prov, [[b for _, b in envelope_bodies(3)]])
    runner = CatcherRunner(monitor, FlakyCatcher(store, prov, down=10**9), retry_min=0.01, retry_max=0.02).start()
    try:
        assert not monitor.done.wait(1.0)
        assert runner.stats.store_failures > 5
    finally:
        runner.stop()
    assert monitor.acked == []
    assert store.count("lab") == 0
    store.dispose()
