"""TCP port check: connect, optionally send a string and expect a banner.

Modelled on Nagios' check_tcp. The hot path is a bare `loop.create_connection`
with a slot-only `asyncio.Protocol`: asyncio streams cost about three times as
much CPU per connection, and a daemon runs thousands of these per minute.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any, ClassVar

from pydantic import Field

from checks.base import (
    BaseCheck,
    CheckParams,
    LatencyParams,
    describe_os_error,
    latency_status,
    time_perf,
)
from monitord.model import CheckResult, Perf, Status, Target

# What check_tcp reads at most before judging a banner (its default maxbytes).
MAX_BANNER_BYTES = 8192


def preview(data: bytes, limit: int = 60) -> str:
    """The start of received data, quoted, safe to put in a one-line message."""
    text = data[:limit].decode("utf-8", "replace")
    return repr(text) + ("…" if len(data) > limit else "")


class TcpParams(LatencyParams):
    """Parameters of a `tcp` check.

    `send` is written after connecting; `expect` must then appear in what the
    server sends first. The server's first burst is judged as soon as it ends
    a line (or closes, or passes 8 KiB), so a wrong banner fails at once
    instead of at the timeout.
    """

    port: int = Field(ge=1, le=65535)
    send: str | None = Field(default=None, min_length=1)
    expect: str | None = Field(default=None, min_length=1)

    def default_name(self, kind: str) -> str:
        return f"{kind}:{self.port}"


class _Connected(asyncio.Protocol):
    """Connect-only probe: the established connection is the whole answer."""

    __slots__ = ()


class _Banner(asyncio.Protocol):
    """Collects the server's first burst until `expect` is decided.

    `done` resolves when the expected text arrived, a line ended without it,
    the buffer passed MAX_BANNER_BYTES, or the peer closed.
    """

    __slots__ = ("buf", "done", "expect")

    def __init__(self, done: asyncio.Future[None], expect: bytes) -> None:
        self.done = done
        self.expect = expect
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        self.buf += data
        buf = self.buf
        if (
            self.expect in buf or buf.endswith(b"\n") or len(buf) >= MAX_BANNER_BYTES
        ) and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


class TcpCheck(BaseCheck):
    """Checks that a TCP port accepts connections (and answers as expected).

    Never raises for network failures: refused, unreachable, timeout, closed
    without data and an unexpected banner are CRITICAL results naming which.
    """

    kind: ClassVar[str] = "tcp"
    Params: ClassVar[type[CheckParams]] = TcpParams

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        p: TcpParams = params
        host = target.address
        where = f"on {host} port {p.port}"
        loop = asyncio.get_running_loop()
        probe = None if p.expect is None else _Banner(loop.create_future(), p.expect.encode())
        start = perf_counter()
        transport: asyncio.Transport | None = None
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await loop.create_connection(
                    _Connected if probe is None else lambda: probe, host, p.port
                )
                if p.send is not None:
                    transport.write(p.send.encode())
                if probe is not None:
                    await probe.done
                elapsed = perf_counter() - start
        except TimeoutError:
            phase = "connecting" if transport is None else "waiting for the expected response"
            return _critical("TCP", f"timeout after {timeout:g} seconds {phase} {where}")
        except OSError as exc:
            return _critical("TCP", f"{describe_os_error(exc, host)} {where}")
        finally:
            if transport is not None:
                transport.close()
        if probe is None:
            return _timed("TCP", elapsed, p, timeout, where)
        return self._judge(probe, p, elapsed, timeout, where)

    @staticmethod
    def _judge(
        banner: _Banner, p: TcpParams, elapsed: float, timeout: float, where: str
    ) -> CheckResult:
        assert p.expect is not None
        if p.expect.encode() in banner.buf:
            return _timed("TCP", elapsed, p, timeout, where)
        perf = time_perf(elapsed, p, timeout)
        if not banner.buf:
            return _critical("TCP", f"no data received {where}", perf)
        got = preview(banner.buf.split(b"\n", 1)[0].rstrip(b"\r"))
        return _critical("TCP", f"unexpected response {where}: {got}", perf)


def _timed(proto: str, elapsed: float, p: LatencyParams, timeout: float, where: str) -> CheckResult:
    status = latency_status(elapsed, p)
    message = f"{proto} {status.name} - {elapsed:.3f} second response time {where}"
    return CheckResult(status, message, (time_perf(elapsed, p, timeout),))


def _critical(proto: str, reason: str, *perf: Perf) -> CheckResult:
    return CheckResult(Status.CRITICAL, f"{proto} CRITICAL - {reason}", perf)
