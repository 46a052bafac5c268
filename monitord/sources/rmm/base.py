"""The RMM source interface and the records every adapter returns.

Ids are the RMM's own, as strings (N-sight's are numbers, Tactical's agent ids are
not). Times are UTC epoch seconds (an adapter converts the RMM's local times).
Records are frozen: the feed compares snapshots, it never mutates one.

Constructors are uniform so the registry can build any source:
`Cls(Cls.Config.model_validate(raw), session=session_or_None, clock=clock)`, where
`Cls.Config` is the adapter's pydantic model (frozen, extra="forbid", secrets as
SecretStr) and `Cls.Config.EXAMPLE` a valid example. With no session given the
adapter opens (and `aclose` closes) its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Literal, Protocol

from monitord.errors import MonitordError

DeviceKind = Literal["server", "workstation"]


class FailureKind(StrEnum):
    """What an RMM failure is about: the agent's availability, or one check/task."""

    OFFLINE = "offline"  # the agent has not reported (workstations; N-sight `<offline>`)
    OVERDUE = "overdue"  # a server's checks are overdue (N-sight `<overdue>`)
    UNREACHABLE = "unreachable"  # N-sight `<unreachable>` (the site's agents say so)
    CHECK = "check"  # a monitoring check failed
    TASK = "task"  # an automated task failed (N-sight check type 1023)


class Category(StrEnum):
    """The RMM check's category, independent of the RMM: cross-validation rules,
    priorities and fingerprints key on it. An adapter maps its own check types here;
    what it cannot place is OTHER (kept, labelled, never guessed)."""

    AVAILABILITY = "availability"  # offline / overdue / unreachable
    DISK_SPACE = "disk-space"
    BACKUP = "backup"
    ANTIVIRUS = "antivirus"
    SERVICE = "service"  # Windows service / daemon
    EVENT_LOG = "event-log"
    PERFORMANCE = "performance"  # CPU, memory, queue length
    PING = "ping"
    WEB = "web"  # website / HTTP check
    PATCH = "patch"
    HARDWARE = "hardware"  # RAID, SMART, sensors
    SCRIPT = "script"
    TASK = "task"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class RmmClient:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class RmmSite:
    id: str
    client_id: str
    name: str
    connection_ok: bool | None = None  # N-sight: False = the site cannot be reached
    routers: tuple[str, ...] = ()  # the site's router addresses as the RMM knows them


@dataclass(frozen=True, slots=True)
class RmmDevice:
    id: str
    client_id: str
    site_id: str
    name: str
    kind: DeviceKind
    addresses: tuple[str, ...] = ()  # LAN addresses, most useful first
    external_ip: str = ""
    os: str = ""
    last_seen: float | None = None  # the agent's last report
    logged_on_user: str = ""  # as the RMM writes it ("DOMAIN\\user"); "" for none
    description: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)  # serial, model, … as given


@dataclass(frozen=True, slots=True)
class RmmInventory:
    clients: tuple[RmmClient, ...]
    sites: tuple[RmmSite, ...]
    devices: tuple[RmmDevice, ...]


@dataclass(frozen=True, slots=True)
class RmmFailure:
    """One failure the RMM reports now. `key` is stable while the failure lasts (the
    RMM's check id, or "<device>:offline"), so a failure that disappears from the next
    poll is a clearance of that key."""

    key: str
    device_id: str  # the RMM's device id
    kind: FailureKind
    category: Category
    check_type: str  # the RMM's own type code or name, for display and rules
    description: str
    output: str = ""
    started_at: float | None = None
    consecutive_fails: int = 1
    status: str = ""  # the RMM's own status word (N-sight: testerror, testalertdelayed)


class RmmError(MonitordError):
    """A call to an RMM failed. `reason` is one of a closed set (see REASONS); the
    message names the source and the service called, never the API key."""

    REASONS: ClassVar[tuple[str, ...]] = (
        "timeout",  # no answer in time
        "network",  # connection refused / reset / DNS
        "http",  # an HTTP error status
        "not-xml",  # a body that is not the API's format (a WAF or login page)
        "too-large",  # a body over the size limit
        "api-error",  # the API's own error envelope (N-sight status="FAIL")
        "auth",  # the key was refused (N-sight errorcode 3, HTTP 401/403)
        "malformed",  # the API's format, but not the expected structure
    )

    def __init__(self, message: str, *, reason: str, code: int | None = None) -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown RmmError reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.code = code  # the API's error code, when it gave one


class RmmSource(Protocol):
    """One RMM account. Every method raises RmmError and nothing else."""

    kind: ClassVar[str]
    # The shortest interval between automated polls this RMM tolerates (N-sight: 90 s).
    min_poll_interval: ClassVar[float]

    async def inventory(self) -> RmmInventory:
        """Every client, site and device of the account, with the logged-on users."""
        ...

    async def failures(self) -> tuple[RmmFailure, ...]:
        """Every failure the RMM reports now (checks, tasks and availability)."""
        ...

    async def aclose(self) -> None: ...
