"""A malformed-input corpus mixed between good lines: every bad line quarantined with a reason, every good
line stored, nothing crashes — through the CLI, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import orjson
import pytest
from typer.testing import CliRunner

from stackwatch.cli.main import app
from stackwatch.store.db import open_store
from tests.conftest import SAMPLES, sample_files

GOOD = [p for p in sample_files() if "oslo_wire" in str(p)] + sorted((SAMPLES / "legacy" / "nova").glob("*.json"))

good_envelope = json.loads((SAMPLES / "oslo_wire" / "00_notifications.info_compute.instance.create.end.body.json")
                           .read_text())
BAD: list[tuple[bytes, str]] = [
    (b'{"event_type": "compute.instance.create.end", "payload": {"instance_id": ', "invalid JSON"),
    (b'{"event_type": "x.y", "payload": {"name": "\xff\xfe caf\xe9"}}', "not UTF-8"),
    (b"[1, 2, 3]", "must be a JSON object"),
    (b'"just a string"', "must be a JSON object"),
    (b"42", "must be a JSON object"),
    (b"null", "must be a JSON object"),
    (b'{"payload": {"instance_id": "abc"}, "message_id": "no-type"}', "missing event_type"),
    (b'{"event_type": 12, "payload": {}}', "event_type must be a string"),
    (b'{"event_type": ["a"], "payload": {}}', "event_type must be a string"),
    (b'{"event_type": "compute.instance.update", "timestamp": "yesterday at noon", "payload": {}}',
     "unparseable timestamp"),
    (b'{"event_type": "compute.instance.update", "timestamp": "2026-02-31 10:00:00", "payload": {}}',
     "unparseable timestamp"),
    (orjson.dumps({"oslo.version": "2.0", "oslo.message": good_envelope["oslo.message"][:-40]}), "bad oslo envelope"),
    (orjson.dumps({"oslo.version": "2.0", "oslo.message": {"not": "a string"}}), "bad oslo envelope"),
    (orjson.dumps({"oslo.version": "2.0", "oslo.message": "[1,2]"}), "bad oslo envelope"),
    (orjson.dumps({"oslo.version": "1.0", "oslo.message": "{}"}), "unsupported oslo.version"),
    (b'{"hello": "world"}', "not a notification"),
    (b"[" * 200_000 + b"]" * 200_000, "invalid JSON"),
    (b'{"a":' * 200_000 + b"1" + b"}" * 200_000, "invalid JSON"),
    (orjson.dumps({"event_type": "compute.instance.update", "payload": {"blob": "x" * (20 * 1024 * 1024)}}),
     "exceeds max_event_bytes"),
    (b'{"event_type": "bad\\u0001type", "payload": {}}', "control characters"),
    (b'{"event_type": "ok.type", "message_id": {"nested": 1}, "payload": {}}', "message_id must be a string"),
    (b'{"traits": "not-a-list", "generated": "2026-11-22T00:00:00", "event_type": "x"}', "traits"),
]


def message_id(path) -> str:
    doc = orjson.loads(path.read_bytes())
    return orjson.loads(doc["oslo.message"])["message_id"] if "oslo.message" in doc else doc["message_id"]


def corpus() -> bytes:
    lines: list[bytes] = []
    for i, (bad, _reason) in enumerate(BAD):
        good = orjson.dumps(orjson.loads(GOOD[i % len(GOOD)].read_bytes()))
        lines += [good, bad]
    return b"\n".join(lines) + b"\n"


@pytest.fixture
def cli_env(db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("STACKWATCH_DATABASE_URL", db_url)
    monkeypatch.setenv("STACKWATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STACKWATCH_CONFIG", raising=False)
    return db_url


def test_corpus_through_cli(cli_env, tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(corpus())
    runner = CliRunner()
    result = runner.invoke(app, ["events", "ingest", str(path), "--provider", "lab", "--format", "json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    distinct_good = {message_id(GOOD[i % len(GOOD)]) for i in range(len(BAD))}
    assert counts["quarantined"] == len(BAD)
    assert counts["stored"] == len(distinct_good)
    assert counts["stored"] + counts["duplicates"] + counts["quarantined"] == 2 * len(BAD)

    store = open_store(cli_env)
    records = store.quarantined("lab", limit=1000)
    assert len(records) == len(BAD)
    reasons = [r.reason for r in records]
    for _bad, expected in BAD:
        assert any(expected in reason for reason in reasons), f"no quarantine reason mentions {expected!r}"
    big = [r for r in records if "exceeds max_event_bytes" in r.reason]
    assert big and big[0].size > 20 * 1024 * 1024 and len(big[0].raw) == big[0].size  # kept whole
    assert store.count("lab") == len(distinct_good)

    # re-ingesting the same file stores nothing new and keeps one quarantine record per distinct input
    again = json.loads(runner.invoke(app, ["events", "ingest", str(path), "--provider", "lab", "--format",
                                           "json"]).stdout)
    assert again["stored"] == 0 and store.count("lab") == len(distinct_good)
    assert store.quarantine_count("lab") == len(BAD)

    listing = runner.invoke(app, ["events", "quarantine", "--provider", "lab", "--format", "json"])
    assert listing.exit_code == 0 and "raw" not in json.loads(listing.stdout)[0]
    store.dispose()


def test_broken_pretty_printed_file_is_one_quarantined_message(cli_env, tmp_path):
    path = tmp_path / "broken.json"
    text = (SAMPLES / "legacy" / "nova" / "ceilometer-test_instance-INSTANCE_CREATE_END.json").read_text()
    path.write_text(text[: len(text) // 2])
    result = CliRunner().invoke(app, ["events", "ingest", str(path), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["quarantined"] == 1
