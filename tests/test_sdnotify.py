"""Tests for monitord.sdnotify, against real AF_UNIX datagram sockets.

Each receiving socket stands in for systemd's notify socket: a filesystem path, or an
abstract name that NOTIFY_SOCKET spells "@name". The watchdog tests run on real time with
WATCHDOG_USEC=200000 (a 0.1 s ping interval). Their bounds are loose enough for a loaded CI
runner, but still catch a ping burst, a missed ping, or a ping sent while unhealthy.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitord.sdnotify import Notifier, watchdog_loop

WATCHDOG_USEC = 200_000
INTERVAL = WATCHDOG_USEC / 2 / 1_000_000  # 0.1 s


@dataclass
class Receiver:
    """A bound datagram socket plus the NOTIFY_SOCKET value that addresses it."""

    sock: socket.socket
    notify_socket: str

    def recv(self, timeout: float = 2.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def drain(self) -> list[str]:
        """Return every datagram already queued, without waiting."""
        self.sock.setblocking(False)
        messages = []
        while True:
            try:
                messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return messages

    def env(self, **extra: str) -> dict[str, str]:
        return {"NOTIFY_SOCKET": self.notify_socket, **extra}


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 107 bytes. pytest's tmp_path can be longer under a deep
    # TMPDIR, so use a short directory directly under /tmp.
    with tempfile.TemporaryDirectory(prefix="sdn-", dir="/tmp") as name:
        yield Path(name)


def _path_receiver(directory: Path) -> Receiver:
    path = directory / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    return Receiver(sock, str(path))


def _abstract_receiver() -> Receiver:
    name = f"monitord-test-{os.getpid()}-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    return Receiver(sock, "@" + name)


@pytest.fixture(params=["path", "abstract"])
def receiver(request: pytest.FixtureRequest, short_dir: Path) -> Iterator[Receiver]:
    rx = _path_receiver(short_dir) if request.param == "path" else _abstract_receiver()
    with rx.sock:
        yield rx


@pytest.fixture
def path_receiver(short_dir: Path) -> Iterator[Receiver]:
    rx = _path_receiver(short_dir)
    with rx.sock:
        yield rx


# --- messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        (Notifier.ready, "READY=1"),
        (
            lambda n: n.ready(status="monitoring 1200 devices"),
            "READY=1\nSTATUS=monitoring 1200 devices",
        ),
        (Notifier.stopping, "STOPPING=1"),
        (lambda n: n.stopping(status="draining"), "STOPPING=1\nSTATUS=draining"),
        (lambda n: n.status("checking 1200 devices"), "STATUS=checking 1200 devices"),
        (lambda n: n.status("line one\nline two"), "STATUS=line one line two"),
        (Notifier.watchdog, "WATCHDOG=1"),
    ],
    ids=[
        "ready",
        "ready+status",
        "stopping",
        "stopping+status",
        "status",
        "status-newline",
        "watchdog",
    ],
)
def test_message_reaches_socket(
    receiver: Receiver, send: Callable[[Notifier], bool], expected: str
) -> None:
    with Notifier.from_env(receiver.env()) as notifier:
        assert notifier.enabled
        assert send(notifier) is True
        assert receiver.recv() == expected


def test_reloading_carries_clock_monotonic_usec(receiver: Receiver) -> None:
    with Notifier.from_env(receiver.env()) as notifier:
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert notifier.reloading() is True
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    reloading, monotonic = receiver.recv().split("\n")
    assert reloading == "RELOADING=1"
    key, _, value = monotonic.partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after


def test_from_env_reads_process_environment(
    monkeypatch: pytest.MonkeyPatch, path_receiver: Receiver
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_receiver.notify_socket)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    with Notifier.from_env() as notifier:
        assert notifier.ready() is True
        assert notifier.watchdog_interval() == pytest.approx(INTERVAL)
    assert path_receiver.recv() == "READY=1"


# --- disabled and failing ------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"NOTIFY_SOCKET": ""},
        {"NOTIFY_SOCKET": "relative/notify.sock"},
        {"NOTIFY_SOCKET": "vsock:2:1234"},
        {"WATCHDOG_USEC": str(WATCHDOG_USEC)},
    ],
    ids=["unset", "empty", "relative", "vsock", "watchdog-without-socket"],
)
def test_without_usable_notify_socket_everything_is_a_noop(environ: dict[str, str]) -> None:
    with Notifier.from_env(environ) as notifier:
        assert not notifier.enabled
        assert notifier.ready() is False
        assert notifier.reloading() is False
        assert notifier.stopping() is False
        assert notifier.status("x") is False
        assert notifier.watchdog() is False
        assert notifier.watchdog_interval() is None


@pytest.mark.parametrize("kind", ["missing-path", "unbound-abstract"])
def test_unreachable_socket_never_raises_and_logs_once(
    kind: str, short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if kind == "missing-path":
        address = str(short_dir / "gone.sock")
    else:
        address = f"@monitord-test-unbound-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG, logger="monitord.sdnotify")

    with Notifier.from_env({"NOTIFY_SOCKET": address}) as notifier:
        assert notifier.ready() is False
        assert notifier.reloading() is False
        assert notifier.status("still down") is False
        assert notifier.watchdog() is False

    failures = [r for r in caplog.records if r.name == "monitord.sdnotify"]
    assert len(failures) == 1
    assert failures[0].levelno == logging.DEBUG
    assert "failed" in failures[0].getMessage()


def test_send_recovers_when_the_socket_appears(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="monitord.sdnotify")
    path = short_dir / "late.sock"
    with Notifier.from_env({"NOTIFY_SOCKET": str(path)}) as notifier:
        assert notifier.watchdog() is False
        assert notifier.watchdog() is False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(path))
            assert notifier.watchdog() is True
            sock.settimeout(2.0)
            assert sock.recv(64) == b"WATCHDOG=1"

    messages = [r.getMessage() for r in caplog.records if r.name == "monitord.sdnotify"]
    assert len(messages) == 2
    assert "failed" in messages[0]
    assert "works again" in messages[1]


# --- watchdog environment ------------------------------------------------------------------

SELF = "<own pid>"


@pytest.mark.parametrize(
    ("watchdog_env", "interval"),
    [
        ({"WATCHDOG_USEC": "200000"}, 0.1),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": SELF}, 15.0),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "abc"}, None),
        ({"WATCHDOG_USEC": "abc"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-200000"}, None),
        ({}, None),
    ],
    ids=["usec", "usec+own-pid", "other-pid", "bad-pid", "bad-usec", "zero", "negative", "unset"],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process(
    path_receiver: Receiver, watchdog_env: dict[str, str], interval: float | None
) -> None:
    env = {k: str(os.getpid()) if v == SELF else v for k, v in watchdog_env.items()}
    with Notifier.from_env(path_receiver.env(**env)) as notifier:
        assert notifier.watchdog_interval() == (
            None if interval is None else pytest.approx(interval)
        )


# --- watchdog_loop -------------------------------------------------------------------------


async def _recv_async(rx: Receiver, wait: float) -> str | None:
    """Wait up to ``wait`` s for one datagram on the event loop; None if none came."""
    rx.sock.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(wait):
            data = await loop.sock_recv(rx.sock, 4096)
    except TimeoutError:
        return None
    return data.decode()


async def _ping_times(rx: Receiver, duration: float) -> list[float]:
    """Collect the arrival times (loop clock) of WATCHDOG=1 pings for ``duration`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + duration
    times = []
    while (left := end - loop.time()) > 0:
        message = await _recv_async(rx, left)
        if message is not None:
            assert message == "WATCHDOG=1"
            times.append(loop.time())
    return times


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_watchdog_loop_pings_every_half_timeout_while_healthy(
    path_receiver: Receiver,
) -> None:
    loop = asyncio.get_running_loop()
    with Notifier.from_env(path_receiver.env(WATCHDOG_USEC=str(WATCHDOG_USEC))) as notifier:
        start = loop.time()
        task = asyncio.create_task(watchdog_loop(notifier, lambda: True))
        times = await _ping_times(path_receiver, 5.5 * INTERVAL)
        await _cancel(task)

    # Pings at about 0, 0.1, ..., 0.5 s, so six of them. A slow runner may lose one.
    assert 5 <= len(times) <= 6, times
    assert times[0] - start < INTERVAL / 2, "the first ping should go out at once"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Never a burst (gap well under the interval), and never a gap that would trip the
    # watchdog (WATCHDOG_USEC = 2 * INTERVAL).
    assert all(0.7 * INTERVAL <= gap < 2 * INTERVAL for gap in gaps), gaps


async def test_watchdog_loop_withholds_pings_while_unhealthy(
    path_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitord.sdnotify")
    healthy = True
    with Notifier.from_env(path_receiver.env(WATCHDOG_USEC=str(WATCHDOG_USEC))) as notifier:
        task = asyncio.create_task(watchdog_loop(notifier, lambda: healthy))
        assert await _recv_async(path_receiver, 1.0) == "WATCHDOG=1"

        healthy = False
        # Anything that was sent before the flip is already queued; drop it.
        path_receiver.drain()
        assert await _ping_times(path_receiver, 3.5 * INTERVAL) == []

        healthy = True
        assert await _recv_async(path_receiver, 2 * INTERVAL) == "WATCHDOG=1"
        await _cancel(task)

    levels = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "monitord.sdnotify"
    ]
    assert [level for level, _ in levels] == ["WARNING", "INFO"], levels


async def test_watchdog_loop_treats_a_raising_probe_as_unhealthy(
    path_receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    def probe() -> bool:
        raise RuntimeError("scheduler state unavailable")

    with Notifier.from_env(path_receiver.env(WATCHDOG_USEC=str(WATCHDOG_USEC))) as notifier:
        task = asyncio.create_task(watchdog_loop(notifier, probe))
        assert await _ping_times(path_receiver, 3.5 * INTERVAL) == []
        assert not task.done(), "a raising probe must not kill the loop"
        await _cancel(task)

    warnings = [r for r in caplog.records if r.name == "monitord.sdnotify"]
    assert len(warnings) == 1, "logged on the change only, not on every probe"
    assert warnings[0].exc_info is not None
    assert isinstance(warnings[0].exc_info[1], RuntimeError)


@pytest.mark.parametrize(
    "environ",
    [{}, {"WATCHDOG_USEC": str(WATCHDOG_USEC)}],
    ids=["nothing", "watchdog-without-socket"],
)
async def test_watchdog_loop_returns_when_there_is_no_watchdog(environ: dict[str, str]) -> None:
    with Notifier.from_env(environ) as notifier:
        async with asyncio.timeout(1.0):
            await watchdog_loop(notifier, lambda: True)


async def test_watchdog_loop_returns_when_watchdog_is_for_another_pid(
    path_receiver: Receiver,
) -> None:
    env = path_receiver.env(WATCHDOG_USEC=str(WATCHDOG_USEC), WATCHDOG_PID="1")
    with Notifier.from_env(env) as notifier:
        async with asyncio.timeout(1.0):
            await watchdog_loop(notifier, lambda: True)
    assert path_receiver.drain() == []
