"""The control API over HTTP: validation (exact status and message), client round trips."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from monitord.lab import Fleet, Lab, LabClient, LabClientError
from monitord.lab.control import RequestError, parse_fault_request
from tests.lab.probes import Ports, http_get, refused


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def client(lab: Lab) -> AsyncIterator[LabClient]:
    async with LabClient(lab.control_url) as c:
        yield c


KINDS = "'down', 'service_down', 'http_error', 'slow'"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 400, "malformed json: Expecting value: line 1 column 1 (char 0)"),
        (b"{'scope': 1}", 400, "malformed json: Expecting property name enclosed in double quotes"),
        (b"[1, 2]", 400, "request body must be a json object, got array"),
        (b'"down"', 400, "request body must be a json object, got string"),
        (b'{"scope": "site"}', 400, "missing field(s): 'name', 'fault'"),
        (
            b'{"scope": "site", "name": "acme-hq", "fault": "down", "force": 1}',
            400,
            "unknown field(s): 'force'",
        ),
        (
            b'{"scope": "site", "name": 7, "fault": "down"}',
            400,
            "field 'name' must be a string, got number",
        ),
        (
            b'{"scope": "rack", "name": "acme-hq", "fault": "down"}',
            400,
            "invalid scope 'rack': expected one of 'device', 'site', 'customer'",
        ),
        (
            b'{"scope": "site", "name": "acme-hq", "fault": "explode"}',
            400,
            f"invalid fault 'explode': expected one of {KINDS}",
        ),
        (
            b'{"scope": "site", "name": "acme-hq", "fault": "slow", "delay_ms": -5}',
            400,
            "delay_ms must be between 1 and 600000, got -5",
        ),
        (
            b'{"scope": "device", "name": "acme-hq-ws-99", "fault": "down"}',
            404,
            "unknown device 'acme-hq-ws-99'",
        ),
        (b'{"scope": "site", "name": "atlantis", "fault": "down"}', 404, "unknown site 'atlantis'"),
        (
            b'{"scope": "customer", "name": "nobody", "fault": "down"}',
            404,
            "unknown customer 'nobody'",
        ),
    ],
)
async def test_inject_validation(
    lab: Lab, session: aiohttp.ClientSession, body: bytes, status: int, message: str
) -> None:
    async with session.post(f"{lab.control_url}/api/faults", data=body) as resp:
        assert resp.status == status
        assert resp.content_type == "application/json"
        error = (await resp.json())["error"]
    assert error == message or (message.startswith("malformed json") and error.startswith(message))
    assert lab.faults() == () and lab.events() == ()


async def test_unknown_fault_id(lab: Lab, session: aiohttp.ClientSession) -> None:
    async with session.delete(f"{lab.control_url}/api/faults/f-42") as resp:
        assert resp.status == 404
        assert await resp.json() == {"error": "unknown fault id 'f-42'"}


async def test_bad_events_cursor(lab: Lab, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{lab.control_url}/api/events?since=yesterday") as resp:
        assert resp.status == 400
        assert await resp.json() == {
            "error": "since must be a non-negative integer, got 'yesterday'"
        }


async def test_inject_answers_201_with_id(lab: Lab, session: aiohttp.ClientSession) -> None:
    body = {"scope": "site", "name": "acme-hq", "fault": "slow", "delay_ms": 50}
    async with session.post(f"{lab.control_url}/api/faults", json=body) as resp:
        assert resp.status == 201
        reply: dict[str, Any] = await resp.json()
        assert resp.headers["Location"] == f"/api/faults/{reply['id']}"
    assert reply["id"] == "f-1"
    assert reply["fault"]["fault"] == "slow" and reply["fault"]["delay_ms"] == 50


async def test_client_round_trip(
    lab: Lab, client: LabClient, small_fleet: Fleet, ports: Ports
) -> None:
    assert await client.fleet() == small_fleet
    site = small_fleet.sites[0]
    fault_id = await client.inject("site", site.name, "down")
    assert await refused(site.gateway.address, ports.http)
    (active,) = await client.faults()
    assert (active.id, active.scope, active.name, active.kind) == (
        fault_id,
        "site",
        site.name,
        "down",
    )
    assert active.devices == tuple(d.name for d in site.devices)

    healed = await client.heal(fault_id)
    assert healed.id == fault_id
    assert (await http_get(site.gateway.address, ports.http)).status == 200

    other = await client.inject("device", site.gateway.name, "http_error")
    assert await client.heal_all() == [other]
    assert await client.faults() == []
    events = await client.events()
    assert [(e.seq, e.action, e.fault.id) for e in events] == [
        (1, "inject", fault_id),
        (2, "heal", fault_id),
        (3, "inject", other),
        (4, "heal", other),
    ]
    assert [e.seq for e in await client.events(since=3)] == [4]
    assert all(e.at.tzinfo is not None for e in events)
    status = await client.status()
    assert status["faults"] == 0 and status["stats"]["devices"] == len(small_fleet.devices)


async def test_client_raises_with_status_and_message(client: LabClient) -> None:
    with pytest.raises(LabClientError) as info:
        await client.inject("site", "atlantis", "down")
    assert (info.value.status, info.value.message) == (404, "unknown site 'atlantis'")
    with pytest.raises(LabClientError) as info:
        await client.heal("f-7")
    assert info.value.status == 404


def test_parse_fault_request_passes_values_through() -> None:
    assert parse_fault_request(b'{"scope": "a", "name": "b", "fault": "c"}') == (
        "a",
        "b",
        "c",
        None,
    )
    with pytest.raises(RequestError) as info:
        parse_fault_request(b"null")
    assert (info.value.status, info.value.message) == (
        400,
        "request body must be a json object, got null",
    )
