"""Monitor plugins: entry points, selection (`auto` / explicit / `none`), config validation. No broker needed."""

from __future__ import annotations

import pytest

from stackwatch.config.settings import ProviderConfig
from stackwatch.events.monitors.amqp import AmqpMonitor
from stackwatch.events.monitors.amqp_config import parse_amqp_section
from stackwatch.events.monitors.base import Availability, Batch, Monitor, MonitorConfigError
from stackwatch.events.monitors.null import NullMonitor
from stackwatch.events.monitors.registry import MonitorSelectionError, explain, load_monitors, select
from stackwatch.masking import mask_url


def provider(**events) -> ProviderConfig:  # noqa: ANN003
    return ProviderConfig.model_validate({"name": "lab", "events": events})


def test_entry_points_register_amqp_and_null():
    monitors = load_monitors()
    assert monitors["amqp"] is AmqpMonitor
    assert monitors["null"] is NullMonitor
    assert AmqpMonitor.priority > NullMonitor.priority


def test_auto_prefers_amqp_when_configured_and_explains_the_others():
    sel = select(provider(amqp={}))
    assert sel.name == "amqp"
    rows = {name: why for name, _prio, why in explain(sel)}
    assert rows["amqp"].startswith("selected (auto")
    assert "lower priority than amqp" in rows["null"]


def test_auto_without_section_falls_back_to_null_with_reason():
    sel = select(provider())
    assert sel.name == "null"
    assert "no events.amqp section" in sel.verdicts["amqp"].reason


def test_none_selects_null_even_with_amqp_section():
    assert select(provider(monitor="none", amqp={})).name == "null"


def test_explicit_monitor_that_cannot_run_is_an_error():
    with pytest.raises(MonitorSelectionError, match="no events.amqp section"):
        select(provider(monitor="amqp"))
    with pytest.raises(MonitorSelectionError, match=r"no such monitor plugin is installed \(installed: null\)"):
        select(provider(monitor="amqp", amqp={}), {"null": NullMonitor})
    with pytest.raises(ValueError, match="'zaqar' is not an installed event monitor"):  # refused when configured
        provider(monitor="zaqar")


def test_invalid_section_is_not_silently_replaced_by_null():
    with pytest.raises(MonitorSelectionError, match=r"events\.amqp\.prefetchh: unknown key"):
        select(provider(amqp={"prefetchh": 10}))


class _Fake(Monitor):
    name = "fake"
    priority = 500

    @classmethod
    def available(cls, provider):  # noqa: ANN001, ANN206
        return Availability(provider.name == "lab", "fake says so")

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def batches(self):  # noqa: ANN201
        return iter(())
    def ack(self, batch: Batch) -> None: ...


def test_third_party_plugin_with_higher_priority_wins():
    monitors = {**load_monitors(), "fake": _Fake}
    assert select(provider(amqp={}), monitors).name == "fake"
    other = ProviderConfig.model_validate({"name": "other", "events": {"amqp": {}}})
    sel = select(other, monitors)
    assert sel.name == "amqp"
    assert "not available: fake says so" in dict((n, w) for n, _p, w in explain(sel, monitors))["fake"]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"urls": ["http://h/"]}, "events.amqp.urls"),
        ({"urls": []}, "events.amqp.urls"),
        ({"queue": "notifications.info"}, "oslo's shared notification queue"),
        ({"queue": "versioned_notifications.error"}, "oslo's shared notification queue"),
        ({"batch_size": 0}, "events.amqp.batch_size"),
        ({"batch_size": 100, "prefetch": 10}, "prefetch (10) must be >= batch_size (100)"),
        ({"queue_type": "stream"}, "events.amqp.queue_type"),
        ({"tls": {"verfy": False}}, "events.amqp.tls.verfy: unknown key"),
    ],
)
def test_bad_sections_name_the_key(section, message):
    with pytest.raises(MonitorConfigError) as err:
        parse_amqp_section(section)
    assert message in str(err.value)


def test_defaults_match_the_issue():
    cfg = parse_amqp_section({})
    assert cfg.exchanges == ["nova", "neutron", "cinder", "openstack", "glance", "heat", "keystone", "ironic"]
    assert cfg.topics == ["notifications", "versioned_notifications"]
    assert cfg.queue_name("lab") == "stackwatch-lab"
    assert cfg.durable_exchanges is False
    assert cfg.effective_prefetch >= 2 * cfg.batch_size


def test_credentials_are_masked():
    assert mask_url("amqp://stack:s3cret@rabbit1:5672/%2F") == "amqp://stack:***@rabbit1:5672/%2F"
    assert "s3cret" not in AmqpMonitor.available(provider(amqp={"urls": ["amqps://u:s3cret@h/"]})).reason
    with pytest.raises(MonitorConfigError) as err:
        parse_amqp_section({"urls": ["http://u:s3cret@h/"]})
    assert "s3cret" not in str(err.value)


def test_the_documented_configuration_loads(tmp_path):
    """docs/amqp.md's example is a working configuration."""
    import re
    from pathlib import Path

    from stackwatch.config.settings import load_settings

    doc = (Path(__file__).resolve().parents[2] / "docs" / "amqp.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", doc, re.S).group(1)
    path = tmp_path / "stackwatch.yaml"
    path.write_text(example)
    settings = load_settings(path)
    prov = settings.provider("lab")
    cfg = parse_amqp_section(prov.events.amqp)
    assert len(cfg.urls) == 2 and cfg.queue_name("lab") == "stackwatch-lab"
    assert cfg.tls.ca_file == "/etc/ssl/certs/rabbit-ca.pem"
    sel = select(prov)
    assert sel.name == "amqp"
    assert "secret" not in sel.verdicts["amqp"].reason
