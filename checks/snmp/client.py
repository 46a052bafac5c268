"""SNMP requests with pysnmp 7 on asyncio: sessions, one transport per stack.

- v1/v2c go through `CommunityTransport` (checks/snmp/community.py): pysnmp's
  message objects and pyasn1's BER codec on one UDP socket, with no
  per-target registration, so first contact with N new devices costs O(N),
  not the O(N^2) of the v3arch engine's community table rebuild;
- v3 goes through one v3arch `SnmpEngine`, created on first v3 use, each
  (user, target, context) registered once and kept as a session.

Requests carry numeric OIDs and answers come back as raw values (no MIB
lookup on either side). pysnmp reports failures as values, not exceptions;
`SnmpError` carries them out with a message and a reason from
`monitord.errors.Reason`. Every request holds one slot of a semaphore, so at
most `max_in_flight` are outstanding: beyond what the CPU can decode per
timeout, extra requests would only expire unread in the socket buffer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.hlapi.v3arch.asyncio import SnmpEngine, UsmUserData
from pysnmp.hlapi.v3arch.asyncio import Udp6TransportTarget as V3Udp6Target
from pysnmp.hlapi.v3arch.asyncio import UdpTransportTarget as V3UdpTarget
from pysnmp.hlapi.v3arch.asyncio.lcd import CommandGeneratorLcdConfigurator
from pysnmp.proto import api, errind
from pysnmp.proto.rfc1902 import Null, ObjectName

from checks.snmp.community import CommunityTransport, encode
from checks.snmp.errors import V1, V2C, V3, SnmpError, indication_error, status_error, timeout_hint
from checks.snmp.oids import OID, format_oid
from checks.snmp.values import Missing, Var, plain_vars
from monitord.errors import Reason

__all__ = ["V1", "V2C", "V3", "Credentials", "Progress", "Session", "SnmpClient", "SnmpError"]

_NULL = Null("")
# A GETBULK/GETNEXT walk stops after this many requests even if the agent keeps
# answering inside the subtree (a broken agent repeating itself must not loop).
MAX_WALK_REQUESTS = 200


async def _resolve(host: str, port: int) -> tuple[int, tuple[Any, ...]]:
    """(address family, socket address) of a device; names resolve once per session."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if literal.version == 6:
            return socket.AF_INET6, (host, port, 0, 0)
        return socket.AF_INET, (host, port)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise SnmpError(f"cannot resolve {host!r}: {exc.strerror or exc}", Reason.NETWORK) from exc
    family, _, _, _, addr = infos[0]
    return family, addr


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a session authenticates with (secrets as plain text: never log this)."""

    version: int
    community: str = "public"
    user: str = ""
    auth_protocol: tuple[int, ...] | None = None
    auth_key: str | None = None
    priv_protocol: tuple[int, ...] | None = None
    priv_key: str | None = None
    context: str = ""

    def __repr__(self) -> str:  # the dataclass repr would print the secrets
        return f"Credentials(version={self.version}, user={self.user!r})"


@dataclass(slots=True)
class Session:
    """One device as seen with one set of credentials, timeout and retries."""

    where: str  # "127.0.0.1:161", for messages
    creds: Credentials
    tries: int
    try_timeout: float
    family: int  # socket.AF_INET or AF_INET6
    addr: tuple[Any, ...]  # the socket address requests go to
    community: bytes = b""  # v1/v2c
    auth: Any = None  # v3: UsmUserData
    target: Any = None  # v3: the engine's transport target
    addr_name: str | None = None  # v3: the engine's target name
    answered: bool = False  # got at least one authentic response
    used: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class Progress:
    """Where a check's requests are, so a timeout can say what it waited for."""

    waiting_for_slot: bool = False
    requests: int = 0


Answer = tuple[Any, int, int, Sequence[Any]]
"""errorIndication (None when answered), error-status, error-index, raw varbinds."""
GET, WALK = "get", "walk"


class SnmpClient:
    """Sessions, the shared transport/engine and the in-flight bound.

    `open` must run inside the event loop that will use the client (sockets
    and pysnmp's transports bind to the running loop; used from another loop
    they time out silently). `close` releases the sockets; requests still in
    flight end as unanswered.
    """

    def __init__(self, max_in_flight: int = 64, session_ttl: float = 3600.0) -> None:
        self.max_in_flight = max_in_flight
        self.loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._udp: CommunityTransport | None = None
        self._engine: SnmpEngine | None = None
        self._lcd = CommandGeneratorLcdConfigurator()
        self._get3 = cmdgen.GetCommandGenerator()
        self._bulk3 = cmdgen.BulkCommandGeneratorSingleRun()
        self._sessions: dict[tuple[str, int, Credentials, float, int], Session] = {}
        self._session_ttl = session_ttl
        self._next_sweep = 0.0

    async def open(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self._udp = CommunityTransport()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()  # requests in flight end as unanswered
            self._udp = None
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None
        self._sessions.clear()
        self.loop = None

    @property
    def in_flight(self) -> int:
        """Requests holding a slot now."""
        if self._slots is None:
            return 0
        return self.max_in_flight - self._slots._value

    # Sessions ---------------------------------------------------------------

    async def session(
        self, host: str, port: int, creds: Credentials, try_timeout: float, retries: int
    ) -> Session:
        """The cached session for this device and credentials (created on first use).

        Raises SnmpError (network) when the host name does not resolve.
        """
        key = (host, port, creds, try_timeout, retries)
        found = self._sessions.get(key)
        now = time.monotonic()
        if found is not None:
            found.used = now
            return found
        if now >= self._next_sweep:
            self._sweep(now)
        made = await self._new_session(host, port, creds, try_timeout, retries)
        self._sessions[key] = made
        return made

    def _sweep(self, now: float) -> None:
        horizon = now - self._session_ttl
        self._sessions = {k: s for k, s in self._sessions.items() if s.used >= horizon}
        self._next_sweep = now + self._session_ttl / 4

    async def _new_session(
        self, host: str, port: int, creds: Credentials, try_timeout: float, retries: int
    ) -> Session:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        family, addr = await _resolve(host, port)
        tries = retries + 1
        if creds.version != V3:
            community = creds.community.encode()
            return Session(where, creds, tries, try_timeout, family, addr, community)
        cls = V3Udp6Target if family == socket.AF_INET6 else V3UdpTarget
        # `create()` would resolve the name again; this is its own construction.
        target = cls.__new__(cls)
        target.transport_address = addr
        target.__init__(timeout=try_timeout, retries=retries)
        auth = UsmUserData(
            creds.user,
            authKey=creds.auth_key,
            privKey=creds.priv_key,
            authProtocol=creds.auth_protocol,
            privProtocol=creds.priv_protocol,
        )
        engine = self._v3_engine()
        addr_name, _ = self._lcd.configure(engine, auth, target, creds.context.encode())
        return Session(
            where,
            creds,
            tries,
            try_timeout,
            family,
            addr,
            auth=auth,
            target=target,
            addr_name=addr_name,
        )

    def _v3_engine(self) -> SnmpEngine:
        if self._engine is None:
            self._engine = SnmpEngine()
        return self._engine

    # Requests ---------------------------------------------------------------

    async def get(self, s: Session, oids: Sequence[OID], progress: Progress) -> list[Var]:
        """GET `oids` in one PDU; raises SnmpError for anything but a clean answer."""
        status, index, got = await self._request(s, GET, tuple(oids), 0, 0, progress)
        if status:
            raise status_error(s, status, index, oids)
        return got

    async def walk(
        self,
        s: Session,
        scalars: Sequence[OID],
        columns: Sequence[OID],
        max_repetitions: int,
        progress: Progress,
    ) -> tuple[list[Var], dict[OID, list[tuple[OID, Var]]]]:
        """Walk table `columns` side by side with GETBULK (GETNEXT on SNMPv1).

        `scalars` ride along as non-repeaters in the first request: pass the
        object without its `.0` (e.g. sysUpTime) and the agent returns the
        instance after it. Each column stops at the end of its subtree.
        Returns the scalars and, per column, (row index, var) in agent order.
        """
        rows: dict[OID, list[tuple[OID, Var]]] = {root: [] for root in columns}
        cursors: dict[OID, OID] = {root: root for root in columns}
        got_scalars: list[Var] = []
        first = True
        while cursors:
            if progress.requests >= MAX_WALK_REQUESTS:
                raise SnmpError(
                    f"walk stopped after {MAX_WALK_REQUESTS} requests (agent keeps answering)",
                    Reason.SERVER_ERROR,
                )
            head = tuple(scalars) if first else ()
            active = list(cursors)
            oids = (*head, *cursors.values())
            status, index, got = await self._request(
                s, WALK, oids, len(head), max_repetitions, progress
            )
            if status == 2 and s.creds.version == V1 and index > len(head):
                # SNMPv1 ends a GETNEXT walk with noSuchName on the column past its end.
                del cursors[active[index - 1 - len(head)]]
                continue
            if status:
                raise status_error(s, status, index, oids)
            if first:
                got_scalars, got = got[: len(head)], got[len(head) :]
                first = False
            _advance(active, got, rows, cursors)
        return got_scalars, rows

    async def _request(
        self,
        s: Session,
        op: str,
        oids: tuple[OID, ...],
        non_repeaters: int,
        max_repetitions: int,
        progress: Progress,
    ) -> tuple[int, int, list[Var]]:
        """Send one PDU and wait: (error-status, error-index, vars).

        Raises SnmpError for an errorIndication (no answer, USM reports).
        """
        slots = self._slots
        if slots is None or self.loop is None or self._udp is None:
            raise SnmpError("SNMP client is not open", Reason.CLIENT_ERROR)
        progress.waiting_for_slot = True
        async with slots:
            progress.waiting_for_slot = False
            progress.requests += 1
            if s.creds.version == V3:
                answer = await self._v3(s, op, oids, non_repeaters, max_repetitions)
            else:
                answer = await self._v1(s, op, oids, non_repeaters, max_repetitions)
        indication, status, index, varbinds = answer
        if indication is not None:
            timed_out = isinstance(indication, errind.RequestTimedOut)
            raise indication_error(s, indication, timed_out and self.peer_discovered(s))
        s.answered = True
        return status, index, plain_vars(varbinds)

    async def _v1(
        self, s: Session, op: str, oids: tuple[OID, ...], non_repeaters: int, reps: int
    ) -> Answer:
        assert self._udp is not None
        version, community = s.creds.version, s.community
        render: Callable[[int], bytes]
        if op == GET:
            # A GET differs between polls only in its request-id: encode it once.
            key = (version, community, oids)
            render = self._udp.cached_template(
                key, lambda rid: encode(version, community, _pdu(version, op, oids, 0, 0, rid))
            ).render
        else:
            render = lambda rid: encode(  # noqa: E731
                version, community, _pdu(version, op, oids, non_repeaters, reps, rid)
            )
        pdu = await self._udp.request(s.family, s.addr, render, s.try_timeout, s.tries)
        if pdu is None:
            return errind.requestTimedOut, 0, 0, ()
        api_pdu = api.PROTOCOL_MODULES[version].apiPDU
        return (
            None,
            int(api_pdu.get_error_status(pdu)),
            int(api_pdu.get_error_index(pdu, muteErrors=True)),
            api_pdu.get_varbinds(pdu),
        )

    async def _v3(
        self, s: Session, op: str, oids: tuple[OID, ...], non_repeaters: int, reps: int
    ) -> Answer:
        assert self.loop is not None
        engine = self._v3_engine()
        context = s.creds.context.encode()
        varbinds = [(ObjectName(oid), _NULL) for oid in oids]
        waiter: asyncio.Future[Answer] = self.loop.create_future()
        if op == GET:
            self._get3.send_varbinds(engine, s.addr_name, None, context, varbinds, _v3_done, waiter)
        else:
            self._bulk3.send_varbinds(
                engine,
                s.addr_name,
                None,
                context,
                non_repeaters,
                reps,
                varbinds,
                _v3_done,
                waiter,
            )
        return await waiter

    def timeout_hint(self, s: Session) -> str:
        """What an unanswered request to `s` most likely means, for the message."""
        return timeout_hint(s, self.peer_discovered(s))

    def peer_discovered(self, s: Session) -> bool:
        """True when the v3 engine knows the agent's engine ID (discovery answered)."""
        if self._engine is None or s.creds.version != V3:
            return False
        model = self._engine.message_processing_subsystems.get(3)
        if model is None:
            return False
        engine_id = model.get_peer_engine_info(
            s.target.TRANSPORT_DOMAIN, s.target.transport_address
        )
        return engine_id[0] is not None


def _pdu(version: int, op: str, oids: tuple[OID, ...], non_rep: int, reps: int, rid: int) -> Any:
    """A request PDU: GET, GETBULK, or GETNEXT for walks over SNMPv1 (no GETBULK there)."""
    proto = api.PROTOCOL_MODULES[version]
    if op == GET:
        pdu = proto.GetRequestPDU()
    elif version == V1:
        pdu = proto.GetNextRequestPDU()
    else:
        pdu = proto.GetBulkRequestPDU()
        proto.apiBulkPDU.set_defaults(pdu)
        proto.apiBulkPDU.set_non_repeaters(pdu, non_rep)
        proto.apiBulkPDU.set_max_repetitions(pdu, reps)
    if op == GET or version == V1:
        proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_request_id(pdu, rid)
    proto.apiPDU.set_varbinds(pdu, [(ObjectName(oid), _NULL) for oid in oids])
    return pdu


def _v3_done(
    _engine: Any,
    _handle: Any,
    indication: Any,
    status: Any,
    index: Any,
    varbinds: Sequence[Any],
    waiter: asyncio.Future[Answer],
) -> None:
    if not waiter.done():
        waiter.set_result((indication, int(status or 0), int(index or 0), varbinds))


def _advance(
    active: list[OID],
    got: list[Var],
    rows: dict[OID, list[tuple[OID, Var]]],
    cursors: dict[OID, OID],
) -> None:
    """Take one GETBULK answer (row-major over `active` columns) into `rows`.

    A column is finished when its varbind leaves the column's subtree or is
    endOfMibView; otherwise its cursor moves to the last OID seen. An agent
    that answers with fewer rows than asked (message size) just gets asked
    again from there. OIDs that do not increase are an agent bug and an error
    (following them could loop forever).
    """
    width = len(active)
    for k, var in enumerate(got):
        root = active[k % width]
        if root not in cursors:
            continue
        oid, value, _ = var
        if value is Missing.END_OF_MIB_VIEW or len(oid) <= len(root) or oid[: len(root)] != root:
            del cursors[root]
            continue
        if oid <= cursors[root]:
            raise SnmpError(
                f"agent returned OIDs out of order in {format_oid(root)}", Reason.SERVER_ERROR
            )
        cursors[root] = oid
        rows[root].append((oid[len(root) :], var))
    if not got:
        cursors.clear()
