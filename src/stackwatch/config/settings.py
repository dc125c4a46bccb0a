"""Settings: one YAML file, validated with pydantic, with environment overrides.

Errors name the bad key (`providers.0.events.monitor: ...`) so an operator can fix the file without reading
code. Monitor sections (`amqp`, `panko`, `http`) stay raw here: each monitor plugin validates its own section
with its own schema, so this layer never imports a plugin; `events.monitor` is checked against the names of
the installed plugins (package metadata only), so a typo or a plugin that is not installed is refused here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml

# stackwatch uses no pydantic plugins; looking for them scans every installed distribution's entry points
# (~40 ms of each short command's start-up). An operator who does use one sets the variable (to "" say).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator  # noqa: E402

from stackwatch.config.env import (  # noqa: E402
    ENV_CONFIG,
    ENV_DATA_DIR,
    ENV_DATABASE_URL,
    MONITOR_KEYWORDS,
    installed_monitors,
)
from stackwatch.config.metrics import MetricsConfig  # noqa: E402


class ConfigError(Exception):
    """The configuration cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FilterConfig(_Strict):
    allow: list[str] = Field(default_factory=list, description="regexes; when set, only matching types pass")
    deny: list[str] = Field(default_factory=list, description="regexes of event types dropped before storing")

    @field_validator("allow", "deny")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"bad regex {pattern!r}: {exc}") from exc
        return patterns


class FloodConfig(_Strict):
    window_seconds: float = Field(10.0, ge=0, description="0 turns flood control off")
    threshold: int = Field(50, ge=1, description="identical (event_type, ref) stored per window before collapsing")


def check_monitor_name(value: str) -> str:
    """`auto`, `none` or the name of an installed monitor plugin (lower case); anything else is refused
    with the list of what is installed, because a provider whose monitor cannot load catches nothing."""
    name = value.strip().lower()
    if name in MONITOR_KEYWORDS:
        return name
    installed = installed_monitors()
    if name not in installed:
        raise ValueError(
            f"{value!r} is not an installed event monitor (installed: {', '.join(installed) or 'none'}; "
            f"or {' / '.join(MONITOR_KEYWORDS)})"
        )
    return name


class EventsConfig(_Strict):
    monitor: str = Field("auto", description="auto, none or an installed monitor plugin (entry points "
                                              "stackwatch.monitors)")
    filter: FilterConfig = Field(default_factory=FilterConfig)
    max_event_bytes: int = Field(1024 * 1024, ge=1024)
    batch_size: int = Field(1000, ge=1, le=100_000)
    flood: FloodConfig = Field(default_factory=FloodConfig)
    retention_days: float | None = Field(None, gt=0, description="purge events older than this; None keeps all")
    amqp: dict[str, Any] | None = None
    panko: dict[str, Any] | None = None
    http: dict[str, Any] | None = None
    ceilometer_http: dict[str, Any] | None = None
    skip_history: bool = Field(False, description="polling monitors (panko, http): the first start reads from "
                                                  "now on instead of the whole history")

    @field_validator("monitor")
    @classmethod
    def _installed(cls, value: str) -> str:
        return check_monitor_name(value)


class ProviderConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    type: Literal["openstack"] = "openstack"
    cloud: str | None = None
    events: EventsConfig = Field(default_factory=EventsConfig)
    metrics: MetricsConfig | None = Field(None, description="capture metrics from Gnocchi (docs/metrics.md)")

    @model_validator(mode="after")
    def _metrics_need_a_way_in(self) -> ProviderConfig:
        gnocchi = self.metrics.gnocchi if self.metrics else None
        if gnocchi is not None and gnocchi.auth == "keystone" and not self.cloud:
            raise ValueError("metrics.gnocchi.auth keystone needs the provider's cloud (or auth: basic + endpoint)")
        return self


class KeystoneAuthConfig(_Strict):
    """Validate `X-Auth-Token` against a cloud's Keystone; the clouds.yaml entry's credentials are the service user."""

    cloud: str = Field(description="clouds.yaml entry whose Keystone validates callers' tokens")
    cache_seconds: float = Field(60.0, ge=0, le=3600, description="how long a validation is reused (0: never)")


class ApiAuthConfig(_Strict):
    """`api.auth`: who may call the API. Absent: the API is open (loopback only, unless `serve --insecure`)."""

    keystone: KeystoneAuthConfig | None = None
    tokens: bool = Field(False, description="accept local API tokens (`stackwatch token create`) as Bearer tokens")


class ApiConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8470, ge=1, le=65535)
    auth: ApiAuthConfig | None = None
    keep_alive_seconds: int = Field(
        300, ge=1, le=86_400,
        description="idle keep-alive connections are closed after this; long, because a client that reuses a "
                    "connection as the server closes it gets a reset (Ceilometer's http publisher then loses the "
                    "event unless ack_on_event_error is False)",
    )


class HandlersConfig(_Strict):
    """The handler stage: handlers read the stored event stream (switchboard/stage.py)."""

    poll_seconds: float = Field(0.2, gt=0, le=60, description="how often an idle stream is read again")
    batch_size: int = Field(500, ge=1, le=100_000, description="events handed to a handler at once")
    full_refresh_seconds: float = Field(
        3600.0, ge=0, description="full inventory refresh period per provider; 0: only when handling starts"
    )
    lease_seconds: float = Field(30.0, ge=5, description="how long a crashed process keeps its partitions")
    retry_max_seconds: float = Field(
        15.0, ge=1, description="longest back-off between retries of a failed batch"
    )


class AutomationConfig(_Strict):
    """Automation rules' actions (switchboard/rules, docs/rules.md): how the dispatcher sends them."""

    workers: int = Field(32, ge=1, le=256, description="actions carried out at once (threads)")
    per_rule: int = Field(16, ge=1, le=256, description="actions of one rule in flight at once (fairness)")
    max_fleeces: int = Field(2, ge=1, le=64, description="fleece actions at once; more wait in the outbox")
    poll_seconds: float = Field(0.5, gt=0, le=60, description="how often retries that came due are looked for")
    reload_seconds: float = Field(1.0, gt=0, le=3600, description="how often the rules file is checked for changes")
class PushConfig(_Strict):
    """Push subscriptions (docs/push.md)."""

    project_queues: bool = Field(False, description="post every event to the Zaqar queue `stackwatch-events` of "
                                                    "its own project (no subscription needed)")
    allow_private_destinations: bool = Field(
        False, description="let subscriptions a project's user creates through the API deliver to loopback and "
                           "private addresses (admins always may)")
    reload_seconds: float = Field(2.0, gt=0, le=300, description="how often the push handler re-reads subscriptions")
    workers: int = Field(32, ge=1, le=256, description="deliveries sent at once")
    per_subscription: int = Field(4, ge=1, le=64, description="deliveries of one subscription in flight at once, "
                                                               "so a dead subscriber cannot take every worker")
    timeout_seconds: float = Field(10.0, gt=0, le=120, description="a destination's answer is awaited this long")


class Settings(_Strict):
    data_dir: Path = Field(default_factory=lambda: default_data_dir())
    database: str | None = None
    routes: Path | None = Field(None, description="YAML routing table merged over the shipped one")
    store_writer: Literal["auto", "thread", "process"] = Field(
        "auto",
        description="process: database writes run in a child process beside the converting one (a second core); "
        "auto: process for `serve` and `worker catcher` on machines with more than one CPU",
    )
    api: ApiConfig = Field(default_factory=ApiConfig)
    handlers: HandlersConfig = Field(default_factory=HandlersConfig)
    push: PushConfig = Field(default_factory=PushConfig)
    providers: list[ProviderConfig] = Field(default_factory=list)
    rules: Path | None = Field(None, description="automation rules file (docs/rules.md); default <data_dir>/rules.yaml")
    automation: AutomationConfig = Field(default_factory=AutomationConfig)

    @field_validator("providers")
    @classmethod
    def _unique_names(cls, providers: list[ProviderConfig]) -> list[ProviderConfig]:
        names = [p.name for p in providers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"provider names must be unique, repeated: {', '.join(dupes)}")
        return providers

    @property
    def database_url(self) -> str:
        if self.database:
            return self.database
        return f"sqlite:///{self.data_dir / 'stackwatch.db'}"

    def provider(self, name: str) -> ProviderConfig:
        for provider in self.providers:
            if provider.name == name:
                return provider
        known = ", ".join(p.name for p in self.providers) or "none configured"
        raise ConfigError(f"unknown provider {name!r} (known: {known})")

    def provider_or_default(self, name: str) -> ProviderConfig:
        """The configured provider, or a plain one for ad-hoc ingest of files."""
        for provider in self.providers:
            if provider.name == name:
                return provider
        return ProviderConfig(name=name)


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "stackwatch" / "stackwatch.yaml"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stackwatch"


def _format_validation_error(source: str, exc: ValidationError) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load `path`, $STACKWATCH_CONFIG, or ~/.config/stackwatch/stackwatch.yaml when it exists; else defaults.

    $STACKWATCH_DATABASE_URL and $STACKWATCH_DATA_DIR win over the file.
    """
    path = path or os.environ.get(ENV_CONFIG)
    if not path and default_config_path().is_file():
        path = default_config_path()
    raw: dict[str, Any] = {}
    source = "defaults"
    if path:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc.strerror or exc}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration {path} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"configuration {path} must be a mapping at the top level")
        raw = loaded
    if path and isinstance(raw.get("rules"), str) and not Path(raw["rules"]).expanduser().is_absolute():
        raw["rules"] = str(Path(path).parent / raw["rules"])  # relative to the configuration's folder
    if os.environ.get(ENV_DATA_DIR):
        raw["data_dir"] = os.environ[ENV_DATA_DIR]
    if os.environ.get(ENV_DATABASE_URL):
        raw["database"] = os.environ[ENV_DATABASE_URL]
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None
