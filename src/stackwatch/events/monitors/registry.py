"""Monitor plugins by name, loaded from the `stackwatch.monitors` entry-point group.

`select(provider)` applies the provider's `events.monitor` setting: an explicit name picks that plugin
(and fails if it cannot serve the provider), `none` picks `null`, `auto` picks the available plugin with
the highest priority. Every candidate's verdict is kept so `stackwatch provider check` can say why the
others were not chosen. When `auto` finds no monitor that catches events (only `null` is available), the
selection carries a warning saying why each other one is unavailable; `select` logs it at WARNING and
`provider check` prints it, because a provider that silently catches nothing looks healthy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from stackwatch.config.env import MONITOR_GROUP
from stackwatch.events.monitors.base import Availability, Monitor

if TYPE_CHECKING:  # pragma: no cover
    from stackwatch.config.settings import ProviderConfig

log = logging.getLogger(__name__)

GROUP = MONITOR_GROUP
#: `events.monitor` values that are not plugin names.
ALIASES = {"none": "null"}
#: the plugin `none` selects: it catches nothing, so `auto` landing on it is worth a warning
NULL = "null"


class MonitorSelectionError(RuntimeError):
    """No monitor can serve a provider as configured."""


@dataclass(frozen=True)
class Selection:
    """The chosen monitor class and every candidate's verdict (name -> Availability)."""

    provider: str
    requested: str
    monitor: type[Monitor]
    verdicts: dict[str, Availability] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.monitor.name

    @property
    def warning(self) -> str | None:
        """Why `auto` chose a monitor that catches no events, or None when it did not."""
        if self.requested != "auto" or self.name != NULL:
            return None
        others = {n: v.reason for n, v in self.verdicts.items() if n != NULL}
        why = "; ".join(f"{n}: {r}" for n, r in sorted(others.items())) or "no other monitor plugin is installed"
        return (f"provider {self.provider!r}: events.monitor auto found no available event monitor, so no events "
                f"are caught ({why})")


def load_monitors() -> dict[str, type[Monitor]]:
    """Every installed monitor plugin, by entry-point name. A plugin that fails to import is logged
    and skipped, so one broken third-party package cannot stop the others."""
    found: dict[str, type[Monitor]] = {}
    for ep in entry_points(group=GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
            log.error("monitor plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
            continue
        if not (isinstance(cls, type) and issubclass(cls, Monitor)):
            log.error("monitor plugin %r (%s) is not a Monitor subclass; skipped", ep.name, ep.value)
            continue
        found[ep.name] = cls
    return found


def _check(cls: type[Monitor], provider: ProviderConfig) -> Availability:
    try:
        return cls.available(provider)
    except Exception as exc:  # noqa: BLE001 - report, do not crash selection
        return Availability(False, f"availability check failed: {exc}")


def select(provider: ProviderConfig, monitors: dict[str, type[Monitor]] | None = None) -> Selection:
    """Choose the monitor for `provider` (see the module docstring)."""
    monitors = load_monitors() if monitors is None else monitors
    events = getattr(provider, "events", None)
    requested = (getattr(events, "monitor", None) or "auto").strip().lower()
    name = ALIASES.get(requested, requested)
    verdicts = {n: _check(cls, provider) for n, cls in sorted(monitors.items())}

    if name != "auto":
        if name not in monitors:
            known = ", ".join(sorted(monitors)) or "none installed"
            raise MonitorSelectionError(
                f"provider {provider.name!r}: events.monitor is {requested!r} but no such monitor plugin "
                f"is installed (installed: {known})"
            )
        verdict = verdicts[name]
        if not verdict.ok:
            raise MonitorSelectionError(
                f"provider {provider.name!r}: events.monitor {requested!r} cannot run: {verdict.reason}"
            )
        return Selection(provider.name, requested, monitors[name], verdicts)

    broken = {n: v.reason for n, v in verdicts.items() if v.misconfigured}
    if broken:
        detail = "; ".join(f"{n}: {r}" for n, r in sorted(broken.items()))
        raise MonitorSelectionError(f"provider {provider.name!r}: fix the monitor configuration ({detail})")
    candidates = [
        (cls.priority, n) for n, cls in monitors.items() if verdicts[n].ok
    ]
    if not candidates:
        detail = "; ".join(f"{n}: {v.reason}" for n, v in sorted(verdicts.items())) or "no monitor plugin installed"
        raise MonitorSelectionError(f"provider {provider.name!r}: no monitor is available ({detail})")
    # Highest priority wins; ties break on the name so the choice is stable.
    _, best = max(candidates, key=lambda c: (c[0], c[1]))
    selection = Selection(provider.name, requested, monitors[best], verdicts)
    if selection.warning:
        log.warning(selection.warning, extra={"provider": provider.name})
    return selection


def explain(selection: Selection, monitors: dict[str, type[Monitor]] | None = None) -> list[tuple[str, int, str]]:
    """(name, priority, sentence) per candidate, highest priority first, for humans."""
    monitors = load_monitors() if monitors is None else monitors
    rows = []
    for n, verdict in selection.verdicts.items():
        prio = monitors[n].priority if n in monitors else 0
        if n == selection.name:
            how = "auto: highest priority available" if selection.requested == "auto" else "configured"
            why = f"selected ({how}): {verdict.reason}"
        elif not verdict.ok:
            why = f"not available: {verdict.reason}"
        elif selection.requested == "auto":
            why = f"available but lower priority than {selection.name}: {verdict.reason}"
        else:
            why = f"not chosen (events.monitor is {selection.requested!r}): {verdict.reason}"
        rows.append((n, prio, why))
    rows.sort(key=lambda r: (-r[1], r[0]))
    return rows
