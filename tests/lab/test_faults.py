"""FaultBook: targets, effect combination, validation messages (pure, no sockets)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitord.lab import Effect, Fleet, UnknownFault, UnknownTarget
from monitord.lab.faults import DEFAULT_DELAY_MS, EventLog, FaultBook

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def book(small_fleet: Fleet) -> FaultBook:
    return FaultBook(small_fleet)


def test_targets_by_scope(book: FaultBook, small_fleet: Fleet) -> None:
    site = small_fleet.sites[0]
    customer = small_fleet.customers[0]
    assert book.targets("device", site.gateway.name) == (site.gateway.name,)
    assert book.targets("site", site.name) == tuple(d.name for d in site.devices)
    assert book.targets("customer", customer.name) == tuple(d.name for d in customer.devices())


@pytest.mark.parametrize(
    ("scope", "name", "error", "message"),
    [
        ("device", "nope", UnknownTarget, "unknown device 'nope'"),
        ("site", "acme-hq-rtr-01", UnknownTarget, "unknown site 'acme-hq-rtr-01'"),
        ("customer", "acme-hq", UnknownTarget, "unknown customer 'acme-hq'"),
        (
            "rack",
            "acme",
            ValueError,
            "invalid scope 'rack': expected one of 'device', 'site', 'customer'",
        ),
    ],
)
def test_unknown_targets(
    book: FaultBook, scope: str, name: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        book.targets(scope, name)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kind", "delay", "message"),
    [
        (
            "explode",
            None,
            "invalid fault 'explode': expected one of 'down', 'service_down', 'http_error', 'slow'",
        ),
        ("slow", 0, "delay_ms must be between 1 and 600000, got 0"),
        ("slow", "2s", "delay_ms must be an integer, got '2s'"),
        ("slow", True, "delay_ms must be an integer, got True"),
    ],
)
def test_bad_faults_change_nothing(book: FaultBook, kind: str, delay: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        book.add("site", "acme-hq", kind, delay, T0)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert book.active() == ()


def test_slow_delay_default_and_ignored_elsewhere(book: FaultBook) -> None:
    slow, _ = book.add("device", "acme-hq-rtr-01", "slow", None, T0)
    down, _ = book.add("device", "acme-hq-rtr-01", "down", 5000, T0)
    assert slow.delay_ms == DEFAULT_DELAY_MS
    assert down.delay_ms is None


def test_effects_combine_and_heal_separately(book: FaultBook, small_fleet: Fleet) -> None:
    site = small_fleet.site_by_name["acme-hq"]
    device = site.devices[-1].name
    site_down, changed = book.add("site", site.name, "down", None, T0)
    assert set(changed) == {d.name for d in site.devices}
    assert changed[device] == Effect(down=True)
    slow, changed = book.add("device", device, "slow", 300, T0)
    assert changed == {device: Effect(down=True, slow_ms=300)}
    slower, _ = book.add("device", device, "slow", 900, T0)
    assert book.effect(device).slow_ms == 900
    _, changed = book.remove(site_down.id)
    assert changed[device] == Effect(slow_ms=900)
    assert changed[site.gateway.name] == Effect()
    book.remove(slower.id)
    assert book.effect(device) == Effect(slow_ms=300)
    book.remove(slow.id)
    assert book.effect(device) == Effect() and book.active() == ()


def test_effect_listener_flags() -> None:
    assert Effect().tcp_open and Effect().http_open
    assert not Effect(down=True).tcp_open and not Effect(down=True).http_open
    assert Effect(service_down=True).tcp_open and not Effect(service_down=True).http_open
    assert Effect.from_list(Effect(http_error=True, slow_ms=5).to_list()) == Effect(
        http_error=True, slow_ms=5
    )


def test_unknown_fault_id(book: FaultBook) -> None:
    with pytest.raises(UnknownFault, match="unknown fault id 'f-9'"):
        book.remove("f-9")


def test_fault_ids_are_never_reused(book: FaultBook) -> None:
    first, _ = book.add("device", "acme-hq-rtr-01", "down", None, T0)
    book.remove(first.id)
    second, _ = book.add("device", "acme-hq-rtr-01", "down", None, T0)
    assert (first.id, second.id) == ("f-1", "f-2")


def test_event_log(book: FaultBook) -> None:
    log = EventLog()
    fault, _ = book.add("device", "acme-hq-rtr-01", "down", None, T0)
    log.record("inject", fault, T0)
    log.record("heal", fault, T0)
    assert [e.seq for e in log.since()] == [1, 2]
    assert [e.action for e in log.since(1)] == ["heal"]
    assert log.since(2) == ()
