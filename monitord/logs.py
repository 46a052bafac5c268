"""Logging set-up: one line per record, context from `extra` as key=value."""

from __future__ import annotations

import logging
import sys

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        extras = [
            f"{k}={v!r}" if isinstance(v, str) and " " in v else f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD
        ]
        return f"{base} {' '.join(extras)}" if extras else base


def setup(level: str = "info", *, timestamps: bool = True) -> None:
    """Configure the root logger. Under systemd, journald adds its own timestamps."""
    fmt = (
        "%(asctime)s %(levelname)s %(name)s: %(message)s"
        if timestamps
        else "%(levelname)s %(name)s: %(message)s"
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "aiohttp.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
