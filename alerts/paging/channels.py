"""Build the configured paging channels (`paging.channels`) from the registry.

Each entry's own keys are validated by its kind's `Config` model, with `env:`/
`file:` secrets resolved first, so a bad entry is a located config error and a
running daemon only ever builds channels that validated.
"""

from __future__ import annotations

import importlib
from typing import Any

import aiohttp
from pydantic import BaseModel

from alerts.channels import REGISTRY
from alerts.channels.base import Channel
from monitord.clock import Clock
from monitord.config.paging import ChannelDef
from monitord.config.types import resolve_secret


class SecretError(ValueError):
    """A secret reference that does not resolve; `key` names the field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def channel_class(kind: str) -> Any:
    module, _, name = REGISTRY[kind].rpartition(".")
    return getattr(importlib.import_module(module), name)


def _secret_fields(model: type[BaseModel]) -> set[str]:
    return {n for n, f in model.model_fields.items() if "SecretStr" in str(f.annotation)}


def channel_settings(channel: ChannelDef) -> BaseModel:
    """The validated settings of one channel entry (raises ValidationError/SecretError)."""
    cls = channel_class(channel.kind)
    raw = dict(channel.params)
    for name in _secret_fields(cls.Config) & raw.keys():
        try:
            raw[name] = resolve_secret(raw[name])
        except ValueError as exc:
            raise SecretError(name, str(exc)) from None
    settings: BaseModel = cls.Config.model_validate(raw)
    return settings


def build_channels(
    defs: tuple[ChannelDef, ...], session: aiohttp.ClientSession, clock: Clock
) -> dict[str, Channel]:
    """Every configured channel by name, over one shared HTTP session."""
    out: dict[str, Channel] = {}
    for channel in defs:
        cls = channel_class(channel.kind)
        out[channel.name] = cls(channel_settings(channel), session=session, clock=clock)
    return out
