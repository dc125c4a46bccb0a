import io
import json
import logging
import sys
from pathlib import Path

import pytest

from stackwatch.logs import ENV_LOG_LEVEL, setup_logging

PW = "p@ss:w/rd%"  # the characters that broke the old URL pattern


@pytest.fixture
def stderr(capsys):
    """pytest's captured stderr (the handler writes to whatever sys.stderr is when it emits)."""
    setup_logging("DEBUG")
    return capsys


def last_line(capsys) -> tuple[str, dict]:
    line = capsys.readouterr().err.strip().splitlines()[-1]
    return line, json.loads(line)


def test_json_logs_follow_a_swapped_stderr_and_mask_secrets(monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging("INFO")
    first.close()  # what a finished CliRunner invocation does to the stderr it lent
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("stackwatch.test").info("connecting to amqp://u:p4ss@h/", extra={"password": "x"})
    line = second.getvalue().strip().splitlines()[-1]
    assert '"msg":"connecting to amqp://u:***@h/"' in line and '"password":"***"' in line and "p4ss" not in line


def test_message_arguments_and_raw_at_in_password(stderr):
    logging.getLogger("stackwatch.test").debug("broker %s refused; config %r", f"amqp://u:{PW}@h:5672/",
                                               {"auth": {"password": PW, "username": "admin"}})
    line, doc = last_line(stderr)
    assert PW not in line and "ss:w" not in line
    assert doc["msg"] == (
        "broker amqp://u:***@h:5672/ refused; config {'auth': {'password': '***', 'username': 'admin'}}"
    )


def test_extras_of_any_nesting(stderr):
    extra = {
        "database": f"postgresql://sw:{PW}@db/sw",
        "cloud": {"auth": {"password": PW, "application_credential_secret": PW, "auth_url": "http://k:5000/v3"}},
        "urls": [f"amqp://u:{PW}@h1/", f"amqp://v:{PW}@h2/"],
        "headers": {"X-Auth-Token": "gAAAAABtoken"},
        "path": Path(f"/tmp/x?token={PW}"),  # not JSON: rendered with str(), then masked
        "error": ConnectionError(f"cannot reach amqp://u:{PW}@h/"),
    }
    logging.getLogger("stackwatch.test").info("start", extra=extra)
    line, doc = last_line(stderr)
    assert PW not in line and "gAAAAABtoken" not in line
    assert doc["database"] == "postgresql://sw:***@db/sw"
    assert doc["cloud"] == {"auth": {"password": "***", "application_credential_secret": "***",
                                     "auth_url": "http://k:5000/v3"}}
    assert doc["urls"] == ["amqp://u:***@h1/", "amqp://v:***@h2/"]
    assert doc["headers"] == {"X-Auth-Token": "***"}
    assert doc["path"] == "/tmp/x?token=***"
    assert doc["error"] == "cannot reach amqp://u:***@h/"


def test_exception_text_and_stack(stderr):
    log = logging.getLogger("stackwatch.test")
    try:
        raise ConnectionError(f"AMQPConnectionError('amqp://guest:{PW}@127.0.0.1:5672/')")
    except ConnectionError:
        log.exception("connect failed", stack_info=True)
    line, doc = last_line(stderr)
    assert PW not in line
    assert "amqp://guest:***@127.0.0.1:5672/" in doc["exc"] and "ConnectionError" in doc["exc"]
    assert "stack" in doc


def test_level_from_the_environment(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", root.level)  # restored after the test
    monkeypatch.setenv(ENV_LOG_LEVEL, "debug")
    setup_logging()
    assert root.level == logging.DEBUG
    monkeypatch.delenv(ENV_LOG_LEVEL)
    root.setLevel(logging.ERROR)
    setup_logging()  # no level given and none in the environment: left as it is
    assert root.level == logging.ERROR
    assert sum(getattr(h, "_stackwatch", False) for h in root.handlers) == 1  # installed once
