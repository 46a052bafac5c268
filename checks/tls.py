"""TLS certificate check: days until the server certificate expires.

The certificate is taken from a real handshake (with SNI) and parsed with
`cryptography`, so expiry is reported whether or not the chain verifies.
When verification is on and fails, a second, unverified handshake fetches the
certificate so that the message still names it and its expiry: "self-signed
and expires in 3 days" is what the operator needs to read.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from cryptography import x509
from cryptography.x509.oid import NameOID
from pydantic import Field, field_validator, model_validator

from checks.base import BaseCheck, CheckParams, SslContexts, describe_os_error
from monitord.model import CheckResult, Perf, Status, Target

_DAY = 86400.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TlsParams(CheckParams):
    """Parameters of a `tls` check.

    `server_name` is sent as SNI and, with `verify`, is the name the
    certificate must match (the target's address otherwise). A certificate
    with fewer than `warn_days` (`crit_days`) left is WARNING (CRITICAL).
    """

    port: int = Field(default=443, ge=1, le=65535)
    server_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]+$")
    warn_days: int = Field(default=30, ge=0)
    crit_days: int = Field(default=7, ge=0)
    verify: bool = True

    @model_validator(mode="after")
    def _crit_not_above_warn(self) -> Self:
        if self.crit_days > self.warn_days:
            raise ValueError(
                f"crit_days ({self.crit_days!r}) must not exceed warn_days ({self.warn_days!r})"
            )
        return self

    @field_validator("server_name")
    @classmethod
    def _lower(cls, v: str | None) -> str | None:
        return None if v is None else v.lower()

    def default_name(self, kind: str) -> str:
        name = f"{self.server_name}:" if self.server_name else ""
        return f"{kind}:{name}{self.port}"


class _Handshake(asyncio.Protocol):
    __slots__ = ()


class TlsCheck(BaseCheck):
    """Reports subject, issuer and days left of the target's certificate.

    Never raises for network or TLS failures: refused, timeout, handshake
    errors and verification failures are CRITICAL, as is an expired or
    not-yet-valid certificate; an unparseable certificate is UNKNOWN.
    `now` is injectable for tests; it must return an aware UTC datetime.
    """

    kind: ClassVar[str] = "tls"
    Params: ClassVar[type[CheckParams]] = TlsParams

    def __init__(self, now: Callable[[], datetime] = _utc_now) -> None:
        self._now = now
        self._contexts = SslContexts()

    def ssl_context(self, verify: bool) -> ssl.SSLContext:
        """The shared client context for `verify` (chain and hostname, or none)."""
        return self._contexts.get(verify)

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        p: TlsParams = params
        host = target.address
        where = f"on {host} port {p.port}"
        verify_error: str | None = None
        try:
            async with asyncio.timeout(timeout):
                try:
                    der = await self._certificate(host, p, p.verify)
                except ssl.SSLCertVerificationError as exc:
                    verify_error = describe_os_error(exc, host)
                    der = await self._certificate(host, p, False)
        except TimeoutError:
            return _critical(verify_error or f"timeout after {timeout:g} seconds", where)
        except OSError as exc:  # includes TLS errors, which it names
            return _critical(verify_error or describe_os_error(exc, host), where)
        return self._judge(der, p, verify_error)

    async def _certificate(self, host: str, p: TlsParams, verify: bool) -> bytes:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(
            _Handshake,
            host,
            p.port,
            ssl=self.ssl_context(verify),
            server_hostname=p.server_name or host,
        )
        try:
            sslobj: ssl.SSLObject = transport.get_extra_info("ssl_object")
            der = sslobj.getpeercert(binary_form=True)
        finally:
            transport.close()
        if not der:
            raise ssl.SSLError(0, "server sent no certificate")
        return der

    def _judge(self, der: bytes, p: TlsParams, verify_error: str | None) -> CheckResult:
        try:
            cert = x509.load_der_x509_certificate(der)
            not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
        except ValueError as exc:
            return CheckResult(Status.UNKNOWN, f"TLS UNKNOWN - cannot parse certificate: {exc}")
        now = self._now()
        left = (not_after - now).total_seconds() / _DAY
        who = f"certificate {_subject(cert)!r} issued by {_issuer(cert)!r}"
        if left <= 0:
            status, when = Status.CRITICAL, f"expired {_span(-left)} ago"
        elif not_before > now:
            status, when = Status.CRITICAL, f"is not valid before {_stamp(not_before)}"
        else:
            status = _days_status(left, p)
            when = f"expires in {_span(left)}"
        if verify_error is not None:
            status = Status.CRITICAL
        detail = f"{who} {when} ({_stamp(not_after)})"
        message = " - ".join(x for x in (verify_error, detail) if x)
        perf = Perf("days_left", round(left, 2), "", f"{p.warn_days}:", f"{p.crit_days}:")
        return CheckResult(status, f"TLS {status.name} - {message}", (perf,))


def _days_status(left: float, p: TlsParams) -> Status:
    if left < p.crit_days:
        return Status.CRITICAL
    if left < p.warn_days:
        return Status.WARNING
    return Status.OK


def _span(days: float) -> str:
    if days >= 1:
        n = int(days)
        return f"{n} day" + ("s" if n != 1 else "")
    hours = int(days * 24)
    return f"{hours} hour" + ("s" if hours != 1 else "")


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _subject(cert: x509.Certificate) -> str:
    cn = _attr(cert.subject, NameOID.COMMON_NAME)
    if cn:
        return cn
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return cert.subject.rfc4514_string()
    names = san.value.get_values_for_type(x509.DNSName)
    return str(names[0]) if names else cert.subject.rfc4514_string()


def _issuer(cert: x509.Certificate) -> str:
    return (
        _attr(cert.issuer, NameOID.COMMON_NAME)
        or _attr(cert.issuer, NameOID.ORGANIZATION_NAME)
        or cert.issuer.rfc4514_string()
    )


def _critical(reason: str, where: str) -> CheckResult:
    return CheckResult(Status.CRITICAL, f"TLS CRITICAL - {reason} {where}")
