"""The CLI's one way to talk to the running daemon's JSON API."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def call_api(method: str, url: str, body: Any = None, *, timeout: float = 10.0) -> Any:
    """One request, its JSON answer. urllib's HTTPError/URLError reach the caller, which
    words them for its command."""
    data = None if body is None else json.dumps(body).encode()
    if data is None and method != "GET":
        data = b""  # a bodiless POST/DELETE still says Content-Length: 0
    headers = {} if body is None else {"Content-Type": "application/json"}
    req = urllib.request.Request(url, method=method, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())
