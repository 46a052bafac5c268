"""The check-type interface and its registry loader.

A check type is a class with a `Params` model (validated once, at config load)
and an async `run(target, params, timeout)`. One instance per kind lives in the
engine and owns shared resources (the ICMP socket, the DNS resolver, the SNMP
engine); per-check data lives only in the frozen params. This is also the seam
a remote poller implements: it needs nothing but (kind, params, target).

Contract for `run`:
- return a `CheckResult`; network failures (refused, unreachable, timeout, TLS
  and DNS errors) are results with CRITICAL or UNKNOWN and a message saying
  which, never exceptions;
- finish within `timeout` seconds (the engine also enforces it, with a small
  grace, and turns an overrun into UNKNOWN);
- never put a secret into the message or perfdata.
Any exception that escapes is a bug in the check; the engine turns it into
UNKNOWN with the exception summary and keeps running.
"""

from __future__ import annotations

import errno
import importlib
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitord.model import CheckResult, Perf, Status, Target


@dataclass(frozen=True)
class CheckContext:
    """What the daemon lends check types beyond the network, injected at start.

    `now` is the daemon's wall clock (UTC epoch seconds). `services` holds
    shared daemon objects a kind may need by a well-known name (for example
    the heartbeat book, which the HTTP endpoint fills and the heartbeat check
    reads); kinds that need nothing ignore the context.
    """

    now: Callable[[], float] = time.time
    services: Mapping[str, Any] = field(default_factory=dict)


class CheckParams(BaseModel):
    """Base for every check type's parameters: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def default_name(self, kind: str) -> str:
        """Name used when the config gives none, e.g. `tcp:443`."""
        return kind


@runtime_checkable
class CheckType(Protocol):
    """One kind of check. See the module docstring for the contract."""

    kind: ClassVar[str]
    Params: ClassVar[type[CheckParams]]

    async def start(self, context: CheckContext | None = None) -> None:
        """Acquire shared resources; called once before the first run."""

    async def close(self) -> None:
        """Release shared resources; called once at shutdown."""

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        """Execute one check; see the module docstring."""
        ...


class BaseCheck:
    """Convenience base with no-op lifecycle hooks."""

    async def start(self, context: CheckContext | None = None) -> None:
        return None

    async def close(self) -> None:
        return None


def load_check_class(kind: str) -> type[CheckType]:
    """Import and return the class registered for `kind`.

    Raises KeyError for an unregistered kind and ImportError when the module
    is broken; callers at config load turn both into located config errors.
    """
    from checks import REGISTRY

    module_name, _, attr = REGISTRY[kind].rpartition(".")
    cls: type[CheckType] = getattr(importlib.import_module(module_name), attr)
    return cls


# Shared by the socket-based checks ------------------------------------------

_ERRNO_REASON: dict[int, str] = {
    errno.ECONNREFUSED: "connection refused",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "no route to host",
    errno.EHOSTDOWN: "host is down",
    errno.ECONNRESET: "connection reset by peer",
    errno.ETIMEDOUT: "connection timed out",
    errno.EADDRNOTAVAIL: "address not available",
}


class LatencyParams(CheckParams):
    """Params with optional response-time thresholds in seconds.

    `warn` and `crit` are upper bounds: a response slower than `crit` is
    CRITICAL, slower than `warn` WARNING. Validation rejects `crit < warn`.
    """

    warn: float | None = Field(default=None, gt=0)
    crit: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _crit_not_below_warn(self) -> Self:
        if self.warn is not None and self.crit is not None and self.crit < self.warn:
            raise ValueError(f"crit ({self.crit!r}) must not be below warn ({self.warn!r})")
        return self


def latency_status(elapsed: float, params: LatencyParams) -> Status:
    """OK, WARNING or CRITICAL for a response time against the thresholds."""
    if params.crit is not None and elapsed > params.crit:
        return Status.CRITICAL
    if params.warn is not None and elapsed > params.warn:
        return Status.WARNING
    return Status.OK


def time_perf(elapsed: float, params: LatencyParams, timeout: float) -> Perf:
    """The `time` perfdatum in seconds, with the thresholds and the timeout as max."""
    return Perf(
        "time",
        elapsed,
        "s",
        None if params.warn is None else format(params.warn, "g"),
        None if params.crit is None else format(params.crit, "g"),
        0.0,
        timeout,
    )


def describe_os_error(exc: OSError, host: str) -> str:
    """A short lowercase reason for a failed connect, e.g. `connection refused`.

    Resolver failures name the host, TLS failures say so (with OpenSSL's
    reason); the rest map errno to the wording of the Nagios plugins, falling
    back to the OS text.
    """
    # `reason` and `verify_message` exist only when the ssl module raised the error.
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {getattr(exc, 'verify_message', None) or exc}"
    if isinstance(exc, ssl.SSLError):
        reason: str | None = getattr(exc, "reason", None)
        return f"TLS error: {reason.replace('_', ' ').lower() if reason else exc.strerror or exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {host!r}: {exc.strerror or exc}"
    if exc.errno is not None and exc.errno in _ERRNO_REASON:
        return _ERRNO_REASON[exc.errno]
    if exc.strerror:
        return exc.strerror.lower()
    # asyncio joins the errors of several addresses into one errno-less OSError.
    return str(exc) or type(exc).__name__


def valid_regex(value: str | None) -> str | None:
    """A field validator body: the pattern must compile (a located config error otherwise)."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
    return value


class SslContexts:
    """Client SSL contexts, one per `verify` setting, shared by every check of a
    kind: building a verifying context loads the CA store (milliseconds)."""

    def __init__(self, alpn: tuple[str, ...] = ()) -> None:
        self._alpn = alpn
        self._contexts: dict[bool, ssl.SSLContext] = {}

    def get(self, verify: bool) -> ssl.SSLContext:
        ctx = self._contexts.get(verify)
        if ctx is None:
            ctx = ssl.create_default_context()
            if not verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if self._alpn:
                ctx.set_alpn_protocols(list(self._alpn))
            self._contexts[verify] = ctx
        return ctx
