import io
import logging
import sys

from stackwatch.logs import mask, setup_logging


def test_json_logs_follow_a_swapped_stderr_and_mask_secrets(monkeypatch):
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging("INFO")
    first.close()  # what a finished CliRunner invocation does to the stderr it lent
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("stackwatch.test").info("connecting to amqp://u:p4ss@h/", extra={"password": "x"})
    line = second.getvalue().strip().splitlines()[-1]
    assert '"msg":"connecting to amqp://u:***@h/"' in line and '"password":"***"' in line and "p4ss" not in line


def test_mask_leaves_urls_without_password():
    assert mask("http://127.0.0.1:5000/v3") == "http://127.0.0.1:5000/v3"
