"""Raw-socket probes for the lab tests.

They use plain asyncio streams rather than an HTTP client library, so that
each test sees exactly what a socket sees: refused, closed, status, delay.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Ports:
    """The device ports of one test's lab."""

    tcp: int
    http: int


async def read_banner(address: str, port: int) -> bytes:
    """Everything the TCP listener sends before closing."""
    reader, writer = await asyncio.open_connection(address, port)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
        await writer.wait_closed()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One HTTP response from `reader` (Content-Length framed)."""
    started = time.perf_counter()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers["content-length"]))
    return Answer(int(lines[0].split()[1]), headers, body, time.perf_counter() - started)


async def http_get(address: str, port: int, request: bytes | None = None) -> Answer:
    """Send one request (default: GET / with Connection: close) and read the answer."""
    reader, writer = await asyncio.open_connection(address, port)
    try:
        started = time.perf_counter()
        writer.write(request or b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
        answer = await read_answer(reader)
        return Answer(answer.status, answer.headers, answer.body, time.perf_counter() - started)
    finally:
        writer.close()
        await writer.wait_closed()


async def refused(address: str, port: int) -> bool:
    """True if connecting is refused; False if something accepts."""
    try:
        _, writer = await asyncio.open_connection(address, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    await writer.wait_closed()
    return False
