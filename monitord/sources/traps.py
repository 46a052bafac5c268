"""The SNMP trap and inform receiver: an event source in the daemon's loop.

v1/v2c messages are read by `trap_wire` (a strict BER reader: 0.08 instead
of 0.95 CPU-ms per trap through pysnmp, bench/traps.py) and their
communities checked here; SNMPv3 goes through pysnmp (`trap_engine`), which
authenticates users, answers informs and calls back once per notification.
Either way the trap is decoded, its device found by the sender's address,
and the mapped events (`trap_rules`) handed straight to the sink, which only
appends to a batch: no queue, no task, nothing that can back up in here.

Nothing vanishes: every datagram is counted once in
`monitord_traps_received_total{result}`: `mapped` and `unmapped` (a known
device; the latter becomes an INFO event), `unknown_source`, `auth_failed`
(wrong community or v3 credentials), `malformed`, `discovery` (v3 inform
engine-ID discovery), `dropped` (no notification, e.g. a GET) and `error`
(a bug while handling one). Problems are logged at most once per reason and
sender per hour, with the count seen since the previous line.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter

from correlator.events import Event
from monitord.clock import Clock
from monitord.config.model import TrapsConfig
from monitord.inventory import Device, Inventory
from monitord.sources import trap_wire
from monitord.sources.trap_rules import Trap, TrapMapper

if TYPE_CHECKING:
    from monitord.sources.trap_engine import DropCounters

log = logging.getLogger(__name__)

RESULTS = (
    "mapped",
    "unmapped",
    "unknown_source",
    "auth_failed",
    "malformed",
    "discovery",
    "dropped",
    "error",
)
_LEVELS = {
    "unknown_source": logging.WARNING,
    "auth_failed": logging.WARNING,
    "malformed": logging.WARNING,
    "dropped": logging.INFO,
    "error": logging.ERROR,
}
_TEXT = {
    "unknown_source": "trap from an address that is no known device",
    "auth_failed": "snmp message with a wrong community or v3 credentials",
    "malformed": "malformed snmp message dropped",
    "dropped": "snmp message that is no notification dropped",
    "error": "trap handling failed",
}
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"  # v1 agent-addr, or the original sender via a proxy
SNMP_TRAP_COMMUNITY = "1.3.6.1.6.3.18.1.4.0"  # v1 traps: the community itself, never kept
LOG_WINDOW = 3600.0


class TrapMetrics:
    """The receiver's counters, on the App's registry, every result pre-created at 0."""

    def __init__(self, registry: CollectorRegistry) -> None:
        counter = Counter(
            "monitord_traps_received",
            "SNMP notifications and other datagrams on the trap port, by outcome",
            ["result"],
            registry=registry,
        )
        self.received = {result: counter.labels(result) for result in RESULTS}


class EdgeLog:
    """Rate limit for problem log lines: the first occurrence of a key per
    `window` seconds is logged, later ones only counted. At most `max_keys`
    keys are tracked, so a flood from spoofed addresses cannot grow it."""

    def __init__(self, window: float = LOG_WINDOW, max_keys: int = 4096) -> None:
        self.window = window
        self.max_keys = max_keys
        self.seen: dict[tuple[str, str], list[float]] = {}  # key → [logged at, suppressed]

    def hit(self, key: tuple[str, str], now: float) -> int | None:
        """None: stay quiet. Otherwise log now; the value is how many were
        suppressed for this key since its previous line."""
        entry = self.seen.get(key)
        if entry is not None and now - entry[0] < self.window:
            entry[1] += 1
            return None
        if entry is None and len(self.seen) >= self.max_keys:
            self.seen = {k: v for k, v in self.seen.items() if now - v[0] < self.window}
            if len(self.seen) >= self.max_keys:
                return None
        self.seen[key] = [now, 0.0]
        return int(entry[1]) if entry is not None else 0


def decode(source: str, var_binds: Iterable[tuple[Any, Any]]) -> Trap | None:
    """A pysnmp notification's varbinds as a `Trap` (text values, sysUpTime and
    the v1 community left out); None when it carries no snmpTrapOID."""
    trap_oid = ""
    varbinds: list[tuple[str, str]] = []
    for oid, value in var_binds:
        name = str(oid)
        if name == SNMP_TRAP_OID:
            trap_oid = value.prettyPrint()
        elif name not in (SYS_UPTIME, SNMP_TRAP_COMMUNITY):
            varbinds.append((name, value.prettyPrint()))
    return Trap(source, trap_oid, tuple(varbinds)) if trap_oid else None


class TrapReceiver:
    """Receives SNMP traps and informs on `config.listen` and submits events.

    `inventory` is called per trap, so a reload's new devices count at once;
    `sink` takes each event (App.submit) and must be cheap. Credentials and
    rules are read at `start`. `start` raises SourceError when the address
    cannot be bound; nothing else here raises into the event loop.
    """

    def __init__(
        self,
        config: TrapsConfig,
        inventory: Callable[[], Inventory],
        sink: Callable[[Event], None],
        registry: CollectorRegistry,
        clock: Clock,
    ) -> None:
        self.config = config
        self.inventory = inventory
        self.sink = sink
        self.clock = clock
        self.metrics = TrapMetrics(registry)
        self.mapper = TrapMapper.from_config(config.rules)
        self.quiet = EdgeLog()
        self.address: tuple[str, int] | None = None
        self._engine: Any = None
        self._drops: DropCounters | None = None
        self._source = ""
        self._delivered = False
        self._communities = tuple(c.get_secret_value().encode() for c in config.communities)

    async def start(self) -> None:
        """Bind, build the pysnmp engine (in a thread: v3 keys cost CPU) and
        start receiving. Raises SourceError."""
        from monitord.sources import trap_engine  # pysnmp only when traps are enabled

        sock = trap_engine.open_socket(self.config.listen)
        try:
            eng = await asyncio.to_thread(trap_engine.build_engine, self.config)
            self._drops = trap_engine.DropCounters(eng)
            trap_engine.receive_notifications(eng, self._on_notification)
            ready = asyncio.get_running_loop().create_future()
            self._engine = eng
            trap_engine.attach(eng, sock, self, ready)
            async with asyncio.timeout(5):
                await ready
        except BaseException:
            await self.stop()  # closes the transport, and with it the socket
            sock.close()
            raise
        host, port = sock.getsockname()[:2]
        self.address = (str(host), int(port))
        log.info(
            "trap receiver listening",
            extra={"listen": f"{host}:{port}", "engine_id": trap_engine.engine_id_of(eng)},
        )

    async def stop(self) -> None:
        """Close the socket; notifications still queued in the kernel are lost
        (senders of informs retry). Idempotent."""
        if self._engine is None:
            return
        eng, self._engine = self._engine, None
        eng.close_dispatcher()
        await asyncio.sleep(0)  # let asyncio run the transport's connection_lost
        log.info("trap receiver stopped")

    # the per-datagram path (trap_engine.Gate), called by the transport --------
    def begin(self, address: str) -> None:
        self._source = address
        self._delivered = False

    def end(self) -> None:
        if not self._delivered and self._drops is not None:
            self._outcome(self._drops.classify(), "")

    def failed(self, exc: Exception) -> None:
        if self._drops is not None:
            self._drops.classify()  # resynchronise: pysnmp may have counted part-way
        self._outcome("error", f"{type(exc).__name__}: {str(exc)[:200]}")

    def intercept(self, datagram: bytes, address: str) -> tuple[bool, bytes | None]:
        """v1/v2c messages and garbage are handled here; SNMPv3 (and unknown
        versions) go on to pysnmp. Returns (handled, inform response)."""
        self._source = address
        if trap_wire.version(datagram) not in (0, 1, None):
            return False, None
        try:
            message = trap_wire.parse(datagram)
        except trap_wire.NotANotification as exc:
            self._outcome("dropped", str(exc))
            return True, None
        except trap_wire.WireError as exc:
            self._outcome("malformed", str(exc))
            return True, None
        if not any(hmac.compare_digest(message.community, c) for c in self._communities):
            self._outcome("auth_failed", f"snmp v{message.version + 1}{'c' * message.version}")
            return True, None
        self._deliver(Trap(address, message.trap_oid, message.varbinds))
        return True, message.reply

    def _on_notification(
        self,
        snmp_engine: Any,
        state_ref: Any,
        context_engine_id: Any,
        context_name: Any,
        var_binds: Any,
        cb_ctx: Any,
    ) -> None:
        self._delivered = True
        trap = decode(self._source, var_binds)
        if trap is None:
            self._outcome("malformed", "notification without snmpTrapOID")
            return
        self._deliver(trap)

    def _deliver(self, trap: Trap) -> None:
        device = self._device(trap)
        if device is None:
            self._outcome("unknown_source", trap.trap_oid)
            return
        events, mapped = self.mapper.map(device, trap, self.clock.time())
        for event in events:
            self.sink(event)
        self.metrics.received["mapped" if mapped else "unmapped"].inc()

    def _device(self, trap: Trap) -> Device | None:
        inventory = self.inventory()
        device = inventory.device_for_address(trap.source)
        if device is None:
            # A v1 trap names its agent, and a forwarding proxy the original sender.
            agent = next((v for o, v in trap.varbinds if o == SNMP_TRAP_ADDRESS), None)
            if agent is not None and agent != trap.source:
                device = inventory.device_for_address(agent)
        return device

    def _outcome(self, result: str, detail: str) -> None:
        self.metrics.received[result].inc()
        level = _LEVELS.get(result)
        if level is None:
            return
        suppressed = self.quiet.hit((result, self._source), self.clock.monotonic())
        if suppressed is None:
            return
        log.log(
            level,
            "%s; more from this sender are only counted for the next hour",
            _TEXT[result],
            extra={"source": self._source, "detail": detail, "suppressed": suppressed},
        )
