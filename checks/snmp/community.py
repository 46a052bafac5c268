"""SNMPv1/v2c requests over one UDP socket per address family.

Messages are pysnmp's own protocol objects (`pysnmp.proto.api`), encoded and
decoded with pyasn1 as pysnmp does; only the transport is ours. Measured
against pysnmp's v1arch `SnmpDispatcher` (shared/docs/snmp.md and
bench/snmp.py), per 3-OID GET the dispatcher spent ~25 % of its CPU building
and BER-encoding a request that differs between polls only in its
request-id, and ~7 % decoding each response's version twice. Here a GET is
encoded once per (version, community, OIDs) into a template and each request
splices in a fresh request-id, and timeouts are exact per try instead of on
a 0.1 s timer. There is no per-target registration at all, so first contact
with N devices costs O(N).

Responses are matched by request-id and must come from the address the
request went to.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto import api

# Request-ids in this range always encode as exactly 4 content bytes, so a
# template's id can be replaced in place.
_RID_LOW, _RID_HIGH = 1 << 23, (1 << 31) - 1
_RECV_BUFFER = 1 << 20


def encode(version: int, community: bytes, pdu: Any) -> bytes:
    """BER bytes of a v1 (0) or v2c (1) message carrying `pdu`."""
    proto = api.PROTOCOL_MODULES[version]
    msg = proto.Message()
    proto.apiMessage.set_defaults(msg)
    proto.apiMessage.set_community(msg, community)
    proto.apiMessage.set_pdu(msg, pdu)
    data: bytes = encoder.encode(msg)
    return data


@dataclass(frozen=True, slots=True)
class Template:
    """An encoded request whose 4-byte request-id is `prefix | id | suffix`."""

    prefix: bytes
    suffix: bytes

    def render(self, request_id: int) -> bytes:
        return self.prefix + request_id.to_bytes(4, "big") + self.suffix


def template(build: Callable[[int], bytes]) -> Template:
    """Find where the request-id sits by encoding with two ids that differ."""
    a, b = build(_RID_HIGH), build(_RID_HIGH - 1)
    diff = next(i for i in range(len(a)) if a[i] != b[i])  # the id's last byte
    return Template(a[: diff - 3], a[diff + 1 :])


def message_version(data: bytes) -> int | None:
    """The version field of a BER SNMP message (0 v1, 1 v2c, 3 v3), or None."""
    if len(data) < 5 or data[0] != 0x30:
        return None
    head = 2 if data[1] < 0x80 else 2 + (data[1] & 0x7F)
    if data[head : head + 2] != b"\x02\x01":
        return None
    return data[head + 2]


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Any]
    addr: tuple[Any, ...]
    data: bytes
    try_timeout: float
    tries_left: int
    endpoint: _Endpoint
    timer: asyncio.TimerHandle | None = None


class _Endpoint(asyncio.DatagramProtocol):
    """One unconnected UDP socket; hands every datagram to the transport."""

    def __init__(self, owner: CommunityTransport) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECV_BUFFER)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.owner.received(data, addr)

    def error_received(self, exc: Exception) -> None:
        return None  # ICMP errors on an unconnected socket name no request: let it time out


class CommunityTransport:
    """Sends v1/v2c requests and resolves them with the response PDU or None (no answer)."""

    def __init__(self) -> None:
        self._pending: dict[int, _Pending] = {}
        self._endpoints: dict[int, _Endpoint] = {}
        self._templates: dict[tuple[Any, ...], Template] = {}

    async def _endpoint(self, family: int) -> _Endpoint:
        found = self._endpoints.get(family)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        local = ("::", 0) if family == socket.AF_INET6 else ("0.0.0.0", 0)
        endpoint = _Endpoint(self)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: endpoint, local_addr=local, family=family
        )
        winner = self._endpoints.setdefault(family, endpoint)
        if winner is not endpoint:  # a concurrent first request made one meanwhile
            transport.close()
        return winner

    def close(self) -> None:
        for pending in self._pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
            if not pending.future.done():
                pending.future.set_result(None)
        self._pending.clear()
        for endpoint in self._endpoints.values():
            if endpoint.transport is not None:
                endpoint.transport.close()
        self._endpoints.clear()

    def cached_template(self, key: tuple[Any, ...], build: Callable[[int], bytes]) -> Template:
        """The template for `key`, built once with `build(request_id)`."""
        found = self._templates.get(key)
        if found is None:
            found = self._templates[key] = template(build)
        return found

    async def request(
        self,
        family: int,
        addr: tuple[Any, ...],
        render: Callable[[int], bytes],
        try_timeout: float,
        tries: int,
    ) -> Any:
        """Send `render(request_id)` to `addr` up to `tries` times; the response PDU or None."""
        endpoint = await self._endpoint(family)
        loop = asyncio.get_running_loop()
        request_id = random.randint(_RID_LOW, _RID_HIGH)
        while request_id in self._pending:
            request_id = random.randint(_RID_LOW, _RID_HIGH)
        pending = _Pending(
            loop.create_future(), addr, render(request_id), try_timeout, tries - 1, endpoint
        )
        self._pending[request_id] = pending
        self._send(request_id, pending, loop)
        try:
            return await pending.future
        finally:
            if self._pending.get(request_id) is pending:  # cancelled: forget it
                del self._pending[request_id]
                if pending.timer is not None:
                    pending.timer.cancel()

    def _send(self, request_id: int, p: _Pending, loop: asyncio.AbstractEventLoop) -> None:
        if p.endpoint.transport is None or p.endpoint.transport.is_closing():
            p.future.set_result(None)
            return
        p.endpoint.transport.sendto(p.data, p.addr)
        p.timer = loop.call_later(p.try_timeout, self._expired, request_id, p)

    def _expired(self, request_id: int, p: _Pending) -> None:
        if self._pending.get(request_id) is not p:
            return
        if p.tries_left > 0:
            p.tries_left -= 1
            self._send(request_id, p, asyncio.get_running_loop())
            return
        del self._pending[request_id]
        if not p.future.done():
            p.future.set_result(None)

    def received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        version = message_version(data)
        if version not in (0, 1):
            return
        proto = api.PROTOCOL_MODULES[version]
        try:
            msg, _ = decoder.decode(data, asn1Spec=proto.Message())
            pdu = proto.apiMessage.get_pdu(msg)
            request_id = int(proto.apiPDU.get_request_id(pdu))
        except (PyAsn1Error, ValueError, TypeError):
            return  # not an SNMP message we can read: ignore it like an agent would
        p = self._pending.get(request_id)
        if p is None or p.addr[:2] != addr[:2]:
            return  # late (after a retry answered), or not from the device asked
        del self._pending[request_id]
        if p.timer is not None:
            p.timer.cancel()
        if not p.future.done():
            p.future.set_result(pdu)
