"""ICMP echo check, fping-style: one shared socket per address family.

Modelled on Nagios' check_ping (thresholds on average round-trip time and
packet loss, `PING OK - Packet loss = 0%, RTA = 0.05 ms`) but built like fping:
a single engine-wide `IcmpCheck` owns one non-blocking ICMP socket per family,
registered with `loop.add_reader`, and thousands of concurrent runs share it.
A run puts its echo requests on a send wheel of 10 ms ticks shared by all runs
(no task or sleep per packet), then awaits one future that the reader
resolves when the last reply arrives, or a deadline timer resolves at the
timeout. Each tick's requests leave in one timer callback (`sock.sendto`) and
their replies mostly come back in one reader wake-up; with checks spread over
time this halves the CPU per check compared with a timer per packet, at the
price of starting up to 10 ms late. Replies are matched to runs through
`_Endpoint.pending`, keyed by (source address, sequence); on raw sockets the
identifier and cookie are checked first.

Socket choice, at `start()`: an unprivileged "ping socket" (SOCK_DGRAM +
IPPROTO_ICMP) when net.ipv4.ping_group_range contains our gid (the kernel then
rewrites the identifier to the socket's local port, fills in the checksum and
delivers only our echo replies), else SOCK_RAW (root or CAP_NET_RAW; we get
every ICMP packet on the host, so a kernel ICMP_FILTER passes only echo
replies and the identifier plus an 8-byte per-socket cookie at the start of
the payload reject other pingers' replies). When neither opens, runs return
UNKNOWN `NO_PERMISSION`; nothing raises.

Why packets are built with struct, not with icmplib's socket classes: its
`ICMPSocket.send` does a getaddrinfo, two setsockopt calls and a pure-Python
checksum per packet, measured at about 27 us of CPU per loopback packet
against 8-12 us for `_Endpoint._send` plus the reply handling here (both
including the kernel's share); and its receivers take one reply per call
(`AsyncSocket.receive` wraps each read in `wait_for` and drops the source
address), so they cannot demultiplex one shared socket. Here the payload and
its partial checksum are precomputed per size, so a send is one
`struct.pack`, one add and one syscall. icmplib is still what resolves host
names (`async_resolve`: A first, then AAAA; `NameLookupError`).

Round-trip times use kernel receive timestamps (SO_TIMESTAMPNS) where
available, so a busy event loop does not inflate them; they are converted to
the monotonic clock and capped by the time user space saw the reply, so a
wall-clock step cannot produce a bogus RTT.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import platform
import socket
import struct
import sys
import time
from collections import deque
from typing import Any, ClassVar, Literal, Self

from icmplib import NameLookupError, async_resolve
from pydantic import Field, model_validator

from checks.base import BaseCheck, CheckContext, CheckParams
from monitord.model import CheckResult, Perf, Status, Target

NO_PERMISSION = "no permission to send ICMP (need CAP_NET_RAW or net.ipv4.ping_group_range)"

_ECHO_REQUEST_V4, _ECHO_REPLY_V4 = 8, 0
_ECHO_REQUEST_V6, _ECHO_REPLY_V6 = 128, 129
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence
_ID_SEQ = struct.Struct("!HH")
_TIMESPEC = struct.Struct("@qq")
_MAX_PAYLOAD = 65507  # 65535 - 20 (IPv4 header) - 8 (ICMP header)
_RECV_BUFFER = 65536 + 60
_TICK = 0.01  # s: the send wheel's resolution; later requests leave up to this late
_READS_PER_CALLBACK = 512  # then yield to the loop; the fd stays readable
_SOCKET_BUFFER = 4 * 1024 * 1024  # a burst of thousands of replies must not overflow

# Linux option numbers the socket module lacks. They are the asm-generic
# values, which the architectures listed use; elsewhere we go without.
_LINUX_GENERIC = sys.platform == "linux" and platform.machine() in {
    "x86_64",
    "aarch64",
    "arm64",
    "armv7l",
    "armv6l",
    "i386",
    "i686",
    "riscv64",
    "ppc64le",
    "s390x",
}
_SO_TIMESTAMPNS = 35
_SO_SNDBUFFORCE, _SO_RCVBUFFORCE = 32, 33
_SOL_RAW, _ICMP_FILTER = 255, 1  # IPv4 raw: bit n set = drop ICMP type n
_ICMP6_FILTER = 1  # IPv6 raw: 256-bit mask, bit n set = drop type n

_NS_PER_MS = 1_000_000
_V4_MAPPED = bytes(10) + b"\xff\xff"
_FAMILY_NAMES: dict[int, str] = {socket.AF_INET: "ipv4", socket.AF_INET6: "ipv6"}


def _parse_threshold(value: str) -> tuple[float, float]:
    """`"100,20%"` (check_ping's -w/-c syntax) -> (100.0 ms, 20.0 %)."""
    rta, sep, loss = value.partition(",")
    loss = loss.strip().removesuffix("%")
    if not sep or not rta.strip() or not loss:
        raise ValueError(f"expected '<rta ms>,<loss>%', e.g. '200,20%', got {value!r}")
    return float(rta), float(loss)


class IcmpParams(CheckParams):
    """Parameters of an `icmp` check.

    Sends `count` echo requests of `size` payload bytes, `packet_interval` seconds
    apart, and judges the average round-trip time (ms) and the loss (%) like
    check_ping: a value at or above a threshold triggers it. `warn` and
    `crit` accept check_ping's shorthand, e.g. `warn: "200,20%"`. A request
    unanswered when the check's timeout ends counts as lost; when `count`
    packets would not fit, the interval shrinks so that the last one is sent
    within the first half of the timeout. Requests leave on a shared 10 ms
    tick, so each may go up to 10 ms after its nominal time.
    """

    count: int = Field(default=3, ge=1, le=100)
    packet_interval: float = Field(default=0.2, ge=0, le=60)
    size: int = Field(default=56, ge=0, le=_MAX_PAYLOAD)
    warn_rta_ms: float = Field(default=200.0, gt=0)
    warn_loss_pct: float = Field(default=20.0, gt=0, le=100)
    crit_rta_ms: float = Field(default=500.0, gt=0)
    crit_loss_pct: float = Field(default=60.0, gt=0, le=100)

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not ("warn" in data or "crit" in data):
            return data
        data = dict(data)
        for level in ("warn", "crit"):
            if level not in data:
                continue
            fields = (f"{level}_rta_ms", f"{level}_loss_pct")
            if any(f in data for f in fields):
                raise ValueError(f"give either {level!r} or {fields[0]!r}/{fields[1]!r}")
            value = data.pop(level)
            if not isinstance(value, str):
                raise ValueError(f"{level!r} must be a string like '200,20%'")
            data[fields[0]], data[fields[1]] = _parse_threshold(value)
        return data

    @model_validator(mode="after")
    def _crit_not_below_warn(self) -> Self:
        if self.crit_rta_ms < self.warn_rta_ms:
            raise ValueError(
                f"crit_rta_ms ({self.crit_rta_ms:g}) must not be below "
                f"warn_rta_ms ({self.warn_rta_ms:g})"
            )
        if self.crit_loss_pct < self.warn_loss_pct:
            raise ValueError(
                f"crit_loss_pct ({self.crit_loss_pct:g}) must not be below "
                f"warn_loss_pct ({self.warn_loss_pct:g})"
            )
        return self


class _Probe:
    """One run's state: what it sent, what came back, and its one future."""

    __slots__ = (
        "aborted",
        "address",
        "count",
        "deadline",
        "dest",
        "done",
        "error",
        "fut",
        "nsent",
        "outstanding",
        "rtts",
        "size",
        "slots",
    )

    def __init__(
        self, address: str, dest: str, count: int, size: int, fut: asyncio.Future[None]
    ) -> None:
        self.address = address  # as replies report it: the key in `pending`
        self.dest = (dest, 0)  # as sendto wants it (keeps an IPv6 scope)
        self.count = count
        self.size = size
        self.fut = fut
        self.nsent = 0  # requests attempted, including failed sendto calls
        self.outstanding: dict[int, int] = {}  # sequence -> monotonic send time (ns)
        self.rtts: list[int] = []  # ns
        self.slots: list[int] = []  # send-wheel slots this run has requests in
        self.deadline: asyncio.TimerHandle | None = None
        self.error: str | None = None  # last sendto error, for the message
        self.aborted: str | None = None  # set when the socket closes under the run
        self.done = False

    def finish(self) -> None:
        if not self.fut.done():
            self.fut.set_result(None)


class _Endpoint:
    """One ICMP socket on the loop and the requests waiting for its replies."""

    __slots__ = (
        "_backlog",
        "_buffers",
        "_closed",
        "_cookie",
        "_echo_reply",
        "_echo_request",
        "_fd",
        "_ip_header",
        "_loop",
        "_raw",
        "_seq",
        "_sock",
        "_templates",
        "_timestamps",
        "_wheel",
        "_wheel_timers",
        "_writing",
        "ident",
        "pending",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, family: int, raw: bool
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._fd = sock.fileno()
        self._raw = raw
        v4 = family == socket.AF_INET
        self._echo_request = _ECHO_REQUEST_V4 if v4 else _ECHO_REQUEST_V6
        self._echo_reply = _ECHO_REPLY_V4 if v4 else _ECHO_REPLY_V6
        self._ip_header = raw and v4  # only raw IPv4 sockets receive the IP header
        # Ping sockets get their identifier from the kernel; on raw sockets we
        # pick a random one (a PID clashes across containers).
        self.ident = int.from_bytes(os.urandom(2), "big") if raw else 0
        self._cookie = os.urandom(8)
        self._seq = int.from_bytes(os.urandom(2), "big")
        self.pending: dict[tuple[str, int], _Probe] = {}
        self._templates: dict[int, tuple[bytes, int]] = {}
        self._backlog: deque[_Probe] = deque()
        self._writing = False
        self._closed: str | None = None  # why, once closed
        # slot -> {run: requests due}; slot n fires at n * _TICK seconds
        self._wheel: dict[int, dict[_Probe, int]] = {}
        self._wheel_timers: dict[int, asyncio.TimerHandle] = {}
        self._buffers = [memoryview(bytearray(_RECV_BUFFER))]
        self._timestamps = _configure(sock, family, raw)
        loop.add_reader(self._fd, self._on_readable)

    def close(self, reason: str) -> None:
        """Close the socket and end every run still waiting on it."""
        self._closed = reason
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
        self._sock.close()
        waiting = [*self.pending.values(), *self._backlog]
        for batch in self._wheel.values():
            waiting.extend(batch)
        for timer in self._wheel_timers.values():
            timer.cancel()
        self.pending.clear()
        self._backlog.clear()
        self._wheel.clear()
        self._wheel_timers.clear()
        for probe in waiting:
            probe.aborted = reason
            probe.done = True
            probe.finish()

    def in_flight(self) -> int:
        """Requests sent and unanswered, waiting for a send slot, or due later."""
        queued = sum(not probe.done for probe in self._backlog)
        due = sum(n for batch in self._wheel.values() for n in batch.values())
        return len(self.pending) + queued + due

    # --- scheduling ----------------------------------------------------

    def schedule(self, probe: _Probe, when: float) -> None:
        """Send one of the probe's requests at the first wheel tick at or after `when`.

        Every run's later requests share the ticks, so requests from many
        runs leave in one timer callback and their replies tend to arrive
        together: one wake-up instead of one per packet.
        """
        slot = math.ceil(when / _TICK)
        batch = self._wheel.get(slot)
        if batch is None:
            batch = self._wheel[slot] = {}
            self._wheel_timers[slot] = self._loop.call_at(slot * _TICK, self._fire, slot)
        batch[probe] = batch.get(probe, 0) + 1
        probe.slots.append(slot)

    def _fire(self, slot: int) -> None:
        del self._wheel_timers[slot]
        for probe, due in self._wheel.pop(slot).items():
            for _ in range(due):
                self.transmit(probe)

    # --- sending -------------------------------------------------------

    def transmit(self, probe: _Probe) -> None:
        """Send the probe's next echo request now, or queue it if the socket is full."""
        if probe.done:
            return
        if self._closed is not None:
            probe.aborted = self._closed
            probe.finish()
            return
        if self._backlog or not self._send(probe):
            self._backlog.append(probe)
            if not self._writing:
                self._writing = True
                self._loop.add_writer(self._fd, self._flush)

    def _flush(self) -> None:
        backlog = self._backlog
        while backlog:
            probe = backlog[0]
            if not probe.done and not self._send(probe):
                return
            backlog.popleft()
        self._writing = False
        self._loop.remove_writer(self._fd)

    def _send(self, probe: _Probe) -> bool:
        """Send one request; False only when the socket buffer is full."""
        address = probe.address
        seq = self._next_seq(address)
        payload, partial = self._template(probe.size)
        checksum = 0
        if self._ip_header:  # raw IPv4: ours to compute (one add and a fold)
            total = partial + seq
            total = (total & 0xFFFF) + (total >> 16)
            checksum = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
        packet = _HEADER.pack(self._echo_request, 0, checksum, self.ident, seq) + payload
        sent_at = time.monotonic_ns()
        try:
            self._sock.sendto(packet, probe.dest)
        except BlockingIOError:
            return False
        except OSError as exc:  # no route, filtered, broadcast...: this packet is lost
            probe.error = f"sendto: {exc.strerror or exc}"
            probe.nsent += 1
            if probe.nsent >= probe.count and not probe.outstanding:
                probe.finish()
            return True
        self._seq = seq
        probe.nsent += 1
        probe.outstanding[seq] = sent_at
        self.pending[address, seq] = probe
        return True

    def _next_seq(self, address: str) -> int:
        # Sequence numbers come from one counter per socket, so a (address,
        # sequence) pair recurs only after 65536 sends; on the wrap, skip any
        # pair still waiting for its reply. Only pairs must be unique: replies
        # are matched on them, so the in-flight limit is per address.
        pending = self.pending
        seq = self._seq
        for _ in range(65536):
            seq = (seq + 1) & 0xFFFF
            if (address, seq) not in pending:
                return seq
        raise RuntimeError(f"65536 ICMP requests in flight to {address}")

    def _template(self, size: int) -> tuple[bytes, int]:
        """Payload of `size` bytes and the partial checksum over it and the header."""
        cached = self._templates.get(size)
        if cached is None:
            payload = (self._cookie + bytes(max(0, size - 8)))[:size]
            padded = payload + b"\0" * (size & 1)
            words = struct.unpack(f"!{len(padded) // 2}H", padded)
            partial = sum(words) + (self._echo_request << 8) + self.ident
            while partial >> 16:
                partial = (partial & 0xFFFF) + (partial >> 16)
            cached = self._templates[size] = (payload, partial)
        return cached

    # --- receiving -----------------------------------------------------

    def _on_readable(self) -> None:
        recvmsg_into = self._sock.recvmsg_into
        buffers = self._buffers
        buf = buffers[0]
        pending = self.pending
        unpack_from = _ID_SEQ.unpack_from
        ip_header = self._ip_header
        echo_reply = self._echo_reply
        check_ident = self._raw
        ident = self.ident
        cookie = self._cookie
        timestamps = self._timestamps
        # Every reply read below arrived before this instant; kernel timestamps
        # (wall clock) are moved onto the monotonic clock with this offset.
        now = time.monotonic_ns()
        wall_offset = time.time_ns() - now
        for _ in range(_READS_PER_CALLBACK):
            try:
                nbytes, ancdata, _flags, source = recvmsg_into(buffers, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # a queued socket error; it is cleared by reading it
                continue
            start = (buf[0] & 0x0F) << 2 if ip_header else 0
            if nbytes < start + 8 or buf[start] != echo_reply:
                continue
            ident_got, seq = unpack_from(buf, start + 4)
            if check_ident and (
                ident_got != ident
                or (nbytes >= start + 16 and buf[start + 8 : start + 16] != cookie)
            ):
                continue
            probe = pending.pop((source[0], seq), None)
            if probe is None:  # late (already timed out), duplicate, or not ours
                continue
            sent_at = probe.outstanding.pop(seq)
            rtt = now - sent_at
            if timestamps and ancdata:
                sec, nsec = _TIMESPEC.unpack(ancdata[0][2])
                rtt = min(rtt, sec * 1_000_000_000 + nsec - wall_offset - sent_at)
            probe.rtts.append(rtt if rtt > 0 else 0)
            if probe.nsent >= probe.count and not probe.outstanding:
                probe.finish()

    def release(self, probe: _Probe) -> None:
        """Forget everything of a finished, timed-out or cancelled run."""
        probe.done = True
        if probe.deadline is not None:
            probe.deadline.cancel()
        wheel = self._wheel
        for slot in probe.slots:
            batch = wheel.get(slot)
            if batch is not None and batch.pop(probe, None) is not None and not batch:
                del wheel[slot]
                self._wheel_timers.pop(slot).cancel()
        pending = self.pending
        address = probe.address
        for seq in probe.outstanding:
            pending.pop((address, seq), None)
        probe.outstanding.clear()


def _configure(sock: socket.socket, family: int, raw: bool) -> bool:
    """Set buffers, filters and timestamps; True when kernel timestamps are on."""
    sock.setblocking(False)
    for force, plain in (
        (_SO_RCVBUFFORCE, socket.SO_RCVBUF),
        (_SO_SNDBUFFORCE, socket.SO_SNDBUF),
    ):
        try:
            if not _LINUX_GENERIC:
                raise OSError
            sock.setsockopt(socket.SOL_SOCKET, force, _SOCKET_BUFFER)  # needs CAP_NET_ADMIN
        except OSError:
            with contextlib.suppress(OSError):  # capped by net.core.[rw]mem_max
                sock.setsockopt(socket.SOL_SOCKET, plain, _SOCKET_BUFFER)
    if raw and _LINUX_GENERIC:
        with contextlib.suppress(OSError):  # an optimisation: the code checks the type too
            if family == socket.AF_INET:
                sock.setsockopt(_SOL_RAW, _ICMP_FILTER, struct.pack("=I", ~(1 << 0) & 0xFFFFFFFF))
            else:
                words = [0xFFFFFFFF] * 8
                words[_ECHO_REPLY_V6 >> 5] &= ~(1 << (_ECHO_REPLY_V6 & 31))
                sock.setsockopt(socket.IPPROTO_ICMPV6, _ICMP6_FILTER, struct.pack("=8I", *words))
    if not _LINUX_GENERIC:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def _open_socket(family: int, mode: str) -> tuple[socket.socket, bool] | str:
    """A (socket, is_raw) pair, or why none could be opened."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    kinds = {"auto": ("dgram", "raw"), "dgram": ("dgram",), "raw": ("raw",)}[mode]
    reason = NO_PERMISSION
    for kind in kinds:
        sock_type = socket.SOCK_RAW if kind == "raw" else socket.SOCK_DGRAM
        try:
            return socket.socket(family, sock_type, proto), kind == "raw"
        except PermissionError:
            continue
        except OSError as exc:
            reason = f"cannot open an ICMP socket: {exc.strerror or exc}"
    return reason


def _canonical(address: str) -> tuple[int, str, str] | None:
    """(family, the form replies report, the form to send to) for an IP literal."""
    try:
        packed = socket.inet_pton(socket.AF_INET, address)
    except OSError:
        pass
    else:
        key = socket.inet_ntop(socket.AF_INET, packed)
        return socket.AF_INET, key, key
    if ":" not in address:
        return None
    host, _, _scope = address.partition("%")  # replies report no scope
    try:
        packed = socket.inet_pton(socket.AF_INET6, host)
    except OSError:
        return None
    if packed[:12] == _V4_MAPPED:  # ::ffff:a.b.c.d is an IPv4 host
        key = socket.inet_ntop(socket.AF_INET, packed[12:])
        return socket.AF_INET, key, key
    return socket.AF_INET6, socket.inet_ntop(socket.AF_INET6, packed), address


def evaluate(params: IcmpParams, rtts_ns: list[int], error: str | None = None) -> CheckResult:
    """The check_ping verdict for `params.count` requests and the RTTs that came back."""
    count = params.count
    received = len(rtts_ns)
    loss = (count - received) * 100 // count  # check_ping truncates too
    pl = Perf(
        "pl",
        float(loss),
        "%",
        format(params.warn_loss_pct, "g"),
        format(params.crit_loss_pct, "g"),
        0.0,
        100.0,
    )
    if received == 0:
        detail = f": {error}" if error else ""
        return CheckResult(
            Status.CRITICAL, f"PING CRITICAL - host unreachable (100% loss){detail}", (pl,)
        )
    rta = sum(rtts_ns) / received / _NS_PER_MS
    if loss >= params.crit_loss_pct or rta >= params.crit_rta_ms:
        status = Status.CRITICAL
    elif loss >= params.warn_loss_pct or rta >= params.warn_rta_ms:
        status = Status.WARNING
    else:
        status = Status.OK
    rta_perf = Perf(
        "rta",
        round(rta, 6),
        "ms",
        format(params.warn_rta_ms, "g"),
        format(params.crit_rta_ms, "g"),
        0.0,
    )
    message = f"PING {status.name} - Packet loss = {loss}%, RTA = {rta:.2f} ms"
    return CheckResult(status, message, (rta_perf, pl))


def _unknown(reason: str) -> CheckResult:
    return CheckResult(Status.UNKNOWN, f"PING UNKNOWN - {reason}")


class IcmpCheck(BaseCheck):
    """Pings a target `count` times over the instance's shared ICMP sockets.

    `mode` is "auto" (ping socket, else raw), "dgram" or "raw"; the engine
    uses the default. Never raises for network failures: unanswered requests
    are loss, 100 % loss is CRITICAL, and missing privileges, unresolvable
    names and a missing IPv6 socket are UNKNOWN.
    """

    kind: ClassVar[str] = "icmp"
    Params: ClassVar[type[CheckParams]] = IcmpParams

    def __init__(self, mode: Literal["auto", "dgram", "raw"] = "auto") -> None:
        if mode not in ("auto", "dgram", "raw"):
            raise ValueError(f"mode must be 'auto', 'dgram' or 'raw', not {mode!r}")
        self._mode = mode
        self._endpoints: dict[int, _Endpoint] | None = None
        self._raw: dict[int, bool] = {}
        self._errors: dict[int, str] = {}

    @property
    def socket_kinds(self) -> dict[str, str]:
        """What `start()` opened per family, e.g. {"ipv4": "raw", "ipv6": "raw"}."""
        return {_FAMILY_NAMES[f]: "raw" if raw else "dgram" for f, raw in self._raw.items()}

    @property
    def socket_errors(self) -> dict[str, str]:
        """Why `start()` opened no socket for a family, e.g. {"ipv6": NO_PERMISSION}."""
        return {_FAMILY_NAMES[f]: reason for f, reason in self._errors.items()}

    def in_flight(self) -> int:
        """Requests waiting for a reply or a send slot, over all sockets."""
        return sum(ep.in_flight() for ep in (self._endpoints or {}).values())

    async def start(self, context: CheckContext | None = None) -> None:
        if self._endpoints is not None:
            return
        loop = asyncio.get_running_loop()
        self._endpoints = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            opened = _open_socket(family, self._mode)
            if isinstance(opened, str):
                self._errors[family] = opened
                continue
            sock, raw = opened
            try:
                self._endpoints[family] = _Endpoint(loop, sock, family, raw)
            except Exception:
                sock.close()
                raise
            self._raw[family] = raw

    async def close(self) -> None:
        endpoints, self._endpoints = self._endpoints, None
        for endpoint in (endpoints or {}).values():
            endpoint.close("ICMP check closed while waiting for replies")
        self._raw.clear()
        self._errors.clear()

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        p: IcmpParams = params
        endpoints = self._endpoints
        if endpoints is None:
            return _unknown("ICMP check not started")
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        literal = _canonical(target.address)
        if literal is None:
            resolved = await _resolve(target.address, timeout)
            if isinstance(resolved, str):
                return _unknown(resolved)
            literal = resolved
        family, address, dest = literal
        endpoint = endpoints.get(family)
        if endpoint is None:
            return _unknown(self._errors.get(family, "no ICMP socket for this address family"))

        probe = _Probe(address, dest, p.count, p.size, loop.create_future())
        interval = p.packet_interval
        if p.count > 1:
            interval = min(interval, timeout / (2 * (p.count - 1)))
        try:
            for i in range(p.count):
                endpoint.schedule(probe, t0 + i * interval)
            probe.deadline = loop.call_at(t0 + timeout, probe.finish)
            await probe.fut
        finally:
            endpoint.release(probe)
        if probe.aborted is not None:
            return _unknown(probe.aborted)
        return evaluate(p, probe.rtts, probe.error)


async def _resolve(name: str, timeout: float) -> tuple[int, str, str] | str:
    """Resolve a host name (A, then AAAA) to (family, address), or say why not."""
    try:
        async with asyncio.timeout(timeout):
            addresses: list[str] = await async_resolve(name)
    except TimeoutError:
        return f"timeout after {timeout:g} seconds resolving {name!r}"
    except (NameLookupError, OSError):
        return f"cannot resolve {name!r}"
    for address in addresses:
        literal = _canonical(address)
        if literal is not None:
            return literal
    return f"cannot resolve {name!r}"
