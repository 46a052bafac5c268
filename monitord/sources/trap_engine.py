"""pysnmp plumbing for the trap receiver (SNMPv3): engine, users, socket, drop reasons.

Everything that touches pysnmp's internals lives here, so that a pysnmp
upgrade breaks one module. pysnmp drops a message it cannot accept (bad
community, unknown v3 user, garbage) without telling the application; it
only increments an SNMP statistics counter. `DropCounters` reads those
counters after a datagram that delivered no notification, which is how a
drop gets its reason without parsing the packet twice.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pysnmp.carrier.asyncio.dgram import (  # type: ignore[import-untyped, unused-ignore]
    udp,
    udp6,
)
from pysnmp.entity import config, engine  # type: ignore[import-untyped, unused-ignore]
from pysnmp.entity.rfc3413 import ntfrcv  # type: ignore[import-untyped, unused-ignore]
from pysnmp.proto.api import v2c  # type: ignore[import-untyped, unused-ignore]

from monitord.config.model import TrapsConfig, TrapUser
from monitord.sources import SourceError

AUTH = {
    "md5": config.USM_AUTH_HMAC96_MD5,
    "sha": config.USM_AUTH_HMAC96_SHA,
    "sha224": config.USM_AUTH_HMAC128_SHA224,
    "sha256": config.USM_AUTH_HMAC192_SHA256,
    "sha384": config.USM_AUTH_HMAC256_SHA384,
    "sha512": config.USM_AUTH_HMAC384_SHA512,
}
PRIV = {
    "none": config.USM_PRIV_NONE,
    "des": config.USM_PRIV_CBC56_DES,
    "3des": config.USM_PRIV_CBC168_3DES,
    "aes": config.USM_PRIV_CFB128_AES,
    "aes192": config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "aes256": config.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "aes192c": config.USM_PRIV_CFB192_AES,
    "aes256c": config.USM_PRIV_CFB256_AES,
}
# A burst of traps (a switch stack rebooting) must wait in the kernel, not be
# dropped there; the kernel caps this at net.core.rmem_max.
RECEIVE_BUFFER = 4 * 1024 * 1024


def build_engine(traps: TrapsConfig) -> Any:
    """A pysnmp SnmpEngine holding the configured v3 users, with no transport
    yet. CPU-bound (~3 ms per v3 user and sender engine ID), so the caller
    runs it in a thread. Raises nothing for a valid config."""
    if traps.engine_id:
        eng = engine.SnmpEngine(snmpEngineID=v2c.OctetString(hexValue=traps.engine_id))
    else:
        eng = engine.SnmpEngine()
    # No communities here: v1/v2c never reach pysnmp (trap_wire reads them).
    senders = set(traps.engine_ids.values())
    for user in traps.users:
        _add_user(eng, user, sorted(senders | set(user.engine_ids)))
    return eng


def _add_user(eng: Any, user: TrapUser, engine_ids: Iterable[str]) -> None:
    auth, priv = AUTH[user.auth_protocol], PRIV[user.priv_protocol]
    # The passphrase → master key step hashes 1 MB; do it once per user, then
    # only localise the master key to each sender's engine ID.
    auth_key = config.AUTH_SERVICES[auth].hash_passphrase(user.auth_key.get_secret_value().encode())
    priv_key = None
    if user.priv_key is not None:
        priv_key = config.PRIV_SERVICES[priv].hash_passphrase(
            auth, user.priv_key.get_secret_value().encode()
        )
    # None = our own engine ID: v3 INFORMs are authoritative at the receiver.
    for engine_id in (None, *engine_ids):
        config.add_v3_user(
            eng,
            user.name,
            auth,
            auth_key,
            priv,
            priv_key,
            securityEngineId=v2c.OctetString(hexValue=engine_id) if engine_id else None,
            authKeyType=config.USM_KEY_TYPE_MASTER,
            privKeyType=config.USM_KEY_TYPE_MASTER,
        )


def receive_notifications(eng: Any, callback: Callable[..., None]) -> None:
    """Call `callback(engine, state_ref, ctx_engine_id, ctx_name, var_binds, ctx)`
    for every accepted TRAP (v1 ones converted to v2 form) and INFORM (after
    pysnmp has sent the acknowledgement)."""
    ntfrcv.NotificationReceiver(eng, callback)


def engine_id_of(eng: Any) -> str:
    """The engine's own snmpEngineID in hex, for the log (v3 inform senders need it)."""
    return str(eng.snmpEngineID.asOctets().hex())


def open_socket(listen: str) -> socket.socket:
    """A bound, non-blocking UDP socket for `listen` (`ip:port`, `[v6]:port`).
    Raises SourceError saying why (address in use, permission denied)."""
    host, _, port = listen.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise SourceError(f"cannot listen for traps on {listen!r}: {exc.strerror}") from exc
    sock.setblocking(False)
    return sock


class Gate(Protocol):
    """What the transport reports around pysnmp's handling of each datagram."""

    def intercept(self, datagram: bytes, address: str) -> tuple[bool, bytes | None]:
        """(handled, reply): True when the datagram was dealt with without pysnmp;
        `reply` (an inform's response) is then sent back to the sender."""
        ...

    def begin(self, address: str) -> None: ...

    def end(self) -> None: ...

    def failed(self, exc: Exception) -> None: ...


class _Gated:
    """Offers each datagram to `gate.intercept` first (v1/v2c, see trap_wire);
    the rest runs through pysnmp synchronously (instead of pysnmp's call_soon)
    between `gate.begin` and `gate.end`, so the receiver knows which datagram
    delivered a notification and which was dropped."""

    gate: Gate
    ready: Any  # asyncio.Future[None], set once the socket is attached
    _callback_function: Any

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if not self.ready.done():
            self.ready.set_result(None)

    transport: Any

    def datagram_received(self, datagram: bytes, address: Any) -> None:
        host = str(address[0]).removeprefix("::ffff:")  # an IPv4 sender on a v6 socket
        try:
            handled, reply = self.gate.intercept(datagram, host)
            if handled:
                if reply is not None and self.transport is not None:
                    self.transport.sendto(reply, address)
                return
            self.gate.begin(host)
            self._callback_function(self, address, datagram)
        except Exception as exc:  # the per-datagram boundary: one bad packet, not a dead loop
            self.gate.failed(exc)
        else:
            self.gate.end()


class GatedUdp(_Gated, udp.UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's IPv4 UDP transport with the gate around each datagram."""


class GatedUdp6(_Gated, udp6.Udp6AsyncioTransport):  # type: ignore[misc]
    """pysnmp's IPv6 UDP transport with the gate around each datagram."""


def attach(eng: Any, sock: socket.socket, gate: Gate, ready: Any) -> Any:
    """Register a gated transport on `sock` with the engine; `ready` resolves
    when asyncio has attached the socket. Returns the transport."""
    ipv6 = sock.family == socket.AF_INET6
    transport = GatedUdp6() if ipv6 else GatedUdp()
    transport.gate, transport.ready = gate, ready
    domain = udp6.DOMAIN_NAME if ipv6 else udp.DOMAIN_NAME
    config.add_transport(eng, domain, transport.open_server_mode(sock=sock))
    return transport


# Statistics counters pysnmp increments when it drops a message, by our reason.
_DROP_COUNTERS = {
    "malformed": (
        ("__SNMPv2-MIB", ("snmpInASNParseErrs", "snmpInBadVersions", "snmpInGenErrs")),
        ("__SNMP-MPD-MIB", ("snmpInvalidMsgs", "snmpUnknownSecurityModels")),
    ),
    "auth_failed": (
        ("__SNMPv2-MIB", ("snmpInBadCommunityNames",)),
        (
            "__SNMP-USER-BASED-SM-MIB",
            (
                "usmStatsUnknownUserNames",
                "usmStatsWrongDigests",
                "usmStatsDecryptionErrors",
                "usmStatsUnsupportedSecLevels",
            ),
        ),
    ),
    # A v3 inform sender first learns our engine ID and clock: not a notification.
    "discovery": (
        ("__SNMP-USER-BASED-SM-MIB", ("usmStatsUnknownEngineIDs", "usmStatsNotInTimeWindows")),
    ),
}


class DropCounters:
    """Why pysnmp dropped the last datagram, from its statistics counters.

    Only datagrams that delivered nothing are classified; those are the only
    ones that move these counters, so the totals seen after the previous drop
    are the totals before this one."""

    def __init__(self, eng: Any) -> None:
        builder = eng.get_mib_builder()
        self.groups: dict[str, list[Any]] = {}
        for reason, modules in _DROP_COUNTERS.items():
            self.groups[reason] = [
                instance
                for module, names in modules
                for instance in builder.import_symbols(module, *names)
            ]
        self.last = self._totals()

    def _totals(self) -> dict[str, int]:
        return {r: sum(int(i.syntax) for i in insts) for r, insts in self.groups.items()}

    def classify(self) -> str:
        """The reason of the drop just seen: malformed, auth_failed, discovery or
        dropped (anything else, e.g. a GET sent to the trap port)."""
        now = self._totals()
        moved = [r for r in self.groups if now[r] != self.last[r]]
        self.last = now
        return moved[0] if moved else "dropped"
