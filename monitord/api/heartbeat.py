"""Heartbeat endpoints: `GET|POST /hb/{token}`, `/hb/{token}/start`, `/hb/{token}/fail`.

A job calls them from its crontab or script (`curl -fsS -m 10 --retry 5
https://monitord/hb/TOKEN`, `--data-binary @log` to attach output). The
answer is a plain `OK` once the signal is stored; 404 for an unknown token,
413 for a body over 100 KiB, 503 when the database refused (retry). The
check is then re-run at once, so a failure or a recovery shows without
waiting for its next interval. The token is never logged or echoed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from checks.heartbeat import PingKind
from monitord.errors import StorageError

log = logging.getLogger(__name__)

MAX_BODY = 100 * 1024


def routes(get_app: Callable[[web.Request], Any]) -> list[web.RouteDef]:
    """The heartbeat routes; `get_app` finds the daemon's `App` for a request."""

    async def handle(request: web.Request) -> web.Response:
        return await ping(get_app(request), request)

    return [
        web.get("/hb/{token}", handle),
        web.post("/hb/{token}", handle),
        web.get("/hb/{token}/{signal:start|fail}", handle),
        web.post("/hb/{token}/{signal:start|fail}", handle),
    ]


async def ping(app: Any, request: web.Request) -> web.Response:
    """Record one signal for `app.heartbeats` and re-run its check soon."""
    kind = PingKind(request.match_info.get("signal", PingKind.SUCCESS.value))
    token = request.match_info["token"]
    book = app.heartbeats
    if book.check_id(token) is None:
        book.rejected(kind, "unknown_token")
        raise web.HTTPNotFound(text="unknown heartbeat token")
    body = await read_body(request, MAX_BODY)
    if body is None:
        book.rejected(kind, "too_large")
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_BODY,
            actual_size=request.content_length or MAX_BODY + 1,
            text=f"ping body over {MAX_BODY} bytes",
        )
    try:
        check_id = await book.ping(token, kind, body)
    except StorageError as exc:
        log.error("%s", exc)  # names the check's database problem, never the token
        raise web.HTTPServiceUnavailable(text="ping not stored, please retry") from exc
    if check_id is None:  # removed by a reload meanwhile
        raise web.HTTPNotFound(text="unknown heartbeat token")
    if app.scheduler is not None:
        app.scheduler.run_soon(check_id)
    return web.Response(text="OK")


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None when it is longer than `limit` bytes (read no
    further than that, whatever Content-Length claims)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(16 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
