"""RMM sources: what an RMM (N-able N-sight, Tactical RMM, …) knows about the fleet.

One module per RMM behind `base.RmmSource`; `REGISTRY` maps a config `kind` to the
class. An adapter only fetches and translates: it returns the RMM's inventory and its
current failures as typed records (`base`), and raises `base.RmmError` for anything
that went wrong. Sync, observations, cross-validation and verdicts are the feed's job,
never the adapter's.
"""

from __future__ import annotations

import importlib
from typing import Any

REGISTRY: dict[str, str] = {
    "nsight": "monitord.sources.rmm.nsight.NsightSource",
    "tactical": "monitord.sources.rmm.tactical.TacticalSource",
}


def load_source_class(kind: str) -> Any:
    """The class registered for `kind` (it has a pydantic `Config`). Raises KeyError."""
    module_name, _, attr = REGISTRY[kind].rpartition(".")
    return getattr(importlib.import_module(module_name), attr)
