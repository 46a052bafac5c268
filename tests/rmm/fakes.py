"""A small in-test RMM source: the feed's logic tested without an adapter.

`FakeSource` implements `monitord.sources.rmm.base.RmmSource`; a test reaches the
running instance through `app.rmm.runners[name].source` and sets what the
next call returns (or raises). Register it with the `fake_kind` fixture.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from monitord.sources.rmm.base import (
    Category,
    FailureKind,
    RmmClient,
    RmmDevice,
    RmmError,
    RmmFailure,
    RmmInventory,
    RmmSite,
)


class FakeConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    EXAMPLE: ClassVar[dict[str, Any]] = {"account": "demo"}

    account: str
    api_key: str = ""


class FakeSource:
    kind: ClassVar[str] = "fake"
    min_poll_interval: ClassVar[float] = 90.0
    Config = FakeConfig

    def __init__(self, config: FakeConfig, *, session: Any = None, clock: Any = None) -> None:
        self.config = config
        self.snapshot = RmmInventory((), (), ())
        self.current: tuple[RmmFailure, ...] = ()
        self.error: RmmError | None = None
        self.inventory_calls = 0
        self.failure_calls = 0
        self.closed = False

    async def inventory(self) -> RmmInventory:
        self.inventory_calls += 1
        if self.error is not None:
            raise self.error
        return self.snapshot

    async def failures(self) -> tuple[RmmFailure, ...]:
        self.failure_calls += 1
        if self.error is not None:
            raise self.error
        return self.current

    async def aclose(self) -> None:
        self.closed = True


def device(
    rmm_id: str,
    name: str,
    address: str,
    *,
    client: str = "100",
    site: str = "200",
    kind: str = "server",
    user: str = "",
    external_ip: str = "",
) -> RmmDevice:
    return RmmDevice(
        id=rmm_id,
        client_id=client,
        site_id=site,
        name=name,
        kind=kind,  # type: ignore[arg-type]
        addresses=(address,),
        external_ip=external_ip,
        os="Windows Server 2022",
        last_seen=1.0,
        logged_on_user=user,
    )


def inventory(
    devices: list[RmmDevice],
    clients: tuple[tuple[str, str], ...] = (("100", "Acme Corporation"),),
    sites: tuple[tuple[str, str, str], ...] = (("200", "100", "Head Office"),),
    routers: dict[str, str] | None = None,
) -> RmmInventory:
    return RmmInventory(
        tuple(RmmClient(i, n) for i, n in clients),
        tuple(
            RmmSite(i, c, n, routers=((routers or {}).get(i, ""),) if routers else ())
            for i, c, n in sites
        ),
        tuple(devices),
    )


def offline(rmm_id: str, kind: FailureKind = FailureKind.OFFLINE) -> RmmFailure:
    return RmmFailure(
        key=f"{rmm_id}:{kind.value}",
        device_id=rmm_id,
        kind=kind,
        category=Category.AVAILABILITY,
        check_type=kind.value,
        description=kind.value.capitalize(),
        started_at=1.0,
    )


def check(
    rmm_id: str,
    check_id: str,
    category: Category,
    description: str,
    *,
    status: str = "testerror",
    output: str = "",
) -> RmmFailure:
    return RmmFailure(
        key=check_id,
        device_id=rmm_id,
        kind=FailureKind.CHECK,
        category=category,
        check_type="1000",
        description=description,
        output=output,
        started_at=1.0,
        consecutive_fails=3,
        status=status,
    )
