"""`load_config`: the one way a config file becomes a validated `LoadedConfig`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from monitord.config.model import Config
from monitord.config.validate import _message, resolve
from monitord.config.yamlsource import SourceError, Sources, format_path, read_sources
from monitord.inventory import Inventory


@dataclass(frozen=True)
class ConfigError:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigErrors(Exception):
    """Every problem found in a config, each located; str() is one per line."""

    def __init__(self, errors: list[ConfigError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    inventory: Inventory
    digest: str  # sha256 of every file read, for the config-hash metric
    files: tuple[Path, ...]


def load_config(path: Path | str) -> LoadedConfig:
    """Read, validate and resolve the config at `path`.

    Raises ConfigErrors (all problems, located) and never returns a partial
    config: a daemon keeps its old config when a reload raises.
    """
    path = Path(path)
    try:
        data, sources = read_sources(path)
    except SourceError as exc:
        raise ConfigErrors([ConfigError(exc.file, exc.line, "", exc.message)]) from exc
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(
            [_locate(sources, tuple(e["loc"]), _message(e)) for e in exc.errors()]
        ) from exc
    inventory, problems = resolve(config)
    if problems:
        raise ConfigErrors([_locate(sources, p.path, p.message) for p in problems])
    digest = hashlib.sha256()
    for file in sources.files:
        digest.update(file.read_bytes())
    return LoadedConfig(config, inventory, digest.hexdigest()[:16], tuple(sources.files))


def _locate(sources: Sources, path: tuple[str | int, ...], message: str) -> ConfigError:
    file, line = sources.locate(path)
    return ConfigError(file, line, format_path(path), message)


def config_from_dict(data: dict[str, object]) -> LoadedConfig:
    """Build a config from plain data (tests, `monitord demo`); same rules, no file."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigErrors(
            [
                ConfigError("<dict>", 0, format_path(tuple(e["loc"])), _message(e))
                for e in exc.errors()
            ]
        ) from exc
    inventory, problems = resolve(config)
    if problems:
        raise ConfigErrors(
            [ConfigError("<dict>", 0, format_path(p.path), p.message) for p in problems]
        )
    return LoadedConfig(config, inventory, "dict", ())
