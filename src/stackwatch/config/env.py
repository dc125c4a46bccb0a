"""Where the configuration comes from: environment variable names and the monitor plugins' entry-point group.

Kept apart from `settings` (pydantic, YAML) so that the CLI can honour `--config` and list the installed
monitors without importing either: `stackwatch --help` must start fast.
"""

from __future__ import annotations

ENV_CONFIG = "STACKWATCH_CONFIG"
ENV_DATABASE_URL = "STACKWATCH_DATABASE_URL"
ENV_DATA_DIR = "STACKWATCH_DATA_DIR"

#: entry-point group of the event monitor plugins (events/monitors/registry.py loads them)
MONITOR_GROUP = "stackwatch.monitors"
#: `events.monitor` values that name no plugin: `auto` chooses one, `none` is the `null` plugin
MONITOR_KEYWORDS = ("auto", "none")


def installed_monitors() -> list[str]:
    """Names of the installed monitor plugins, sorted, read from package metadata without importing them."""
    from importlib.metadata import entry_points  # ~30 ms: only when a monitor is named

    return sorted({ep.name for ep in entry_points(group=MONITOR_GROUP)})
