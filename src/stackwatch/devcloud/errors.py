"""Errors an operator can act on: each names the step or service that failed and where its log is."""

from __future__ import annotations


class DevcloudError(Exception):
    """Base of devcloud errors."""


class InstallError(DevcloudError):
    """pip / venv / uWSGI build failed."""


class PrerequisiteError(DevcloudError):
    """A system package (rabbitmq-server, postgresql, gcc) or a free port is missing."""


class ServiceError(DevcloudError):
    """A service did not start or did not answer in time."""

    def __init__(self, service: str, reason: str, log: str | None = None) -> None:
        self.service = service
        self.log = log
        super().__init__(f"{service}: {reason}" + (f" (log: {log})" if log else ""))
