"""Run slices of the fleet in worker processes ("shards").

One process can hold only so many sockets (RLIMIT_NOFILE, 20,000 on the
reference machine) and one event loop only so many requests, so a big fleet
is served by several `python -m monitord.lab.shards` workers. Each gets one
end of a socketpair (passed by file descriptor, not inherited through
multiprocessing, so nothing depends on how the parent was started) and
speaks newline-delimited JSON on it, strictly request/response:

    {"op": "start", "devices": [[name, address], ...], "tcp_port": .., "http_port": ..,
     "banner": ..}
    {"op": "apply", "effects": {name: [down, service_down, http_error, slow_ms]}}
    {"op": "stats"}
    {"op": "stop"}

and every reply is `{"ok": true, ...}` or `{"ok": false, "error": "..."}`.
A worker stops when the parent closes its end (or dies), and ignores SIGINT:
the parent decides when to stop, so a Ctrl-C in a terminal cannot leave a
half-stopped lab.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monitord.lab.faults import Effect
from monitord.lab.servers import BANNER, DeviceServers, LabError

LINE_LIMIT = 64 * 1024 * 1024  # the start message lists every device of the shard
FDS_PER_DEVICE = 2
FD_MARGIN = 256


def raise_fd_limit(devices: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; raise LabError
    if even that cannot hold `devices` devices' listeners."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = devices * FDS_PER_DEVICE + FD_MARGIN
    if soft < needed:
        target = hard if hard != resource.RLIM_INFINITY else needed
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < needed:
        raise LabError(
            f"{devices} devices need about {needed} file descriptors in one process but "
            f"the limit is {soft}: use more shards"
        )


class ProcessShard:
    """A worker process serving `devices`; the parent's handle to it.

    `start()` raises LabError if the worker cannot bind its listeners or does not
    answer within `start_timeout`; `apply()` and `stats()` raise LabError if the
    worker died. `stop()` never raises and always reaps the process.
    """

    def __init__(
        self,
        index: int,
        devices: Sequence[tuple[str, str]],
        *,
        tcp_port: int,
        http_port: int,
        banner: bytes = BANNER,
        use_uvloop: bool = True,
        start_timeout: float = 120.0,
    ) -> None:
        self.index = index
        self._start_msg = {
            "op": "start",
            "devices": [list(d) for d in devices],
            "tcp_port": tcp_port,
            "http_port": http_port,
            "banner": banner.decode("latin-1"),
        }
        self._use_uvloop = use_uvloop
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self._proc = await asyncio.to_thread(
                subprocess.Popen,
                self._command(theirs.fileno()),
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env=_child_env(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            self._reader, self._writer = await asyncio.open_connection(sock=ours, limit=LINE_LIMIT)
        except BaseException:
            ours.close()  # the worker sees EOF and exits; stop() reaps it
            raise
        await self._call(self._start_msg, self._start_timeout)

    async def apply(self, effects: Mapping[str, Effect]) -> None:
        wire = {name: effect.to_list() for name, effect in effects.items()}
        await self._call({"op": "apply", "effects": wire}, 30.0)

    async def stats(self) -> dict[str, int]:
        reply = await self._call({"op": "stats"}, 10.0)
        return {str(k): int(v) for k, v in reply["stats"].items()}

    async def stop(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(LabError, OSError):
                await self._call({"op": "stop"}, 10.0)
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = self._reader = None
        if self._proc is not None:
            await _reap(self._proc, grace=5.0)
            self._proc = None

    def _command(self, fd: int) -> list[str]:
        cmd = [sys.executable, "-m", "monitord.lab.shards", "--fd", str(fd)]
        return cmd if self._use_uvloop else [*cmd, "--no-uvloop"]

    async def _call(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        if self._reader is None or self._writer is None:
            raise LabError(f"shard {self.index} is not running")
        async with self._lock:
            try:
                self._writer.write(json.dumps(msg).encode() + b"\n")
                await self._writer.drain()
                line = await asyncio.wait_for(self._reader.readline(), timeout)
            except TimeoutError as exc:
                raise LabError(
                    f"shard {self.index} did not answer {msg['op']!r} within {timeout:g} s"
                ) from exc
            except OSError as exc:
                raise await self._gone(msg["op"]) from exc
        if not line:
            raise await self._gone(msg["op"])
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise LabError(f"shard {self.index}: {reply.get('error')}")
        return reply

    async def _gone(self, op: str) -> LabError:
        """The error for a worker that closed its end: it died, or is about to."""
        code = None
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = await asyncio.to_thread(self._proc.wait, 2.0)
        return LabError(f"shard {self.index} exited (code {code}) during {op!r}")


def _child_env() -> dict[str, str]:
    """The parent's environment, with this checkout first on PYTHONPATH so the
    worker imports the same monitord even when it is not installed."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


async def _reap(proc: subprocess.Popen[bytes], grace: float) -> None:
    """Wait for `proc` to exit without blocking the loop; kill it after `grace` s."""
    try:
        await asyncio.to_thread(proc.wait, grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        await asyncio.to_thread(proc.wait)


# ---- the worker side -------------------------------------------------------


class _Worker:
    """Executes the parent's commands against one DeviceServers."""

    def __init__(self) -> None:
        self.servers: DeviceServers | None = None

    async def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        if op == "start":
            devices = [(str(n), str(a)) for n, a in msg["devices"]]
            raise_fd_limit(len(devices))
            self.servers = DeviceServers(
                devices,
                tcp_port=int(msg["tcp_port"]),
                http_port=int(msg["http_port"]),
                banner=str(msg["banner"]).encode("latin-1"),
            )
            await self.servers.start()
            return {"ok": True}
        if self.servers is None:
            raise LabError(f"{op!r} before 'start'")
        if op == "apply":
            effects = {str(n): Effect.from_list(e) for n, e in msg["effects"].items()}
            await self.servers.apply(effects)
            return {"ok": True}
        if op == "stats":
            return {"ok": True, "stats": await self.servers.stats()}
        if op == "stop":
            await self.servers.stop()
            self.servers = None
            return {"ok": True}
        raise LabError(f"unknown op {op!r}")


async def _serve(sock: socket.socket) -> None:
    reader, writer = await asyncio.open_connection(sock=sock, limit=LINE_LIMIT)
    worker = _Worker()
    try:
        while line := await reader.readline():
            msg = json.loads(line)
            try:
                reply = await worker.handle(msg)
            except (LabError, KeyError, TypeError, ValueError) as exc:
                reply = {"ok": False, "error": str(exc)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            if msg.get("op") == "stop" or (msg.get("op") == "start" and not reply["ok"]):
                break
    finally:
        if worker.servers is not None:
            await worker.servers.stop()
        writer.close()


def worker_main(argv: list[str] | None = None) -> int:
    """Entry point of a shard process (`python -m monitord.lab.shards --fd N`)."""
    parser = argparse.ArgumentParser(prog="monitord.lab.shards")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=args.fd)
    run: Any = asyncio.run
    if not args.no_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            run = uvloop.run
    run(_serve(sock))
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
