"""TcpCheck against real loopback listeners."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from time import perf_counter

import pytest
from pydantic import ValidationError

from checks.base import describe_os_error
from checks.tcp import TcpCheck, TcpParams
from monitord.model import Perf, Status, Target
from tests.checks.loopback import (
    LOOPBACK,
    banner,
    blackhole_port,
    hanging_server,
    refused_port,
    tcp_server,
)
from tests.conftest import LATE

TARGET = Target("dev-1", LOOPBACK)


async def run(timeout: float = 5.0, **params: object) -> tuple[Status, str, tuple[Perf, ...]]:
    check = TcpCheck()
    await check.start()
    try:
        result = await check.run(TARGET, TcpParams.model_validate(params), timeout)
    finally:
        await check.close()
    return result.status, result.message, result.perfdata


async def test_open_port_is_ok_with_check_tcp_message_and_time_perfdata() -> None:
    async with tcp_server(banner(b"")) as port:
        status, message, perf = await run(port=port)
    assert status is Status.OK
    assert re.fullmatch(
        rf"TCP OK - \d+\.\d{{3}} second response time on {LOOPBACK} port {port}", message
    )
    (time,) = perf
    assert (time.label, time.uom, time.min, time.max) == ("time", "s", 0.0, 5.0)
    assert 0 < time.value < 1


async def test_refused_port_is_critical_and_says_refused() -> None:
    with refused_port() as port:
        status, message, _ = await run(port=port)
    assert status is Status.CRITICAL
    assert message == f"TCP CRITICAL - connection refused on {LOOPBACK} port {port}"


async def test_connect_that_never_completes_times_out_within_the_timeout() -> None:
    with blackhole_port() as port:
        start = perf_counter()
        status, message, _ = await run(timeout=0.3, port=port)
        took = perf_counter() - start
    assert status is Status.CRITICAL
    assert (
        message == f"TCP CRITICAL - timeout after 0.3 seconds connecting on {LOOPBACK} port {port}"
    )
    assert 0.3 <= took < 0.3 + LATE


async def test_expected_banner_is_ok() -> None:
    async with tcp_server(banner(b"SSH-2.0-OpenSSH_9.6\r\n")) as port:
        status, message, _ = await run(port=port, expect="SSH-2.0")
    assert status is Status.OK, message


async def test_banner_split_across_segments_is_still_matched() -> None:
    async def slow_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"0-OpenSSH\r\n")
        await writer.drain()
        await reader.read()

    async with tcp_server(slow_banner) as port:
        status, message, _ = await run(port=port, expect="SSH-2.0")
    assert status is Status.OK, message


async def test_wrong_banner_is_critical_at_once_and_quotes_what_came() -> None:
    async with tcp_server(banner(b"220 mail.example ESMTP\r\n")) as port:
        start = perf_counter()
        status, message, perf = await run(timeout=5.0, port=port, expect="SSH-")
        took = perf_counter() - start
    assert status is Status.CRITICAL
    assert message == (
        f"TCP CRITICAL - unexpected response on {LOOPBACK} port {port}: '220 mail.example ESMTP'"
    )
    assert took < 5.0 - LATE, "a complete wrong line must be judged without waiting for the timeout"
    assert perf[0].label == "time"


async def test_server_that_sends_nothing_times_out_waiting_for_the_banner() -> None:
    async with hanging_server() as port:
        status, message, _ = await run(timeout=0.3, port=port, expect="SSH-")
    assert status is Status.CRITICAL
    assert message == (
        f"TCP CRITICAL - timeout after 0.3 seconds waiting for the expected response "
        f"on {LOOPBACK} port {port}"
    )


async def test_server_that_closes_without_data_is_critical() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return None

    async with tcp_server(close_at_once) as port:
        status, message, _ = await run(port=port, expect="SSH-")
    assert status is Status.CRITICAL
    assert message == f"TCP CRITICAL - no data received on {LOOPBACK} port {port}"


async def test_send_then_expect_the_reply() -> None:
    seen: list[bytes] = []

    async def pong(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readline())
        writer.write(b"+PONG\r\n")
        await writer.drain()
        await reader.read()

    async with tcp_server(pong) as port:
        status, message, _ = await run(port=port, send="PING\r\n", expect="PONG")
    assert status is Status.OK, message
    assert seen == [b"PING\r\n"]


async def test_send_without_expect_delivers_the_string() -> None:
    got = asyncio.get_running_loop().create_future()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.set_result(await reader.read())

    async with tcp_server(record) as port:
        status, _, _ = await run(port=port, send="QUIT\r\n")
        assert await asyncio.wait_for(got, 2) == b"QUIT\r\n"
    assert status is Status.OK


@pytest.mark.parametrize(
    ("thresholds", "expected"),
    [
        ({"warn": 0.05}, Status.WARNING),
        ({"warn": 0.05, "crit": 0.1}, Status.CRITICAL),
        ({"warn": 5.0, "crit": 6.0}, Status.OK),
    ],
)
async def test_response_time_thresholds(thresholds: dict[str, float], expected: Status) -> None:
    async with tcp_server(banner(b"SSH-2.0-x\r\n", delay=0.2)) as port:
        status, message, perf = await run(port=port, expect="SSH-", **thresholds)
    assert status is expected
    # The server waits 0.2 s: that is a floor; a loaded machine only adds to it.
    found = re.match(rf"TCP {expected.name} - (\d+\.\d+) second response time", message)
    assert found is not None, message
    assert float(found.group(1)) >= 0.2
    assert perf[0].warn == format(thresholds["warn"], "g")


def test_params_reject_bad_values() -> None:
    for bad in (
        {"port": 0},
        {"port": 65536},
        {"port": 22, "bogus": 1},
        {"port": 22, "warn": 2.0, "crit": 1.0},
        {"port": 22, "expect": ""},
    ):
        with pytest.raises(ValidationError):
            TcpParams.model_validate(bad)


def test_default_name_is_kind_and_port() -> None:
    assert TcpParams(port=22).default_name("tcp") == "tcp:22"


def test_describe_os_error_wording() -> None:
    assert describe_os_error(ConnectionRefusedError(111, "x"), "h") == "connection refused"
    assert describe_os_error(OSError(113, "No route to host"), "h") == "no route to host"
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert describe_os_error(gai, "nas") == "cannot resolve 'nas': Name or service not known"
    assert describe_os_error(OSError("Multiple exceptions: a, b"), "h") == (
        "Multiple exceptions: a, b"
    )
    assert describe_os_error(ssl.SSLError(1, "no certificate"), "h") == "TLS error: no certificate"
    unverified = ssl.SSLCertVerificationError(1, "bad")
    unverified.verify_message = "self-signed certificate"
    assert (
        describe_os_error(unverified, "h") == "certificate verify failed: self-signed certificate"
    )
