"""A small sd_notify(3) client with no dependencies, for the asyncio daemon.

systemd passes two things to a ``Type=notify`` service in its environment. ``NOTIFY_SOCKET`` is
an AF_UNIX datagram socket, given as a filesystem path or as an abstract name written
``@name``. ``WATCHDOG_USEC``/``WATCHDOG_PID`` are set when ``WatchdogSec=`` is on. The daemon
reports its state by sending newline-separated ``KEY=VALUE`` datagrams to that socket:
``READY=1``, ``RELOADING=1``, ``STOPPING=1``, ``STATUS=…``, ``WATCHDOG=1``.

Notifying is best effort by contract. Nothing here raises into the caller. A failed send is
logged at debug level once per failure streak (principle 12), and the caller gets ``False``.
Without ``NOTIFY_SOCKET`` (tests, a foreground run, another init system) every method does
nothing and returns ``False``.

Each send is one non-blocking ``sendto`` from an unconnected socket that is opened on first
use. Unconnected means each datagram is addressed afresh, so it still arrives after systemd
re-executes (``systemctl daemon-reexec``) and recreates its socket. A full socket buffer
drops the datagram (EAGAIN) instead of blocking the event loop.

:func:`watchdog_loop` feeds the watchdog from the event loop, and only while the daemon
reports itself healthy. Either a blocked loop or an unhealthy scheduler stops the pings, and
systemd kills and restarts the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

__all__ = ["Notifier", "watchdog_loop"]

log = logging.getLogger(__name__)


def _socket_address(value: str | None) -> bytes | None:
    """Return the sendto() address for a NOTIFY_SOCKET value, or None when it is unusable.

    ``/path`` is a filesystem socket. ``@name`` is an abstract socket, whose address starts
    with a NUL byte instead of the ``@``. Anything else (unset, empty, relative, with a NUL,
    or a ``vsock:`` address from systemd >= 254) is treated as "no socket", which is what
    libsystemd does with an address it can't use.
    """
    if not value or "\0" in value:
        return None
    if value.startswith("@"):
        return b"\0" + os.fsencode(value[1:])
    if value.startswith("/"):
        return os.fsencode(value)
    log.debug("ignoring unsupported NOTIFY_SOCKET address %r", value)
    return None


def _watchdog_usec(environ: Mapping[str, str]) -> int | None:
    """Return WATCHDOG_USEC when it is meant for this process, else None.

    As in sd_watchdog_enabled(3): the value must be a positive integer, and when WATCHDOG_PID
    is set it must be our own PID. A forked child that inherits the environment thus
    doesn't think the watchdog is its job.
    """
    raw_usec = environ.get("WATCHDOG_USEC")
    if raw_usec is None:
        return None
    try:
        usec = int(raw_usec)
        pid = int(environ.get("WATCHDOG_PID", os.getpid()))
    except ValueError:
        log.debug(
            "ignoring malformed watchdog environment %r/%r",
            raw_usec,
            environ.get("WATCHDOG_PID"),
        )
        return None
    if usec <= 0 or pid != os.getpid():
        return None
    return usec


class Notifier:
    """Sends sd_notify state messages to the service manager.

    Build one with :meth:`from_env` at startup, pass it to whatever reports state, and
    :meth:`close` it on exit (or use it as a context manager). Every method returns ``True``
    when the datagram was handed to the kernel and ``False`` when notifying is disabled or
    the send failed. None of them raise.
    """

    def __init__(self, address: bytes | None, watchdog_usec: int | None = None) -> None:
        """Target ``address`` (a sendto() address, None to disable) with ``watchdog_usec``."""
        self._address = address
        self._watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._failing = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Build a Notifier from NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID.

        ``environ`` defaults to ``os.environ``. The environment is not modified. Children
        that inherit NOTIFY_SOCKET are harmless because the unit sets ``NotifyAccess=main``.
        Never raises. A missing or unusable NOTIFY_SOCKET gives a disabled Notifier.
        """
        env = os.environ if environ is None else environ
        address = _socket_address(env.get("NOTIFY_SOCKET"))
        return cls(address, _watchdog_usec(env))

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify, that is, when running under systemd."""
        return self._address is not None

    def ready(self, status: str | None = None) -> bool:
        """Report that startup, or a reload, has finished: ``READY=1``, with an optional STATUS."""
        return self._send("READY=1", *_status_line(status))

    def reloading(self) -> bool:
        """Report that a reload has begun: ``RELOADING=1`` and ``MONOTONIC_USEC``.

        systemd >= 253 (``Type=notify-reload``) uses MONOTONIC_USEC, the CLOCK_MONOTONIC time
        in microseconds, to match this message to the reload request. Older versions ignore
        it. Either way, send :meth:`ready` once the reload has been applied or rejected.
        Otherwise the unit stays in "reloading".
        """
        now_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self._send("RELOADING=1", f"MONOTONIC_USEC={now_usec}")

    def stopping(self, status: str | None = None) -> bool:
        """Report that shutdown has begun: ``STOPPING=1``, with an optional STATUS."""
        return self._send("STOPPING=1", *_status_line(status))

    def status(self, text: str) -> bool:
        """Set the free-form status line that ``systemctl status`` shows (``STATUS=text``)."""
        return self._send(*_status_line(text))

    def watchdog(self) -> bool:
        """Feed the service watchdog once (``WATCHDOG=1``)."""
        return self._send("WATCHDOG=1")

    def watchdog_interval(self) -> float | None:
        """Return how often to ping the watchdog, in seconds: half of WATCHDOG_USEC.

        Half the timeout is what sd_watchdog_enabled(3) recommends. It leaves room for one
        late ping. Returns None when there is no watchdog for this process (WatchdogSec= is
        unset, WATCHDOG_PID names another process) or no socket to send the pings to.
        """
        if self._watchdog_usec is None or not self.enabled:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    def close(self) -> None:
        """Close the socket, if one was opened. Later sends open a new one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, *lines: str) -> bool:
        """Send ``lines`` as one datagram. Returns True if the kernel took it. Never raises."""
        if self._address is None:
            return False
        payload = "\n".join(lines).encode("utf-8", errors="replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(payload, self._address)
        except OSError as exc:
            if not self._failing:
                self._failing = True
                log.debug("sd_notify to %r failed, dropping %r: %s", self._address, lines[0], exc)
            return False
        if self._failing:
            self._failing = False
            log.debug("sd_notify to %r works again", self._address)
        return True


def _status_line(text: str | None) -> tuple[str, ...]:
    """Return ``("STATUS=text",)``, or ``()`` for None.

    Newlines would split the text into bogus assignments, so they become spaces.
    """
    if text is None:
        return ()
    return ("STATUS=" + " ".join(text.splitlines()),)


async def watchdog_loop(notifier: Notifier, is_healthy: Callable[[], bool]) -> None:
    """Ping the systemd watchdog every ``notifier.watchdog_interval()`` while healthy.

    Run it as a task for the life of the daemon and cancel it on shutdown. It pings at once
    and then after each interval, but only if ``is_healthy()`` returns True at that moment.
    ``is_healthy`` runs on the event loop and must be cheap, for example "the scheduler
    finished a tick in the last N seconds". An exception from it counts as unhealthy.

    Because the pings come from the event loop itself, a loop blocked by synchronous code
    stops them as well. Either way systemd kills the daemon after WatchdogSec= and
    Restart=on-failure brings it back. Changes between healthy and unhealthy are logged, at
    warning level when going unhealthy. Returns at once when there is no watchdog to feed.
    Otherwise runs until cancelled.
    """
    interval = notifier.watchdog_interval()
    if interval is None:
        return
    healthy = True
    while True:
        now_healthy, error = _probe(is_healthy)
        if now_healthy != healthy:
            healthy = now_healthy
            if healthy:
                log.info("daemon healthy again, resuming systemd watchdog pings")
            else:
                log.warning("daemon unhealthy, withholding systemd watchdog pings", exc_info=error)
        if healthy:
            notifier.watchdog()
        await asyncio.sleep(interval)


def _probe(is_healthy: Callable[[], bool]) -> tuple[bool, Exception | None]:
    """Call ``is_healthy``. Returns its verdict, or ``(False, exc)`` if it raised."""
    try:
        return bool(is_healthy()), None
    except Exception as exc:
        # This is the watchdog loop's outermost boundary (principle 14). A raising probe
        # withholds the ping, and systemd restarts us. Letting it kill the task would also
        # stop the pings, but silently, and they couldn't resume once the probe recovers.
        return False, exc
