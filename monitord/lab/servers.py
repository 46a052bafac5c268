"""The simulated devices' services: an SSH-like TCP banner and a tiny HTTP/1.1 server.

Each device gets two listening sockets bound to its own 127.x.y.z address:
- TCP (default port 8022): writes `SSH-2.0-OpenSSH_9.2p1 lab\\r\\n`, then ends
  its side of the connection (FIN) and closes once the client does;
- HTTP (default port 8080): answers any request with 200 `ok <device name>`
  (Content-Length set; keep-alive unless the client says `Connection: close`
  or speaks HTTP/1.0 without `keep-alive`).

The protocols are bare `asyncio.Protocol`s on a listening socket of our own
(`_Listener`): no framework, responses pre-built per device, so thousands of
listeners cost nothing while idle and a request costs a few tens of microseconds.

Faults arrive as an `Effect` per device (see `faults.py`):
- `down`: both listening sockets are closed and open connections reset, so
  connecting is refused;
- `service_down`: only the HTTP listener is closed (TCP still answers);
- `http_error`: HTTP answers 503;
- `slow`: HTTP answers after `slow_ms`.
Healing re-opens the listeners on the same address and port.

Ping is not simulated: the kernel answers ICMP echo for every 127.x address,
so a `down` device still answers ping. A device that fails ping needs its
address in a network namespace that can be cut off; that is a later,
optional hook and not built here.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import cast

from monitord.lab.faults import HEALTHY, Effect

BANNER = b"SSH-2.0-OpenSSH_9.2p1 lab\r\n"
MAX_HEAD = 16 * 1024  # a request head longer than this gets 431 and a close
BANNER_LINGER = 5.0  # seconds a banner connection may stay open after our FIN
HTTP_IDLE = 60.0  # seconds an idle keep-alive connection is kept
SWEEP_EVERY = 2.0
REBIND_TRIES = 100  # uvloop closes a listener on the next loop turn: rebinding may race it


log = logging.getLogger(__name__)

ACCEPT_PAUSE = 1.0  # seconds a listener stops accepting when out of descriptors


class LabError(Exception):
    """The lab cannot do what was asked (a port is taken, a shard died, ...)."""


class _Counters:
    __slots__ = ("http_requests", "tcp_connections")

    def __init__(self) -> None:
        self.http_requests = 0
        self.tcp_connections = 0


class _Device:
    """Mutable per-device state shared by the device's listeners and connections."""

    __slots__ = (
        "address",
        "counters",
        "effect",
        "http_conns",
        "http_live",
        "http_server",
        "name",
        "responses",
        "tcp_conns",
        "tcp_live",
        "tcp_server",
    )

    def __init__(self, name: str, address: str, counters: _Counters) -> None:
        self.name = name
        self.address = address
        self.counters = counters
        self.effect = HEALTHY
        self.tcp_server: _Listener | None = None
        self.http_server: _Listener | None = None
        # Whether the listener is meant to be open: a connection accepted just before
        # its listener closed reaches connection_made after the close swept the open
        # ones, and must go too (its socket would otherwise outlive a stopped lab).
        self.tcp_live = self.http_live = False
        self.tcp_conns: set[_BannerProtocol] = set()
        self.http_conns: set[_HttpProtocol] = set()
        self.responses: dict[tuple[bool, bool, bool], bytes] = {}

    def response(self, keep_alive: bool, head_only: bool) -> bytes:
        """The full response for the current effect, built once per variant."""
        key = (self.effect.http_error, keep_alive, head_only)
        cached = self.responses.get(key)
        if cached is None:
            cached = self.responses[key] = _build_response(self.name, *key)
        return cached


def _build_response(name: str, error: bool, keep_alive: bool, head_only: bool) -> bytes:
    status, body = (b"503 Service Unavailable", b"unavailable ") if error else (b"200 OK", b"ok ")
    body += name.encode()
    head = (
        b"HTTP/1.1 " + status + b"\r\n"
        b"Server: monitord-lab\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: " + (b"keep-alive" if keep_alive else b"close") + b"\r\n\r\n"
    )
    return head if head_only else head + body


class _BannerProtocol(asyncio.Protocol):
    __slots__ = ("_banner", "_dev", "_transport", "opened")

    def __init__(self, dev: _Device, banner: bytes) -> None:
        self._dev = dev
        self._banner = banner
        self._transport: asyncio.Transport | None = None
        self.opened = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t = self._transport = cast(asyncio.Transport, transport)
        if not self._dev.tcp_live:  # accepted just before the listener closed
            t.abort()
            return
        self.opened = asyncio.get_running_loop().time()
        self._dev.tcp_conns.add(self)
        self._dev.counters.tcp_connections += 1
        t.write(self._banner)
        # FIN rather than close: a close with the client's own banner unread
        # in our receive buffer would send RST, which may cost it ours.
        t.write_eof()

    def eof_received(self) -> bool:
        return False  # the client is done too: close

    def connection_lost(self, exc: Exception | None) -> None:
        self._dev.tcp_conns.discard(self)

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class _HttpProtocol(asyncio.Protocol):
    """HTTP/1.1, one request at a time (pipelined requests wait their turn)."""

    __slots__ = ("_buf", "_busy", "_dev", "_skip", "_timer", "_transport", "last_active")

    def __init__(self, dev: _Device) -> None:
        self._dev = dev
        self._transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._skip = 0  # request body bytes still to discard
        self._busy = False  # a delayed ("slow") answer is pending
        self._timer: asyncio.TimerHandle | None = None
        self.last_active = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if not self._dev.http_live:  # accepted just before the listener closed
            self._transport.abort()
            return
        self.last_active = asyncio.get_running_loop().time()
        self._dev.http_conns.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._dev.http_conns.discard(self)
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    @property
    def busy(self) -> bool:
        return self._busy

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self.last_active = asyncio.get_running_loop().time()
        if not self._busy:
            self._serve()

    def _serve(self) -> None:
        buf = self._buf
        while self._transport is not None and not self._transport.is_closing():
            if self._skip:
                n = min(self._skip, len(buf))
                del buf[:n]
                self._skip -= n
                if self._skip:
                    return
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    self._reject(b"431 Request Header Fields Too Large")
                return
            request = _parse_head(bytes(buf[:end]))
            del buf[: end + 4]
            if request is None:
                self._reject(b"400 Bad Request")
                return
            keep_alive, self._skip, head_only = request
            if self._dev.effect.slow_ms:
                self._busy = True
                delay = self._dev.effect.slow_ms / 1000
                self._timer = asyncio.get_running_loop().call_later(
                    delay, self._answer_late, keep_alive, head_only
                )
                return
            self._answer(keep_alive, head_only)

    def _answer(self, keep_alive: bool, head_only: bool) -> None:
        assert self._transport is not None
        self._transport.write(self._dev.response(keep_alive, head_only))
        self._dev.counters.http_requests += 1
        if not keep_alive:
            self._transport.close()

    def _answer_late(self, keep_alive: bool, head_only: bool) -> None:
        self._timer = None
        self._busy = False
        if self._transport is None or self._transport.is_closing():
            return
        self._answer(keep_alive, head_only)
        self._serve()

    def _reject(self, status: bytes) -> None:
        assert self._transport is not None
        self._transport.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        self._transport.close()


def _parse_head(head: bytes) -> tuple[bool, int, bool] | None:
    """(keep_alive, body_length, is_head) of a request head, None if malformed
    or chunked (which this server does not read)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        return None
    connection, length = b"", 0
    for line in lines[1:]:
        key, sep, value = line.partition(b":")
        key = key.strip().lower()
        if not sep or key == b"transfer-encoding":
            return None
        if key == b"connection":
            connection = value.strip().lower()
        elif key == b"content-length":
            length = int(value) if value.strip().isdigit() else -1
            if length < 0:
                return None
    if parts[2] == b"HTTP/1.0":
        keep_alive = b"keep-alive" in connection
    else:
        keep_alive = b"close" not in connection
    return keep_alive, length, parts[0] == b"HEAD"


def listening_socket(address: str, port: int, backlog: int) -> socket.socket:
    """A bound, listening, non-blocking TCP socket (SO_REUSEADDR); closed if binding fails."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class _Listener:
    """A listening socket whose connections become `factory`'s protocols.

    Not `loop.create_server`: on Python 3.11 a connection accepted in the loop turn
    before `Server.close()` becomes a transport whose `Server._attach()` asserts,
    leaving it half made with its socket open past the lab's stop (fixed in 3.12).
    Here such a late connection is made like any other and its protocol, finding
    its listener gone, aborts it.
    """

    __slots__ = ("_backlog", "_factory", "_loop", "_pending", "_sock")

    def __init__(
        self, sock: socket.socket, factory: Callable[[], asyncio.Protocol], backlog: int
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock: socket.socket | None = sock
        self._factory = factory
        self._backlog = backlog
        self._pending: set[asyncio.Task[object]] = set()
        self._loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(self._backlog):
            if self._sock is None:
                return
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors: pause instead of spinning
                log.warning("lab listener cannot accept: %s", exc)
                self._loop.remove_reader(self._sock.fileno())
                self._loop.call_later(ACCEPT_PAUSE, self._resume)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
            self._pending.add(task)
            task.add_done_callback(self._made)

    def _made(self, task: asyncio.Task[object]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("lab connection failed: %s", task.exception())

    def _resume(self) -> None:
        if self._sock is not None:
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def close(self) -> None:
        if self._sock is not None:
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None


class DeviceServers:
    """The listeners of a set of devices, in the running event loop.

    `start()` binds every device's TCP and HTTP listener (raises LabError
    naming the address if one cannot be bound, after closing the rest);
    `apply()` switches devices to new effects; `stop()` closes everything,
    connections included. Never raises for a request a client sends.
    """

    def __init__(
        self,
        devices: Iterable[tuple[str, str]],
        *,
        tcp_port: int = 8022,
        http_port: int = 8080,
        banner: bytes = BANNER,
        backlog: int = 128,
    ) -> None:
        self._counters = _Counters()
        self._devices = {name: _Device(name, addr, self._counters) for name, addr in devices}
        self._tcp_port, self._http_port = tcp_port, http_port
        self._banner, self._backlog = banner, backlog
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            for dev in self._devices.values():
                await self._open_tcp(dev, retry=False)
                await self._open_http(dev, retry=False)
        except BaseException:
            self._close_all()
            raise
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def apply(self, effects: Mapping[str, Effect]) -> None:
        """Give each named device its new effect. Raises LabError for a name
        this instance does not serve (before changing anything) or a failed rebind."""
        unknown = [name for name in effects if name not in self._devices]
        if unknown:
            raise LabError(f"not served here: {', '.join(map(repr, unknown[:5]))}")
        for name, effect in effects.items():
            dev = self._devices[name]
            dev.effect = effect
            if not effect.http_open:
                self._close_http(dev)
            if not effect.tcp_open:
                self._close_tcp(dev)
            if effect.tcp_open and dev.tcp_server is None:
                await self._open_tcp(dev, retry=True)
            if effect.http_open and dev.http_server is None:
                await self._open_http(dev, retry=True)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        self._close_all()
        # Let the aborted transports run connection_lost and drop their sockets, and
        # connections accepted just before the close reach connection_made (which
        # aborts them, the listener being gone): an accept takes a few loop turns to
        # become a transport, and one left half-made is a socket leaked past stop().
        for _ in range(10):
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)

    async def stats(self) -> dict[str, int]:
        """Counters since start: requests and connections served, listeners open."""
        devs = self._devices.values()
        return {
            "devices": len(self._devices),
            "listeners": sum(
                (d.tcp_server is not None) + (d.http_server is not None) for d in devs
            ),
            "http_requests": self._counters.http_requests,
            "tcp_connections": self._counters.tcp_connections,
            "open_connections": sum(len(d.tcp_conns) + len(d.http_conns) for d in devs),
        }

    async def _open_tcp(self, dev: _Device, *, retry: bool) -> None:
        factory = functools.partial(_BannerProtocol, dev, self._banner)
        dev.tcp_live = True
        dev.tcp_server = await self._listen(dev.address, self._tcp_port, factory, retry)

    async def _open_http(self, dev: _Device, *, retry: bool) -> None:
        factory = functools.partial(_HttpProtocol, dev)
        dev.http_live = True
        dev.http_server = await self._listen(dev.address, self._http_port, factory, retry)

    async def _listen(
        self, address: str, port: int, factory: Callable[[], asyncio.Protocol], retry: bool
    ) -> _Listener:
        sock = await self._bind(address, port, REBIND_TRIES if retry else 1)
        try:
            return _Listener(sock, factory, self._backlog)
        except BaseException:
            sock.close()
            raise

    async def _bind(self, address: str, port: int, tries: int) -> socket.socket:
        for attempt in range(1, tries + 1):
            try:
                return listening_socket(address, port, self._backlog)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or attempt == tries:
                    raise LabError(f"cannot listen on {address}:{port}: {exc.strerror}") from exc
            await asyncio.sleep(0.01)
        raise LabError(f"cannot listen on {address}:{port}: no attempt made")

    def _close_tcp(self, dev: _Device) -> None:
        dev.tcp_live = False
        if dev.tcp_server is not None:
            dev.tcp_server.close()
            dev.tcp_server = None
        for conn in list(dev.tcp_conns):
            conn.abort()

    def _close_http(self, dev: _Device) -> None:
        dev.http_live = False
        if dev.http_server is not None:
            dev.http_server.close()
            dev.http_server = None
        for conn in list(dev.http_conns):
            conn.abort()

    def _close_all(self) -> None:
        for dev in self._devices.values():
            self._close_tcp(dev)
            self._close_http(dev)

    async def _sweep_forever(self) -> None:
        """Close banner connections the client never closed and idle keep-alives,
        so a careless client cannot pile up file descriptors."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            now = loop.time()
            for dev in self._devices.values():
                for tcp in [c for c in dev.tcp_conns if now - c.opened > BANNER_LINGER]:
                    tcp.abort()
                for http in [
                    c for c in dev.http_conns if not c.busy and now - c.last_active > HTTP_IDLE
                ]:
                    http.abort()
