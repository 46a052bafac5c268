"""DnsCheck against a tiny UDP/TCP DNS responder on loopback."""

from __future__ import annotations

import re
from time import perf_counter

import pytest
from pydantic import ValidationError

from checks.dns import DnsCheck, DnsParams
from monitord.model import CheckResult, Status, Target
from tests.checks.loopback import LOOPBACK, Zone, refused_port, silent_dns_server, zone_server
from tests.conftest import LATE

TARGET = Target("dns-1", LOOPBACK)


def example_zone(**kw: object) -> Zone:
    return Zone(
        {
            ("www.example.test.", "A"): ["192.0.2.2", "192.0.2.1"],
            ("www.example.test.", "AAAA"): ["2001:db8::1"],
            ("alias.example.test.", "CNAME"): ["www.example.test."],
            ("example.test.", "MX"): ["10 Mail.Example.Test.", "20 backup.example.test."],
            ("example.test.", "TXT"): ['"v=spf1 " "include:_spf.example.test -all"'],
            ("example.test.", "NS"): ["ns1.example.test."],
            ("example.test.", "SOA"): [
                "ns1.example.test. hostmaster.example.test. 7 3600 600 86400 300"
            ],
            ("1.2.0.192.in-addr.arpa.", "PTR"): ["www.example.test."],
            ("broken.example.test.", "A"): ["192.0.2.9"],
            ("nodata.example.test.", "TXT"): ["x"],
        },
        servfail={"broken.example.test."},
        refused={"secret.example.test."},
        **kw,  # type: ignore[arg-type]
    )


async def run(
    port: int, timeout: float = 5.0, target: Target = TARGET, **params: object
) -> CheckResult:
    check = DnsCheck()
    await check.start()
    try:
        return await check.run(target, DnsParams.model_validate({"port": port, **params}), timeout)
    finally:
        await check.close()


async def test_a_records_match_in_any_order() -> None:
    async with zone_server(example_zone()) as port:
        result = await run(port, query="www.example.test", expect=["192.0.2.1", "192.0.2.2"])
    assert result.status is Status.OK
    assert re.fullmatch(
        r"DNS OK - \d+\.\d{3} seconds response time, "
        r"www\.example\.test A returns 192\.0\.2\.1, 192\.0\.2\.2",
        result.message,
    )
    assert result.perfdata[0].label == "time"


async def test_without_expect_any_answer_is_ok() -> None:
    async with zone_server(example_zone()) as port:
        result = await run(port, query="www.example.test", record_type="AAAA")
    assert result.status is Status.OK
    assert result.message.endswith("www.example.test AAAA returns 2001:db8::1")


async def test_wrong_answer_is_critical_and_shows_both_sides() -> None:
    async with zone_server(example_zone()) as port:
        result = await run(port, query="www.example.test", expect=["192.0.2.1", "192.0.2.9"])
    assert result.status is Status.CRITICAL
    assert result.message == (
        f"DNS CRITICAL - www.example.test A: answer mismatch from {LOOPBACK} port {port}: "
        "got [192.0.2.1, 192.0.2.2], expected [192.0.2.1, 192.0.2.9]"
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing.example.test", "NXDOMAIN (domain does not exist)"),
        ("broken.example.test", "SERVFAIL (server failure)"),
        ("secret.example.test", "REFUSED (query refused)"),
        ("nodata.example.test", "no A record in the answer"),
    ],
)
async def test_negative_answers_are_critical(name: str, reason: str) -> None:
    async with zone_server(example_zone()) as port:
        result = await run(port, query=name)
    assert result.status is Status.CRITICAL
    assert result.message == f"DNS CRITICAL - {name} A: {reason} from {LOOPBACK} port {port}"


async def test_silent_server_times_out_on_time() -> None:
    async with silent_dns_server() as port:
        start = perf_counter()
        result = await run(port, timeout=0.3, query="www.example.test")
        took = perf_counter() - start
    assert result.status is Status.CRITICAL
    assert result.message == (
        f"DNS CRITICAL - timeout after 0.3 seconds querying www.example.test A "
        f"from {LOOPBACK} port {port}"
    )
    assert took < 0.3 + LATE


async def test_port_without_a_listener_is_critical() -> None:
    # dnspython ignores the ICMP port-unreachable, so this ends as a timeout.
    with refused_port() as port:  # a bound TCP socket: nothing listens on UDP
        result = await run(port, timeout=0.3, query="www.example.test")
    assert result.status is Status.CRITICAL
    assert result.message == (
        f"DNS CRITICAL - timeout after 0.3 seconds querying www.example.test A "
        f"from {LOOPBACK} port {port}"
    )


async def test_cname_chain_is_followed() -> None:
    async with zone_server(example_zone()) as port:
        result = await run(port, query="alias.example.test", expect=["192.0.2.1", "192.0.2.2"])
    assert result.status is Status.OK, result.message


async def test_cname_query_returns_the_cname_itself() -> None:
    async with zone_server(example_zone()) as port:
        result = await run(
            port, query="alias.example.test", record_type="CNAME", expect=["WWW.example.test"]
        )
    assert result.status is Status.OK, result.message
    assert result.message.endswith("returns www.example.test.")


@pytest.mark.parametrize(
    ("record_type", "name", "expect"),
    [
        ("MX", "example.test", ["20 backup.example.test", "10 mail.example.test."]),
        ("TXT", "example.test", ["v=spf1 include:_spf.example.test -all"]),
        ("NS", "example.test", ["NS1.example.test"]),
        (
            "SOA",
            "example.test",
            ["ns1.example.test. hostmaster.example.test. 7 3600 600 86400 300"],
        ),
        ("AAAA", "www.example.test", ["2001:DB8:0::1"]),
        ("PTR", "192.0.2.1", ["www.example.test"]),
    ],
)
async def test_answers_compare_in_canonical_form(
    record_type: str, name: str, expect: list[str]
) -> None:
    async with zone_server(example_zone()) as port:
        result = await run(port, query=name, record_type=record_type, expect=expect)
    assert result.status is Status.OK, result.message


async def test_ptr_for_an_address_queries_the_reverse_name() -> None:
    zone = example_zone()
    async with zone_server(zone) as port:
        await run(port, query="192.0.2.1", record_type="PTR")
    assert zone.queries == [("1.2.0.192.in-addr.arpa.", "PTR")]


async def test_truncated_udp_answer_is_retried_over_tcp() -> None:
    async with zone_server(example_zone(truncate_udp=True)) as port:
        result = await run(port, query="www.example.test", expect=["192.0.2.1", "192.0.2.2"])
    assert result.status is Status.OK, result.message


async def test_server_param_overrides_the_target_address() -> None:
    zone = example_zone()
    elsewhere = Target("dev-2", "127.0.0.99")  # nothing listens there on that port
    async with zone_server(zone) as port:
        result = await run(port, target=elsewhere, server=LOOPBACK, query="www.example.test")
    assert result.status is Status.OK, result.message
    assert zone.queries == [("www.example.test.", "A")]


@pytest.mark.parametrize(
    "bad",
    [
        {"query": "x", "record_type": "SRV"},
        {"query": "x", "expect": ["not-an-ip"]},
        {"query": "x", "record_type": "MX", "expect": ["mail.example.test"]},
        {"query": "x", "expect": []},
        {"query": ""},
        {"query": "a..b"},
        {"query": "x", "port": 0},
        {"query": "x", "resolver": "1.1.1.1"},
    ],
)
def test_params_reject(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DnsParams.model_validate(bad)


def test_params_defaults_and_name() -> None:
    p = DnsParams(query="example.test")
    assert (p.record_type, p.server, p.port, p.expect) == ("A", None, 53, None)
    assert DnsParams(query="example.test", record_type="MX").default_name("dns") == (
        "dns:MX:example.test"
    )
