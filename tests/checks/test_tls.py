"""TlsCheck against real loopback TLS servers with generated certificates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter

import pytest
from pydantic import ValidationError

from checks.tls import TlsCheck, TlsParams
from monitord.model import CheckResult, Status, Target
from tests.checks.loopback import (
    LOOPBACK,
    Cert,
    banner,
    hanging_server,
    make_cert,
    refused_port,
    tcp_server,
    tls_server,
    trust,
)
from tests.conftest import LATE

TARGET = Target("dev-1", LOOPBACK)
# Certificates carry whole seconds; the check's clock is pinned to the same instant.
NOW = datetime.now(UTC).replace(microsecond=0)


def expiring_in(
    days: float,
    cn: str | None = "localhost",
    *,
    issuer: Cert | None = None,
    sans: tuple[str, ...] = ("localhost", LOOPBACK),
) -> Cert:
    """A certificate whose validity ends `days` after NOW (before it, if negative)."""
    not_after = NOW + timedelta(days=days)
    not_before = min(NOW, not_after) - timedelta(days=30)
    return make_cert(cn, not_before=not_before, not_after=not_after, issuer=issuer, sans=sans)


async def run(timeout: float = 5.0, **params: object) -> CheckResult:
    check = TlsCheck(now=lambda: NOW)
    await check.start()
    try:
        return await check.run(TARGET, TlsParams.model_validate(params), timeout)
    finally:
        await check.close()


@pytest.mark.parametrize(
    ("days", "verdict", "when"),
    [
        (100.1, Status.OK, "expires in 100 days"),
        (20.5, Status.WARNING, "expires in 20 days"),
        (3.5, Status.CRITICAL, "expires in 3 days"),
        (0.5, Status.CRITICAL, "expires in 12 hours"),
    ],
)
async def test_days_left_against_thresholds(days: float, verdict: Status, when: str) -> None:
    cert = expiring_in(days)
    async with tls_server(cert) as port:
        result = await run(port=port, verify=False)
    stamp = cert.cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    assert result.status is verdict
    assert result.message == (
        f"TLS {verdict.name} - certificate 'localhost' issued by 'localhost' {when} ({stamp})"
    )
    (perf,) = result.perfdata
    assert (perf.label, perf.value, perf.warn, perf.crit) == (
        "days_left",
        round(days, 2),
        "30:",
        "7:",
    )


async def test_custom_thresholds() -> None:
    async with tls_server(expiring_in(50)) as port:
        result = await run(port=port, verify=False, warn_days=60, crit_days=10)
    assert result.status is Status.WARNING


async def test_expired_certificate_is_critical_even_without_verification() -> None:
    async with tls_server(expiring_in(-2.5)) as port:
        result = await run(port=port, verify=False)
    assert result.status is Status.CRITICAL
    assert "certificate 'localhost' issued by 'localhost' expired 2 days ago" in result.message


async def test_not_yet_valid_certificate_is_critical() -> None:
    cert = make_cert(not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=90))
    async with tls_server(cert) as port:
        result = await run(port=port, verify=False)
    assert result.status is Status.CRITICAL
    assert "is not valid before" in result.message


async def test_untrusted_certificate_fails_verification_but_still_reports_expiry() -> None:
    async with tls_server(expiring_in(100.1)) as port:
        result = await run(port=port)  # verify defaults to True
    assert result.status is Status.CRITICAL
    assert result.message.startswith(
        "TLS CRITICAL - certificate verify failed: self-signed certificate - "
        "certificate 'localhost' issued by 'localhost' expires in 100 days"
    )


async def test_trusted_chain_with_sni_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = make_cert("Test Root CA", ca=True, sans=())
    leaf = expiring_in(100.1, cn="www.example.test", issuer=ca, sans=("www.example.test",))
    monkeypatch.setenv("SSL_CERT_FILE", trust(ca, tmp_path))
    seen: list[str | None] = []
    async with tls_server(leaf, sni_seen=seen) as port:
        good = await run(port=port, server_name="www.example.test")
        wrong = await run(port=port, server_name="other.example.test")
    assert good.status is Status.OK, good.message
    assert good.message.startswith(
        "TLS OK - certificate 'www.example.test' issued by 'Test Root CA' expires in 100 days"
    )
    assert wrong.status is Status.CRITICAL
    assert wrong.message.startswith("TLS CRITICAL - certificate verify failed: Hostname mismatch")
    assert seen[:2] == ["www.example.test", "other.example.test"]


async def test_expired_trusted_certificate_names_the_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = make_cert("Test Root CA", ca=True, sans=())
    leaf = make_cert(
        issuer=ca, not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=3, hours=1)
    )
    monkeypatch.setenv("SSL_CERT_FILE", trust(ca, tmp_path))
    async with tls_server(leaf) as port:
        result = await run(port=port)
    assert result.status is Status.CRITICAL
    assert result.message.startswith(
        "TLS CRITICAL - certificate verify failed: certificate has expired - "
        "certificate 'localhost' issued by 'Test Root CA' expired 3 days ago"
    )


async def test_subject_without_common_name_falls_back_to_the_san() -> None:
    async with tls_server(expiring_in(100.1, cn=None, sans=("nas.example.test",))) as port:
        result = await run(port=port, verify=False)
    assert result.status is Status.OK
    assert "certificate 'nas.example.test' issued by 'No CN Ltd'" in result.message


async def test_refused_is_critical() -> None:
    with refused_port() as port:
        result = await run(port=port)
    assert result.status is Status.CRITICAL
    assert result.message == f"TLS CRITICAL - connection refused on {LOOPBACK} port {port}"


async def test_server_that_never_handshakes_times_out_on_time() -> None:
    async with hanging_server() as port:
        start = perf_counter()
        result = await run(timeout=0.3, port=port)
        took = perf_counter() - start
    assert result.status is Status.CRITICAL
    assert result.message == f"TLS CRITICAL - timeout after 0.3 seconds on {LOOPBACK} port {port}"
    assert took < 0.3 + LATE


async def test_plain_text_server_is_a_tls_error() -> None:
    async with tcp_server(banner(b"220 ftp ready\r\n")) as port:
        result = await run(port=port, verify=False)
    assert result.status is Status.CRITICAL
    assert result.message.startswith("TLS CRITICAL - TLS error: ")


def test_params() -> None:
    p = TlsParams()
    assert (p.port, p.server_name, p.warn_days, p.crit_days, p.verify) == (443, None, 30, 7, True)
    assert p.default_name("tls") == "tls:443"
    assert TlsParams(server_name="WWW.Example.com").default_name("tls") == "tls:www.example.com:443"
    for bad in (
        {"warn_days": 5, "crit_days": 10},
        {"server_name": "a b"},
        {"port": 70000},
        {"crit_days": -1},
        {"sni": "x"},
    ):
        with pytest.raises(ValidationError):
            TlsParams.model_validate(bad)
