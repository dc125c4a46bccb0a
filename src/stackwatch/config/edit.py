"""Editing the configuration file from the CLI (`stackwatch provider add|remove`), keeping its comments.

ruamel.yaml round-trips the operator's file (comments, order, quoting) where PyYAML would rewrite it. Every
edit is validated through the same pydantic Settings before anything is written, the file is replaced
atomically, and it is created 0600 because provider sections may hold broker URLs with passwords.
"""

from __future__ import annotations

import os
import tempfile
from io import StringIO
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from stackwatch.config.env import ENV_CONFIG
from stackwatch.config.settings import (
    ConfigError,
    ProviderConfig,
    Settings,
    _format_validation_error,
    default_config_path,
)


def round_trip_yaml() -> YAML:
    """ruamel.yaml set up to rewrite an operator's file as they wrote it (the configuration, the rules file)."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


_yaml = round_trip_yaml


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (a reader sees the old file or the new one, never half), mode
    0600: configuration and rules may name broker URLs or webhook URLs that are secrets themselves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".stackwatch-", suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The file to edit: `explicit`, $STACKWATCH_CONFIG (what `--config` sets), else the default path."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    return default_config_path()


def _load(path: Path) -> Any:
    if not path.exists():
        return _yaml().load("providers: []\n")
    try:
        doc = _yaml().load(path.read_text(encoding="utf-8"))
    except YAMLError as exc:
        raise ConfigError(f"configuration {path} is not valid YAML: {exc}") from exc
    if doc is None:
        doc = _yaml().load("providers: []\n")
    if not hasattr(doc, "get"):
        raise ConfigError(f"configuration {path} must be a mapping at the top level")
    if doc.get("providers") is None:
        doc["providers"] = []
    return doc


def _validate_and_write(path: Path, doc: Any) -> Settings:
    buffer = StringIO()
    _yaml().dump(doc, buffer)
    text = buffer.getvalue()
    import yaml as pyyaml

    try:
        settings = Settings.model_validate(pyyaml.safe_load(text) or {})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(str(path), exc)) from None
    write_private(path, text)
    return settings


def add_provider(path: Path, provider: dict[str, Any], replace: bool = False) -> ProviderConfig:
    doc = _load(path)
    providers = doc["providers"]
    existing = [i for i, p in enumerate(providers) if hasattr(p, "get") and p.get("name") == provider["name"]]
    if existing and not replace:
        raise ConfigError(f"provider {provider['name']!r} already exists in {path} (use --replace)")
    if existing:
        providers[existing[0]] = provider
    else:
        providers.append(provider)
    return _validate_and_write(path, doc).provider(provider["name"])


def remove_provider(path: Path, name: str) -> None:
    doc = _load(path)
    providers = doc["providers"]
    keep = [p for p in providers if not (hasattr(p, "get") and p.get("name") == name)]
    if len(keep) == len(providers):
        raise ConfigError(f"no provider {name!r} in {path}")
    providers[:] = keep
    _validate_and_write(path, doc)
