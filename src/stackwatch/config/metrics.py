"""The per-provider `metrics:` section: where Gnocchi is, how to authenticate, how often to capture, how long
to keep each granularity. Validated here (pydantic), used by stackwatch.metrics; no I/O."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GnocchiConfig(_Strict):
    endpoint: str | None = Field(None, description="Gnocchi's URL; default: the cloud's catalog, service type metric")
    auth: Literal["keystone", "basic"] = Field(
        "keystone", description="keystone: a token of the provider's cloud (keystoneauth1); basic: Gnocchi's "
                                "auth_mode = basic (HTTP basic, user name only)")
    username: str = Field("admin", description="basic auth user (admin sees every project)")
    password: str = Field("", description="basic auth password (Gnocchi's basic mode ignores it)", repr=False)
    verify: bool | str = Field(True, description="TLS verification: true, false or a CA bundle path")
    timeout_seconds: float = Field(60.0, gt=0)
    interface: str = Field("public", description="catalog interface when the endpoint comes from Keystone")

    @model_validator(mode="after")
    def _basic_needs_endpoint(self) -> GnocchiConfig:
        if self.auth == "basic" and not self.endpoint:
            raise ValueError("auth: basic needs endpoint (there is no catalog without Keystone)")
        return self


class MetricsRetention(_Strict):
    five_minute_days: float = Field(7, ge=1, description="5-minute rows kept this long")
    hourly_days: float = Field(90, ge=1)
    daily_days: float = Field(730, ge=1)


class MetricsConfig(_Strict):
    gnocchi: GnocchiConfig = Field(default_factory=GnocchiConfig)
    interval_seconds: float = Field(300.0, ge=1, description="time between capture cycles")
    backfill_hours: float = Field(24.0, gt=0, le=24 * 30, description="history read at a metric's first capture")
    batch_size: int = Field(250, ge=1, le=5000, description="instances per aggregates request")
    retention: MetricsRetention = Field(default_factory=MetricsRetention)
