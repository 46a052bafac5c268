"""Ticket systems. One module per system behind `alerts.tickets.base`; REGISTRY kind → path."""

from __future__ import annotations

import importlib
from typing import Any

REGISTRY: dict[str, str] = {
    "builtin": "alerts.tickets.builtin.BuiltinTickets",
    "zammad": "alerts.tickets.zammad.ZammadTickets",
    "glpi": "alerts.tickets.glpi.GlpiTickets",
    "webhook": "alerts.tickets.webhook.WebhookTickets",
    "rt": "alerts.tickets.rt.RtTickets",
    "redmine": "alerts.tickets.redmine.RedmineTickets",
}

# Kinds a config's `alerting.ticket_systems` may name (the built-in store is always on).
EXTERNAL = tuple(sorted(k for k in REGISTRY if k != "builtin"))


def load_ticket_class(kind: str) -> Any:
    """The class registered for an external `kind` (it has a pydantic `Config`).

    Raises KeyError for an unknown kind (or "builtin", which is not configurable).
    """
    if kind not in EXTERNAL:
        raise KeyError(kind)
    module_name, _, attr = REGISTRY[kind].rpartition(".")
    return getattr(importlib.import_module(module_name), attr)
