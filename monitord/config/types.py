"""Small value types used by the config models: durations, secrets, names."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, SecretStr

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """`"90s"`, `"5m"`, `"1.5h"`, `"7d"` or a number of seconds → seconds (float)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s' or '5m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration like '30s', '5m' or '2h', got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def resolve_secret(value: Any) -> Any:
    """Resolve `env:NAME` and `file:/path` references; plain strings pass through.

    The error names the variable or file but never the secret itself.
    """
    if not isinstance(value, str):
        return value
    if value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ValueError(f"environment variable {name!r} is not set")
        return os.environ[name]
    if value.startswith("file:"):
        path = Path(value[5:])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {str(path)!r}: {exc.strerror}") from exc
    return value


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret)]
"""A secret referenced as `env:NAME` or `file:/path` (or given inline); repr is masked."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (letters, digits, '.', '_', '-'; no spaces or '/')"
        )
    return value


Name = Annotated[str, AfterValidator(_check_name)]
"""An identifier used in ids and references (`acme`, `rtr-1`)."""
