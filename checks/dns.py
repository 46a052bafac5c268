"""DNS check: ask one server for one record and compare the answers.

By default the server is the target itself: the device is a DNS server and
must answer. Queries go over UDP with dnspython's asyncio API and fall back
to TCP when the answer is truncated. Answers are compared order-insensitively
in canonical form, so `mail.example.com` matches `MAIL.example.com.` and
`2001:DB8::1` matches `2001:db8::1`; TXT records compare as the concatenation
of their strings.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from time import perf_counter
from typing import Any, ClassVar, Literal, Self

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.reversename
from pydantic import Field, model_validator

from checks.base import (
    BaseCheck,
    CheckParams,
    LatencyParams,
    describe_os_error,
    latency_status,
    time_perf,
)
from monitord.model import CheckResult, Perf, Status, Target

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "PTR", "NS", "SOA"]
_RCODE_REASON = {
    dns.rcode.NXDOMAIN: "NXDOMAIN (domain does not exist)",
    dns.rcode.SERVFAIL: "SERVFAIL (server failure)",
    dns.rcode.REFUSED: "REFUSED (query refused)",
}
_SHOWN_ANSWERS = 8


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def canonical_rdata(rdata: dns.rdata.Rdata) -> str:
    """Comparable text of one record: TXT joined strings, else lowercased text."""
    if isinstance(rdata, dns.rdtypes.ANY.TXT.TXT):
        return b"".join(rdata.strings).decode("utf-8", "replace")
    return rdata.to_text().lower()


def canonical_expected(record_type: str, text: str) -> str:
    """Comparable text of one expected answer; raises ValueError if unparseable."""
    if record_type == "TXT":
        return text
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.from_text(record_type),
            text,
            origin=dns.name.root,  # "mail.example.com" means the absolute name
            relativize=False,
        )
    except dns.exception.DNSException as exc:
        raise ValueError(f"{text!r} is not a valid {record_type} record: {exc}") from exc
    return canonical_rdata(rdata)


class DnsParams(LatencyParams):
    """Parameters of a `dns` check.

    `query` is the name asked for (`name` is the check's own name in the
    config); for PTR it may be an IP address. `server` defaults to the
    target's address. `expect`, when given, must equal the set of answers exactly
    (order-insensitive); each value is validated against `record_type`.
    """

    query: str = Field(min_length=1)
    record_type: RecordType = "A"
    server: str | None = Field(default=None, min_length=1)
    port: int = Field(default=53, ge=1, le=65535)
    expect: tuple[str, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _parseable(self) -> Self:
        try:
            self.qname()
        except dns.exception.DNSException as exc:
            raise ValueError(f"invalid DNS name {self.query!r}: {exc}") from exc
        for value in self.expect or ():
            canonical_expected(self.record_type, value)
        return self

    def qname(self) -> dns.name.Name:
        """The DNS name asked for (the reverse name for a PTR of an IP address)."""
        if self.record_type == "PTR" and _is_ip(self.query):
            return dns.reversename.from_address(self.query)
        return dns.name.from_text(self.query)

    def default_name(self, kind: str) -> str:
        return f"{kind}:{self.record_type}:{self.query}"


class DnsCheck(BaseCheck):
    """Queries `server` for `query`/`record_type` and judges the answer.

    Never raises for network or DNS failures: NXDOMAIN, SERVFAIL, REFUSED,
    no records, timeout, unreachable server and an answer other than
    `expect` are CRITICAL results naming the reason.
    """

    kind: ClassVar[str] = "dns"
    Params: ClassVar[type[CheckParams]] = DnsParams

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        p: DnsParams = params
        server = p.server or target.address
        what = f"{p.query} {p.record_type}"
        where = f"from {server} port {p.port}"
        start = perf_counter()
        try:
            async with asyncio.timeout(timeout):
                address = await _resolve(server, p.port)
                query = dns.message.make_query(p.qname(), p.record_type)
                response, _ = await dns.asyncquery.udp_with_fallback(
                    query, address, timeout=timeout, port=p.port
                )
        except (TimeoutError, dns.exception.Timeout):
            return _critical(f"timeout after {timeout:g} seconds querying {what} {where}")
        except OSError as exc:
            return _critical(f"{describe_os_error(exc, server)} querying {what} {where}")
        except dns.exception.DNSException as exc:
            return _critical(f"invalid response for {what} {where}: {exc}")
        elapsed = perf_counter() - start
        return _judge(response, p, elapsed, timeout, what, where)


async def _resolve(server: str, port: int) -> str:
    """The IP address to send to: `server` itself or its first address."""
    if _is_ip(server):
        return server
    infos = await asyncio.get_running_loop().getaddrinfo(server, port, type=socket.SOCK_DGRAM)
    return str(infos[0][4][0])


def _judge(
    response: dns.message.Message,
    p: DnsParams,
    elapsed: float,
    timeout: float,
    what: str,
    where: str,
) -> CheckResult:
    perf = time_perf(elapsed, p, timeout)
    rcode = response.rcode()
    if rcode != dns.rcode.NOERROR:
        reason = _RCODE_REASON.get(rcode, dns.rcode.to_text(rcode))
        return _critical(f"{what}: {reason} {where}", perf)
    try:
        assert isinstance(response, dns.message.QueryMessage)  # what make_query's reply is
        rrset = response.resolve_chaining().answer
    except dns.exception.DNSException as exc:
        return _critical(f"invalid response for {what} {where}: {exc}", perf)
    if rrset is None:
        return _critical(f"{what}: no {p.record_type} record in the answer {where}", perf)
    answers = sorted({canonical_rdata(rd) for rd in rrset})
    shown = ", ".join(answers[:_SHOWN_ANSWERS]) + (", …" if len(answers) > _SHOWN_ANSWERS else "")
    if p.expect is not None:
        expected = sorted({canonical_expected(p.record_type, v) for v in p.expect})
        if answers != expected:
            mismatch = f"got [{shown}], expected [{', '.join(expected)}]"
            return _critical(f"{what}: answer mismatch {where}: {mismatch}", perf)
    status = latency_status(elapsed, p)
    message = f"DNS {status.name} - {elapsed:.3f} seconds response time, {what} returns {shown}"
    return CheckResult(status, message, (perf,))


def _critical(reason: str, *perf: Perf) -> CheckResult:
    return CheckResult(Status.CRITICAL, f"DNS CRITICAL - {reason}", perf)
