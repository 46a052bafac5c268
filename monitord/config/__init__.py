"""Configuration: YAML (and CSV inventory) → frozen, validated objects.

`load_config(path)` is the one entry point: it returns a `LoadedConfig` or
raises `ConfigErrors` listing every problem with its file, line and key path.
"""

from monitord.config.load import ConfigErrors, LoadedConfig, load_config

__all__ = ["ConfigErrors", "LoadedConfig", "load_config"]
