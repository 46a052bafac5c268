"""HTTP for the RMM adapters: one call with its body read under a size limit while
it streams in, calls paced to an API's etiquette, and every failure an `RmmError`
whose message names the call (its label), never the URL: an N-sight URL carries
the API key, and aiohttp's exceptions carry the URL, so none of them is chained.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from multidict import CIMultiDictProxy

from monitord.sources.rmm.base import RmmError

T = TypeVar("T")
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


async def fetch(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    label: str,
    limit: int,
    timeout: float,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
) -> Reply:
    """The reply to one call, whatever its status. Raises RmmError: "timeout",
    "network", or "too-large" as soon as the body passes `limit` bytes (by its
    Content-Length, or while reading: the rest is never read)."""
    try:
        async with session.request(
            method,
            url,
            params=params,
            headers=headers,
            json=json,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,  # a redirect elsewhere would take the key along
        ) as response:
            body = await _read(response, label, limit)
            return Reply(response.status, response.headers, body)
    except RmmError:
        raise
    except TimeoutError:
        raise RmmError(f"{label}: no answer within {timeout:g} s", reason="timeout") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise RmmError(f"{label}: {_describe(exc)}", reason="network") from None


async def _read(response: aiohttp.ClientResponse, label: str, limit: int) -> bytes:
    declared = response.content_length
    if declared is not None and declared > limit:
        response.close()
        raise RmmError(
            f"{label}: the answer is {declared} bytes, over the {limit}-byte limit "
            "(max_body_bytes); not read",
            reason="too-large",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(CHUNK):
        size += len(chunk)
        if size > limit:
            response.close()  # drops the connection: the rest is never read
            raise RmmError(
                f"{label}: the answer passed the {limit}-byte limit (max_body_bytes); "
                "stopped reading",
                reason="too-large",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _describe(exc: BaseException) -> str:
    """What went wrong, without the URL (host and port are fine)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        why = exc.os_error.strerror or type(exc.os_error).__name__
        return f"cannot connect to {exc.host}:{exc.port} ({why})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "the answer broke off"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


class Pacer:
    """At most `per_minute` call starts in any 60 seconds (0: unpaced), as N-able's
    own client limits itself: a burst up to the limit goes at once (a poll of 41
    clients is not stretched over 41 seconds), more waits for the window to
    slide. `clock` is monotonic seconds; `sleep` is injectable for tests."""

    WINDOW = 60.0

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = per_minute
        self.clock, self.sleep = clock, sleep
        self._starts: deque[float] = deque(maxlen=max(per_minute, 1))

    async def wait(self) -> None:
        if self.limit <= 0:
            return
        now = self.clock()
        start = now
        if len(self._starts) == self.limit:
            start = max(now, self._starts[0] + self.WINDOW)
        self._starts.append(start)  # claimed before sleeping: concurrent callers queue up
        if start > now:
            await self.sleep(start - now)


async def gather_limited(calls: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Every call's result in order, at most `limit` at a time. The first RmmError
    cancels the rest and is raised as it is (not as an exception group)."""
    gate = asyncio.Semaphore(limit)

    async def run(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(run(call)) for call in calls]
    except BaseExceptionGroup as group_error:
        first = group_error.exceptions[0]
        for exc in group_error.exceptions:
            if isinstance(exc, RmmError):
                first = exc
                break
        raise first from None
    return [task.result() for task in tasks]
