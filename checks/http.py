"""HTTP(S) check: status code, body content, latency; modelled on check_http.

The hot path hand-writes the request bytes and parses the response with
httptools (llhttp, in C) from a slot-only `asyncio.Protocol` on a bare
`loop.create_connection`; an HTTP client library costs several times the CPU
per request. One connection per hop, `Connection: close`, no pooling: checks
of one URL are minutes apart.

Messages never contain the query string of a URL (tokens live there) nor the
basic-auth password, which is a `SecretStr` and is only sent to the host the
check was configured for.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from time import perf_counter
from typing import Any, ClassVar, Literal, Self
from urllib.parse import urljoin, urlsplit

import httptools
from pydantic import Field, SecretStr, field_validator, model_validator

from checks.base import (
    BaseCheck,
    CheckParams,
    LatencyParams,
    SslContexts,
    describe_os_error,
    latency_status,
    time_perf,
    valid_regex,
)
from monitord.model import CheckResult, Perf, Status, Target

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORT = {"http": 80, "https": 443}
# Printable ASCII without space: what may go into a request line or header
# verbatim; anything else would let a config value inject headers.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9._-]+")


class HttpParams(LatencyParams):
    """Parameters of an `http` check.

    `host` is the virtual host (Host header and TLS SNI); the connection
    always goes to the target's address. `expect_status` empty means any of
    200-399. `follow_redirects` bounds the hops (0: judge the 3xx itself).
    `max_body` caps what is read; the size reported is what was read.
    """

    scheme: Literal["http", "https"] = "http"
    port: int | None = Field(default=None, ge=1, le=65535)
    path: str = "/"
    host: str | None = None
    method: Literal["GET", "HEAD"] = "GET"
    expect_status: tuple[int, ...] = ()
    body_contains: str | None = Field(default=None, min_length=1)
    body_regex: str | None = Field(default=None, min_length=1)
    follow_redirects: int = Field(default=5, ge=0, le=20)
    verify: bool = True
    max_body: int = Field(default=1 << 20, ge=1, le=64 << 20)
    username: str | None = None
    password: SecretStr | None = None

    @property
    def effective_port(self) -> int:
        return self.port if self.port is not None else _DEFAULT_PORT[self.scheme]

    def default_name(self, kind: str) -> str:
        path = self.path.split("?", 1)[0]
        return f"{kind}:{self.effective_port}" + ("" if path == "/" else path)

    @field_validator("path")
    @classmethod
    def _path_is_origin_form(cls, v: str) -> str:
        if not v.startswith("/") or not _TOKEN.fullmatch(v):
            raise ValueError(f"path must start with '/' and be printable ASCII, got {v!r}")
        return v

    @field_validator("host")
    @classmethod
    def _host_is_a_name(cls, v: str | None) -> str | None:
        if v is not None and not _HOSTNAME.fullmatch(v):
            raise ValueError(f"host must be a DNS name without port, got {v!r}")
        return v

    @field_validator("expect_status")
    @classmethod
    def _codes_in_range(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [c for c in v if not 100 <= c <= 599]
        if bad:
            raise ValueError(f"status codes must be 100-599, got {bad!r}")
        return v

    @field_validator("body_regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        return valid_regex(v)

    @field_validator("username")
    @classmethod
    def _username_is_safe(cls, v: str | None) -> str | None:
        if v is not None and (":" in v or not v.isprintable()):
            raise ValueError("username must be printable and contain no ':'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.method == "HEAD" and (self.body_contains or self.body_regex):
            raise ValueError("body_contains/body_regex need method GET, not HEAD")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be given together")
        return self


class _Response(asyncio.Protocol):
    """Collects one HTTP response via httptools callbacks.

    `done` resolves when the message is complete, the headers of a HEAD
    response are in, the body reached `limit`, parsing failed, or the peer
    closed. The body is kept only when `keep` is set (a body match is asked).
    """

    __slots__ = (
        "body",
        "complete",
        "done",
        "error",
        "framed",
        "head",
        "headers_done",
        "informational",
        "keep",
        "limit",
        "location",
        "parser",
        "reason",
        "size",
        "status",
        "version",
    )

    def __init__(self, done: asyncio.Future[None], head: bool, keep: bool, limit: int) -> None:
        self.done = done
        self.head = head
        self.keep = keep
        self.limit = limit
        self.parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)
        self.body = bytearray()
        self.size = 0
        self.status = 0
        self.version = "1.1"
        self.reason = b""
        self.location: bytes | None = None
        self.framed = False
        self.informational = False
        self.headers_done = False
        self.complete = False
        self.error: str | None = None

    def data_received(self, data: bytes) -> None:
        if self.parser is None or self.done.done():
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = f"invalid HTTP response: {exc}"
            self._finish()
        except httptools.HttpParserUpgrade:
            self.error = "invalid HTTP response: unrequested protocol upgrade"
            self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def on_status(self, status: bytes) -> None:
        self.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"location":
            self.location = value
        elif name in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        code = self.parser.get_status_code()
        if code < 200:  # 1xx (e.g. 103 Early Hints): the real response follows
            self.informational = True
            return
        self.status = code
        self.version = self.parser.get_http_version()
        self.headers_done = True
        if self.head:
            self.complete = True
            self._finish()

    def on_body(self, body: bytes) -> None:
        room = self.limit - self.size
        if len(body) >= room:
            body = body[:room]
            self.complete = True  # enough read: judge what we have
            self._finish()
        self.size += len(body)
        if self.keep:
            self.body += body

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
            self.reason = b""
            self.location = None
            self.framed = False
            return
        self.complete = True
        self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def failure(self) -> str | None:
        """Why this exchange produced no judgeable response, or None."""
        if self.error is not None:
            return self.error
        if not self.headers_done:
            return "connection closed before a complete response header"
        if not self.complete and self.framed:
            return f"connection closed after {self.size} body bytes, before the end"
        return None  # unframed body: the close is its end


class _Failure(Exception):
    """A judged failure inside a hop sequence; its text is the message reason."""


class _Hop:
    """Where the check currently is; exceptions are reported against it."""

    __slots__ = ("connect", "count", "host", "origin", "port", "scheme", "target")

    def __init__(self, scheme: str, host: str, port: int, target: str) -> None:
        self.scheme = scheme
        self.origin = host  # the configured logical host
        self.host = host  # this hop's logical host: Host header, SNI
        self.port = port
        self.target = target  # the device's address
        self.connect = target  # where this hop's socket goes
        self.count = 0  # redirects followed

    @property
    def where(self) -> str:
        return f"on {self.connect} port {self.port}"

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _DEFAULT_PORT[self.scheme] == self.port
        return f"{self.scheme}://{host}" + ("" if default else f":{self.port}") + path


class HttpCheck(BaseCheck):
    """Fetches one URL from the target and judges status, body and latency.

    Never raises for network failures: refused, timeout, TLS errors, bad
    responses, redirect loops, wrong status or body are CRITICAL results,
    slowness WARNING or CRITICAL per the thresholds.
    """

    kind: ClassVar[str] = "http"
    Params: ClassVar[type[CheckParams]] = HttpParams

    def __init__(self) -> None:
        self._contexts = SslContexts(alpn=("http/1.1",))

    def ssl_context(self, verify: bool) -> ssl.SSLContext:
        """The shared client context for `verify` (chain and hostname, or none)."""
        return self._contexts.get(verify)

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        p: HttpParams = params
        address = target.address
        hop = _Hop(p.scheme, p.host or address, p.effective_port, address)
        start = perf_counter()
        try:
            async with asyncio.timeout(timeout):
                resp, path = await self._follow(hop, p)
        except TimeoutError:
            return _critical(f"timeout after {timeout:g} seconds {hop.where}")
        except OSError as exc:  # includes TLS errors, which it names
            return _critical(f"{describe_os_error(exc, hop.connect)} {hop.where}")
        except _Failure as exc:
            return _critical(f"{exc} {hop.where}")
        elapsed = perf_counter() - start
        return _judge(resp, p, elapsed, timeout, hop, path)

    async def _follow(self, hop: _Hop, p: HttpParams) -> tuple[_Response, str]:
        path = p.path
        seen: set[str] = set()  # filled on the first redirect only: most checks have none
        auth = _auth_header(p)
        while True:
            resp = await self._fetch(hop, p, path, auth)
            if resp.status not in REDIRECT_CODES or resp.location is None or not p.follow_redirects:
                return resp, path
            if hop.count >= p.follow_redirects:
                raise _Failure(f"too many redirects (more than {p.follow_redirects})")
            here = hop.url(path)
            seen.add(here)
            url = urljoin(here, resp.location.decode("latin-1"))
            if url in seen:
                raise _Failure(f"redirect loop at {_no_query(url)!r}")
            seen.add(url)
            path, auth = _redirect(hop, url, auth)

    async def _fetch(self, hop: _Hop, p: HttpParams, path: str, auth: str) -> _Response:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        head = p.method == "HEAD"
        keep = p.body_contains is not None or p.body_regex is not None
        resp = _Response(done, head, keep, p.max_body)
        host = f"[{hop.host}]" if ":" in hop.host else hop.host
        if hop.port != _DEFAULT_PORT[hop.scheme]:
            host = f"{host}:{hop.port}"
        request = (
            f"{p.method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: monitord\r\n"
            f"Accept: */*\r\nConnection: close\r\n{auth}\r\n"
        ).encode("latin-1")
        tls = hop.scheme == "https"
        transport, _ = await loop.create_connection(
            lambda: resp,
            hop.connect,
            hop.port,
            ssl=self.ssl_context(p.verify) if tls else None,
            server_hostname=hop.host if tls else None,
        )
        try:
            transport.write(request)
            await done
        finally:
            transport.close()
            resp.parser = None  # break the parser <-> protocol cycle for the GC
        failure = resp.failure()
        if failure is not None:
            raise _Failure(failure)
        return resp


def _auth_header(p: HttpParams) -> str:
    if p.username is None or p.password is None:
        return ""
    token = f"{p.username}:{p.password.get_secret_value()}".encode()
    return f"Authorization: Basic {base64.b64encode(token).decode('ascii')}\r\n"


def _redirect(hop: _Hop, url: str, auth: str) -> tuple[str, str]:
    """Point `hop` at `url`; return the next request path and auth header.

    A redirect to the configured host or the target's address stays on the
    target's address (a virtual host redirecting to itself is still checked
    on this device); other hosts are resolved. Credentials are sent only to
    the configured host and never from https down to http.
    """
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORT[parts.scheme]
    except (KeyError, ValueError) as exc:
        raise _Failure(f"redirect to unsupported URL {_no_query(url)!r}") from exc
    name = (parts.hostname or "").lower()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not name or not _TOKEN.fullmatch(path):
        raise _Failure(f"redirect to invalid URL {_no_query(url)!r}")
    if name != hop.host.lower():
        home = name in (hop.origin.lower(), hop.target.lower())
        hop.connect = hop.target if home else name
    if name != hop.origin.lower() or (hop.scheme == "https" and parts.scheme == "http"):
        auth = ""
    hop.scheme, hop.host, hop.port = parts.scheme, name, port
    hop.count += 1
    return path, auth


def _no_query(url: str) -> str:
    return url.split("?", 1)[0]


def _body_problem(resp: _Response, p: HttpParams) -> str | None:
    body = bytes(resp.body)
    if p.body_contains is not None and p.body_contains.encode() not in body:
        return f"body does not contain {p.body_contains!r}"
    if p.body_regex is not None and not re.search(p.body_regex, body.decode("utf-8", "replace")):
        return f"body does not match {p.body_regex!r}"
    return None


def _judge(
    resp: _Response, p: HttpParams, elapsed: float, timeout: float, hop: _Hop, path: str
) -> CheckResult:
    perf = (time_perf(elapsed, p, timeout), Perf("size", float(resp.size), "B", min=0.0))
    expected = resp.status in p.expect_status if p.expect_status else 200 <= resp.status < 400
    problem: str | None = None
    if not expected:
        codes = ",".join(map(str, p.expect_status)) if p.expect_status else "200-399"
        problem = f"unexpected status, expected {codes}"
    elif p.body_contains is not None or p.body_regex is not None:
        problem = _body_problem(resp, p)
    status = Status.CRITICAL if problem else latency_status(elapsed, p)
    reason = resp.reason.decode("latin-1").strip()
    line = f"HTTP/{resp.version} {resp.status} {reason}".rstrip()
    parts = [line] + ([problem] if problem else [])
    if hop.count:
        parts.append(f"after {hop.count} redirect(s) to {_no_query(hop.url(path))!r}")
    parts.append(f"{resp.size} bytes in {elapsed:.3f} second response time")
    return CheckResult(status, f"HTTP {status.name}: " + " - ".join(parts), perf)


def _critical(reason: str) -> CheckResult:
    return CheckResult(Status.CRITICAL, f"HTTP CRITICAL - {reason}")
