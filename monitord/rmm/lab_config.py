"""The monitord config for the lab fleet *with* an RMM: its servers and workstations
come from the RMM (the lab's RMM view, served by an emulator), the rest (routers,
switches, printers, UPSes) from the config, as at an MSP whose agents run on PCs
and servers only.

Every RMM client is mapped to its customer and every RMM site to its lab site by
name, so synced devices hang off their site's router; availability is verified
with the lab's TCP banner, because the lab does not simulate ping (the kernel
answers ICMP for every 127.x address).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitord.demo_config import fleet_config, write_devices_csv
from monitord.lab.fleet import Fleet
from monitord.lab.rmm_view import AGENT_ROLES, site_label


def rmm_section(fleet: Fleet, source: dict[str, Any], *, tcp_port: int) -> dict[str, Any]:
    """The `rmm:` section for `fleet` and one RMM `source` (its name, kind and keys)."""
    return {
        "sources": [source],
        "clients": [{"client": c.display_name, "customer": c.name} for c in fleet.customers],
        "sites": [
            {"customer": s.customer, "rmm_site": site_label(s), "site": s.name} for s in fleet.sites
        ],
        "verdicts": {
            "availability": {
                "verify": [
                    {"type": "tcp", "name": "rmm-verify-ssh", "port": tcp_port, "expect": "SSH-2.0"}
                ]
            }
        },
    }


def write_rmm_lab_config(
    fleet: Fleet,
    directory: Path,
    source: dict[str, Any],
    *,
    tcp_port: int,
    http_port: int,
    rmm: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Path:
    """Write `monitord.yaml` and `devices.csv` (devices without an agent only) into
    `directory`; `rmm` overrides keys of the `rmm:` section."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = fleet_config(fleet, directory / "state", tcp_port=tcp_port, http_port=http_port, **kwargs)
    doc["rmm"] = rmm_section(fleet, source, tcp_port=tcp_port) | (rmm or {})
    path = directory / "monitord.yaml"
    path.write_text(
        "# generated for the lab fleet with an RMM\n" + yaml.safe_dump(doc, sort_keys=False),
        encoding="utf-8",
    )
    write_devices_csv(
        directory / "devices.csv", (d for d in fleet.devices if d.role not in AGENT_ROLES)
    )
    return path
