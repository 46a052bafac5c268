"""Request bodies of the JSON API."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def json_object(request: web.Request, what: str = "a JSON object") -> dict[str, Any]:
    """The request's JSON object body; 400 naming `what` was expected otherwise."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"body must be {what}: {exc}") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=f"body must be {what}")
    return body
