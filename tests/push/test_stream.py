"""The WebSocket stream `GET /api/v1/stream` on a real uvicorn server, with a real WebSocket client: a caller
receives its own project's events as they are stored, filtered by its query, never another project's (a
query naming another project is refused), and resumes after a reconnect with `last_event_id` without a gap
or a repeat."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import orjson
import pytest
import uvicorn
import websockets

from stackwatch.api.app import create_app
from stackwatch.api.identity import Caller
from stackwatch.config.settings import Settings
from tests.push.conftest import make_event

CALLERS = {"alice": Caller("alice", "operator", "proj-a"), "bob": Caller("bob", "viewer", "proj-b"),
           "root": Caller("root", "admin")}


@pytest.fixture
def server(store, db_url):
    application = create_app(Settings(database=db_url, providers=[{"name": "lab", "events": {"monitor": "none"}}]),
                             store)
    application.state.authenticator = lambda request: CALLERS[request.headers["x-test-caller"]]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    srv = uvicorn.Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning",
                                        ws="websockets-sansio"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"ws://127.0.0.1:{port}/api/v1/stream"
    srv.should_exit = True
    thread.join(10)


async def _collect(url: str, caller: str, n: int, ready: threading.Barrier | None = None,
                   timeout: float = 20.0) -> list[dict]:
    out: list[dict] = []
    async with websockets.connect(url, additional_headers={"x-test-caller": caller}) as ws:
        opening = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
        assert opening["event"] is None and opening["id"]  # where the stream starts
        if ready is not None:
            await asyncio.to_thread(ready.wait, timeout)
        while len(out) < n:
            out.append(orjson.loads(await asyncio.wait_for(ws.recv(), timeout)))
    return out


def _write_later(store, events, ready: threading.Barrier | None = None) -> threading.Thread:  # noqa: ANN001
    def run() -> None:
        if ready is not None:
            ready.wait(20)  # every client has its starting position
        store.write_batch(events)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_stream_scoped_filtered_and_resumable(server, store):
    events = [make_event(i, ("proj-a", "proj-b", None)[i % 3], vm=f"vm-{i % 2}",
                         event_type=("compute.instance.power_on.end", "volume.attach.end")[i % 2 == 0])
              for i in range(60)]
    alice_all = [e for e in events if e.project_id == "proj-a"]
    alice_vm0 = [e for e in alice_all if e.vm_ref == "vm-0"]
    ready = threading.Barrier(5)
    writer = _write_later(store, events, ready)

    async def scenario() -> tuple[list[dict], list[dict], list[dict], list[dict]]:
        return await asyncio.gather(
            _collect(server, "alice", len(alice_all), ready),
            _collect(server + "?vm=vm-0", "alice", len(alice_vm0), ready),
            _collect(server, "root", len(events), ready),
            _collect(server + "?events=compute.instance.*", "bob",
                     len([e for e in events if e.project_id == "proj-b" and e.event_type.startswith("compute.")]),
                     ready),
        )

    mine, vm0, everything, bobs = asyncio.run(scenario())
    writer.join()
    assert [m["event"]["message_id"] for m in mine] == [e.message_id for e in alice_all]
    assert [m["event"]["message_id"] for m in vm0] == [e.message_id for e in alice_vm0]
    assert {m["event"]["project_id"] for m in bobs} == {"proj-b"}
    assert all(m["event"]["event_type"].startswith("compute.instance.") for m in bobs)
    assert len(everything) == len(events)  # the admin sees every project's and the project-less events

    # resume: reconnect with the id of the 5th event received; the rest come, none again, then new ones
    cursor = mine[4]["id"]
    more = [make_event(100 + i, "proj-a") for i in range(5)]
    ready = threading.Barrier(2)
    writer = _write_later(store, more, ready)
    resumed = asyncio.run(_collect(f"{server}?last_event_id={cursor}", "alice", len(alice_all) - 5 + 5, ready))
    writer.join()
    assert [m["event"]["message_id"] for m in resumed] == [e.message_id for e in alice_all[5:] + more]


def test_stream_refuses_widening_and_bad_cursors(server):
    async def closed(url: str, caller: str) -> int:
        async with websockets.connect(url, additional_headers={"x-test-caller": caller}) as ws:
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 10)
            return info.value.rcvd.code

    assert asyncio.run(closed(server + "?project=proj-b", "alice")) == 4403
    assert asyncio.run(closed(server + "?last_event_id=garbage", "alice")) == 4400
    assert asyncio.run(closed(server + "?group=nope", "alice")) == 4400


def test_hub_holds_the_newest_and_sends_older_positions_to_the_database(store):
    from stackwatch.api.stream import StreamHub
    from stackwatch.store.stream import EventStream

    async def scenario() -> tuple[list, list | None, list]:
        stream = EventStream(store.engine)
        start = stream.head()
        hub = await StreamHub(stream, ["lab"], keep=5).start()
        seen = hub.version
        store.write_batch([make_event(i, "proj-a") for i in range(12)])
        await hub.wait(seen, 10)
        while len(hub.items["lab"]) < 5 or hub.items["lab"][-1].event.payload["n"] != 11:
            await hub.wait(hub.version, 1)
        held = hub.after("lab", hub.floor["lab"])
        behind = hub.after("lab", start)
        from_db = stream.read("lab", start, 100)
        hub._task.cancel()
        return held, behind, from_db

    held, behind, from_db = asyncio.run(scenario())
    assert [i.event.payload["n"] for i in held] == [7, 8, 9, 10, 11]  # the newest `keep`
    assert behind is None  # older than the hub holds: the client reads the database
    assert [i.event.payload["n"] for i in from_db] == list(range(12))
