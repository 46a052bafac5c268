"""The lab: a simulated MSP fleet served on loopback, with fault injection.

Used by `monitord demo`, by tests and by benchmarks:

    fleet = generate_fleet()                       # 40 customers, 100 sites, 1,200 devices
    async with Lab(fleet, control_port=0) as lab:  # TCP banner :8022 + HTTP :8080 per device
        fault = await lab.inject("site", "acme-hq", "down")
        ...
        await lab.heal(fault.id)

or, from another process, `LabClient(lab.control_url)`. Modules: `fleet`
(value types, generator, JSON), `faults` (bookkeeping), `servers` (the
listeners), `shards` (worker processes), `control` (HTTP API), `client`,
`lab` (`Lab`), `main` (the foreground command).

`Lab`, `LabClient` and `main` are imported on first use, so that shard
workers (which import this package) do not pay for aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from monitord.lab.faults import (
    FAULT_KINDS,
    SCOPES,
    Effect,
    Fault,
    FaultEvent,
    FaultKind,
    Scope,
    UnknownFault,
    UnknownTarget,
)
from monitord.lab.fleet import (
    CRITICALITIES,
    ROLES,
    Criticality,
    Fleet,
    LabCustomer,
    LabDevice,
    LabSite,
    Role,
    generate_fleet,
)
from monitord.lab.servers import BANNER, LabError

if TYPE_CHECKING:
    from monitord.lab.client import LabClient, LabClientError
    from monitord.lab.lab import Lab, default_shards
    from monitord.lab.main import main

_LAZY = {
    "Lab": "monitord.lab.lab",
    "default_shards": "monitord.lab.lab",
    "LabClient": "monitord.lab.client",
    "LabClientError": "monitord.lab.client",
    "main": "monitord.lab.main",
}

__all__ = [
    "BANNER",
    "CRITICALITIES",
    "FAULT_KINDS",
    "ROLES",
    "SCOPES",
    "Criticality",
    "Effect",
    "Fault",
    "FaultEvent",
    "FaultKind",
    "Fleet",
    "Lab",
    "LabClient",
    "LabClientError",
    "LabCustomer",
    "LabDevice",
    "LabError",
    "LabSite",
    "Role",
    "Scope",
    "UnknownFault",
    "UnknownTarget",
    "default_shards",
    "generate_fleet",
    "main",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
