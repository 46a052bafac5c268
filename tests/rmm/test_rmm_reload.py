"""A reload changes RMM sources live: a rotated API key is used by the next call, an
added source is synced and polled, a removed one stops, an unchanged one is left
alone. Real N-sight adapter, N-sight emulators on loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest

from monitord.app import App
from monitord.config import load_config
from monitord.lab.rmm_nsight import NsightEmulator
from monitord.lab.rmm_nsight_model import NsightAccount
from monitord.sources.rmm.base import Category
from tests.conftest import fast_timing
from tests.rmm.fakes import check, device, inventory

OLD_KEY, NEW_KEY = "old-key-0123456789abcdef01234567", "new-key-0123456789abcdef01234567"


def account(rmm_id: str, name: str, address: str) -> NsightAccount:
    records = inventory(
        [device(rmm_id, name, address, client="410002", site="520021")],
        clients=(("410002", "Northfield Logistics Ltd"),),
        sites=(("520021", "410002", "Head Office"),),
    )
    av = check(rmm_id, f"7{rmm_id[-4:]}", Category.ANTIVIRUS, "Antivirus Update Check - MAV")
    return NsightAccount.from_records(records, [av])


def source(name: str, emulator: NsightEmulator, key_file: Path) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "nsight",
        "server": emulator.url,
        "api_key": f"file:{key_file}",
        "max_calls_per_minute": 0,
    }


def write(path: Path, tmp_path: Path, sources: list[dict[str, Any]]) -> None:
    doc = {
        **fast_timing(tmp_path),
        "customers": [{"name": "northfield", "sites": [{"name": "hq"}]}],
        "rmm": {
            "sources": sources,
            "clients": [{"client": "Northfield Logistics Ltd", "customer": "northfield"}],
            "sites": [{"customer": "northfield", "rmm_site": "Head Office", "site": "hq"}],
        },
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")


def jobs(app: App) -> set[str]:
    assert app.jobs is not None
    return {j.id for j in app.jobs.get_jobs() if j.id.startswith(("rmm-sync-", "rmm-poll-"))}


async def test_a_reload_changes_rmm_sources_live(tmp_path: Path) -> None:
    key_file, path = tmp_path / "nsight.key", tmp_path / "monitord.yaml"
    key_file.write_text(OLD_KEY)
    first = NsightEmulator(account("30200101", "NFL-DC01", "127.46.1.1"), api_key=OLD_KEY)
    second = NsightEmulator(account("30200201", "NFL-DC02", "127.46.1.2"), api_key=OLD_KEY)
    async with first, second:
        write(path, tmp_path, [source("nsight", first, key_file)])
        app = App(load_config(path), config_path=path)
        await app.start()
        try:
            assert jobs(app) == {"rmm-sync-nsight", "rmm-poll-nsight"}
            assert await app.rmm.poll("nsight")
            unchanged = app.rmm.runners["nsight"]
            await app.reload()
            assert app.rmm.runners["nsight"] is unchanged  # nothing changed: not rebuilt

            # the key is rotated at the RMM and in the file the config references
            first.api_key = NEW_KEY
            key_file.write_text(NEW_KEY)
            await app.reload()
            assert app.rmm.runners["nsight"] is not unchanged
            before = len(first.calls)
            assert await app.rmm.poll("nsight")
            assert {c.apikey for c in first.calls[before:]} == {NEW_KEY}

            # a second account is added
            second_key = tmp_path / "second.key"
            second_key.write_text(OLD_KEY)
            both = [source("nsight", first, key_file), source("second", second, second_key)]
            write(path, tmp_path, both)
            await app.reload()
            assert jobs(app) == {
                "rmm-sync-nsight",
                "rmm-poll-nsight",
                "rmm-sync-second",
                "rmm-poll-second",
            }
            assert await app.rmm.sync("second") == {"added": 1}
            assert "northfield/NFL-DC02" in app.inventory.devices
            assert await app.rmm.poll("second")
            assert 'monitord_rmm_feed_up{source="second"} 1.0' in metrics(app)
            assert feed_up(app) == {"nsight", "second"}

            # the first is removed: no jobs, no gauges, its devices leave the running
            # inventory (as disabling a source does; their rows and history stay)
            write(path, tmp_path, [source("second", second, second_key)])
            await app.reload()
            await asyncio.sleep(0.5)  # a pass that had started before may end
            calls = len(first.calls)
            assert jobs(app) == {"rmm-sync-second", "rmm-poll-second"}
            assert set(app.rmm.runners) == {"second"}
            assert feed_up(app) == {"second"}
            assert "northfield/NFL-DC01" not in app.inventory.devices
            assert "northfield/NFL-DC02" in app.inventory.devices
            assert await app.rmm.poll("second")
            await asyncio.sleep(1.0)
            assert len(first.calls) == calls
        finally:
            await app.stop()


def metrics(app: App) -> str:
    return generate_latest(app.registry).decode()


def feed_up(app: App) -> set[str]:
    """The sources monitord_rmm_feed_up has a series for."""
    return {
        line.split('source="', 1)[1].split('"', 1)[0]
        for line in metrics(app).splitlines()
        if line.startswith("monitord_rmm_feed_up{")
    }
