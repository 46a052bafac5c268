"""HttpCheck against real loopback HTTP and HTTPS servers."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

import pytest
from pydantic import ValidationError

from checks.http import HttpCheck, HttpParams
from monitord.model import CheckResult, Status, Target
from tests.checks.loopback import (
    LOOPBACK,
    Request,
    banner,
    chunked,
    hanging_server,
    http_server,
    make_cert,
    refused_port,
    response,
    server_context,
    tcp_server,
    trust,
)
from tests.conftest import LATE

TARGET = Target("dev-1", LOOPBACK)
PAGE = b"<html><body>all systems healthy</body></html>"


async def run(
    timeout: float = 5.0, check: HttpCheck | None = None, **params: object
) -> CheckResult:
    check = check or HttpCheck()
    await check.start()
    try:
        return await check.run(TARGET, HttpParams.model_validate(params), timeout)
    finally:
        await check.close()


def always(raw: bytes) -> Callable[[Request], bytes]:
    return lambda _request: raw


def routes(table: dict[str, bytes]) -> Callable[[Request], bytes]:
    return lambda request: table.get(request.path, response(404, b"nope"))


async def test_ok_response_has_check_http_message_and_perfdata() -> None:
    async with http_server(always(response(200, PAGE))) as srv:
        result = await run(port=srv.port)
    assert result.status is Status.OK
    assert re.fullmatch(
        rf"HTTP OK: HTTP/1.1 200 OK - {len(PAGE)} bytes in \d+\.\d{{3}} second response time",
        result.message,
    )
    time, size = result.perfdata
    assert (time.label, time.uom, time.max) == ("time", "s", 5.0)
    assert (size.label, size.value, size.uom) == ("size", float(len(PAGE)), "B")


async def test_request_carries_path_virtual_host_and_basic_auth() -> None:
    async with http_server(always(response(200, PAGE))) as srv:
        result = await run(
            port=srv.port, path="/status?x=1", host="intranet.example", username="u", password="pw"
        )
    assert result.status is Status.OK, result.message
    (req,) = srv.requests
    assert (req.method, req.path) == ("GET", "/status?x=1")
    assert req.headers["host"] == f"intranet.example:{srv.port}"
    assert req.headers["connection"] == "close"
    assert req.headers["authorization"] == "Basic " + base64.b64encode(b"u:pw").decode()


async def test_head_request_does_not_wait_for_a_body() -> None:
    # A HEAD answer announces a length but sends no body; waiting for it would time out.
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n"

    async def respond(request: Request) -> bytes:
        assert request.method == "HEAD"
        return head

    async with http_server(respond) as srv:
        start = perf_counter()
        result = await run(timeout=2.0, port=srv.port, method="HEAD")
        assert perf_counter() - start < 2.0 - 0.5  # well before the timeout
    assert result.status is Status.OK, result.message
    assert [r.method for r in srv.requests] == ["HEAD"]


@pytest.mark.parametrize(
    ("status", "expect_status", "verdict", "wording"),
    [
        (404, (), Status.CRITICAL, "HTTP/1.1 404 Not Found - unexpected status, expected 200-399"),
        (500, (), Status.CRITICAL, "HTTP/1.1 500 Whatever - unexpected status, expected 200-399"),
        (204, (200,), Status.CRITICAL, "HTTP/1.1 204 Whatever - unexpected status, expected 200"),
        (404, (404, 410), Status.OK, "HTTP/1.1 404 Not Found - 4 bytes"),
        (302, (), Status.OK, "HTTP/1.1 302 Found - 4 bytes"),  # no Location: nothing to follow
    ],
)
async def test_status_codes_are_judged(
    status: int, expect_status: tuple[int, ...], verdict: Status, wording: str
) -> None:
    body = b"" if status == 204 else b"body"
    async with http_server(always(response(status, body))) as srv:
        result = await run(port=srv.port, expect_status=expect_status)
    assert result.status is verdict
    assert result.message.startswith(f"HTTP {verdict.name}: {wording}"), result.message


@pytest.mark.parametrize(
    ("params", "verdict", "wording"),
    [
        ({"body_contains": "healthy"}, Status.OK, "HTTP OK: HTTP/1.1 200 OK - "),
        (
            {"body_contains": "degraded"},
            Status.CRITICAL,
            "HTTP CRITICAL: HTTP/1.1 200 OK - body does not contain 'degraded' - ",
        ),
        ({"body_regex": r"systems\s+heal"}, Status.OK, "HTTP OK: "),
        (
            {"body_regex": r"^down$"},
            Status.CRITICAL,
            "HTTP CRITICAL: HTTP/1.1 200 OK - body does not match '^down$' - ",
        ),
        (
            {"body_contains": "healthy", "body_regex": "nope"},
            Status.CRITICAL,
            "HTTP CRITICAL: HTTP/1.1 200 OK - body does not match 'nope'",
        ),
    ],
)
async def test_body_matching(params: dict[str, Any], verdict: Status, wording: str) -> None:
    async with http_server(always(response(200, PAGE))) as srv:
        result = await run(port=srv.port, **params)
    assert result.status is verdict
    assert result.message.startswith(wording), result.message


async def test_chunked_body_is_decoded_and_matched_across_chunks() -> None:
    raw = chunked(b"all sys", b"tems hea", b"lthy")
    async with http_server(always(raw)) as srv:
        result = await run(port=srv.port, body_contains="systems healthy")
    assert result.status is Status.OK, result.message
    assert result.perfdata[1].value == len(b"all systems healthy")


async def test_body_delimited_by_close_is_complete() -> None:
    raw = response(200, PAGE, length=False)
    async with http_server(always(raw)) as srv:
        result = await run(port=srv.port, body_contains="healthy")
    assert result.status is Status.OK, result.message
    assert f"{len(PAGE)} bytes" in result.message


async def test_body_cut_short_is_critical() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"
    async with http_server(always(raw)) as srv:
        result = await run(port=srv.port)
    assert result.status is Status.CRITICAL
    assert result.message == (
        "HTTP CRITICAL - connection closed after 10 body bytes, before the end "
        f"on {LOOPBACK} port {srv.port}"
    )


async def test_body_read_stops_at_the_limit() -> None:
    body = b"needle" + b"x" * 20000 + b"late-needle"
    async with http_server(always(response(200, body))) as srv:
        early = await run(port=srv.port, max_body=1000, body_contains="needle")
        late = await run(port=srv.port, max_body=1000, body_contains="late-needle")
    assert early.status is Status.OK, early.message
    assert early.perfdata[1].value == 1000
    assert late.status is Status.CRITICAL
    assert "body does not contain 'late-needle'" in late.message


async def test_informational_response_before_the_real_one_is_skipped() -> None:
    raw = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + response(200, PAGE)
    async with http_server(always(raw)) as srv:
        result = await run(port=srv.port)
    assert result.status is Status.OK, result.message
    assert "HTTP/1.1 200 OK" in result.message


async def test_redirects_are_followed_and_reported() -> None:
    table = {
        "/": response(301, headers={"Location": "/login?token=s3cr3t"}),
        "/login?token=s3cr3t": response(302, headers={"Location": "/home"}),
        "/home": response(200, PAGE),
    }
    async with http_server(routes(table)) as srv:
        result = await run(port=srv.port, body_contains="healthy")
    assert result.status is Status.OK, result.message
    assert f"after 2 redirect(s) to 'http://{LOOPBACK}:{srv.port}/home'" in result.message
    assert [r.path for r in srv.requests] == ["/", "/login?token=s3cr3t", "/home"]


async def test_redirect_loop_is_critical_and_never_shows_the_query() -> None:
    table = {
        "/a": response(302, headers={"Location": "/b?token=s3cr3t"}),
        "/b?token=s3cr3t": response(302, headers={"Location": f"http://{LOOPBACK}:{{port}}/a"}),
    }

    def respond(request: Request) -> bytes:
        return table[request.path].replace(b"{port}", str(srv.port).encode())

    async with http_server(respond) as srv:
        result = await run(port=srv.port, path="/a")
    assert result.status is Status.CRITICAL
    assert result.message == (
        f"HTTP CRITICAL - redirect loop at 'http://{LOOPBACK}:{srv.port}/a' "
        f"on {LOOPBACK} port {srv.port}"
    )
    assert "s3cr3t" not in result.message


async def test_too_many_redirects_is_critical() -> None:
    def respond(request: Request) -> bytes:
        n = int(request.path.strip("/") or 0)
        return response(302, headers={"Location": f"/{n + 1}"})

    async with http_server(respond) as srv:
        result = await run(port=srv.port, follow_redirects=3)
    assert result.status is Status.CRITICAL
    assert result.message.startswith("HTTP CRITICAL - too many redirects (more than 3) on ")
    assert len(srv.requests) == 4


async def test_follow_redirects_zero_judges_the_redirect_itself() -> None:
    async with http_server(always(response(301, headers={"Location": "/x"}))) as srv:
        ok = await run(port=srv.port, follow_redirects=0)
        strict = await run(port=srv.port, follow_redirects=0, expect_status=[200])
    assert ok.status is Status.OK
    assert ok.message.startswith("HTTP OK: HTTP/1.1 301 Moved Permanently")
    assert strict.status is Status.CRITICAL
    assert len(srv.requests) == 2


async def test_credentials_do_not_follow_a_redirect_to_another_host() -> None:
    async with http_server(always(response(200, PAGE)), host="127.0.0.2") as other:
        elsewhere = f"http://127.0.0.2:{other.port}/"
        async with http_server(always(response(302, headers={"Location": elsewhere}))) as srv:
            result = await run(port=srv.port, username="admin", password="hunter2")
    assert result.status is Status.OK, result.message
    assert "authorization" in srv.requests[0].headers
    assert "authorization" not in other.requests[0].headers


async def test_refused_is_critical() -> None:
    with refused_port() as port:
        result = await run(port=port)
    assert result.status is Status.CRITICAL
    assert result.message == f"HTTP CRITICAL - connection refused on {LOOPBACK} port {port}"
    assert result.perfdata == ()


async def test_server_that_never_answers_times_out_on_time() -> None:
    async with hanging_server() as port:
        start = perf_counter()
        result = await run(timeout=0.3, port=port)
        took = perf_counter() - start
    assert result.status is Status.CRITICAL
    assert result.message == f"HTTP CRITICAL - timeout after 0.3 seconds on {LOOPBACK} port {port}"
    assert took < 0.3 + LATE


async def test_garbage_is_an_invalid_response() -> None:
    async with http_server(always(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")) as srv:
        result = await run(port=srv.port)
    assert result.status is Status.CRITICAL
    assert result.message.startswith("HTTP CRITICAL - invalid HTTP response: ")


async def test_close_before_any_response_is_critical() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")

    async with tcp_server(hang_up) as port:
        result = await run(port=port)
    assert result.status is Status.CRITICAL
    assert result.message == (
        "HTTP CRITICAL - connection closed before a complete response header "
        f"on {LOOPBACK} port {port}"
    )


@pytest.mark.parametrize(
    ("thresholds", "expected"),
    [({"warn": 0.05}, Status.WARNING), ({"warn": 0.05, "crit": 0.1}, Status.CRITICAL)],
)
async def test_slow_response_is_warning_or_critical(
    thresholds: dict[str, Any], expected: Status
) -> None:
    async def slow(_request: Request) -> bytes:
        await asyncio.sleep(0.2)
        return response(200, PAGE)

    async with http_server(slow) as srv:
        result = await run(port=srv.port, **thresholds)
    assert result.status is expected
    assert re.match(rf"HTTP {expected.name}: HTTP/1.1 200 OK - \d+ bytes in 0\.2", result.message)


# ------------------------------------------------------------------- HTTPS


async def test_https_self_signed_fails_verification_by_default() -> None:
    tls = server_context(make_cert())
    async with http_server(always(response(200, PAGE)), tls=tls) as srv:
        result = await run(scheme="https", port=srv.port)
    assert result.status is Status.CRITICAL
    assert result.message == (
        "HTTP CRITICAL - certificate verify failed: self-signed certificate "
        f"on {LOOPBACK} port {srv.port}"
    )


async def test_https_without_verification_accepts_self_signed() -> None:
    tls = server_context(make_cert())
    async with http_server(always(response(200, PAGE)), tls=tls) as srv:
        result = await run(scheme="https", port=srv.port, verify=False, body_contains="healthy")
    assert result.status is Status.OK, result.message


async def test_https_trusted_chain_verifies_and_checks_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = make_cert("Test Root CA", ca=True, sans=())
    leaf = make_cert("intranet.example", issuer=ca, sans=("intranet.example", LOOPBACK))
    monkeypatch.setenv("SSL_CERT_FILE", trust(ca, tmp_path))
    check = HttpCheck()  # contexts load the CA store on first use, after setenv
    async with http_server(always(response(200, PAGE)), tls=server_context(leaf)) as srv:
        by_ip = await run(check=check, scheme="https", port=srv.port)
        by_name = await run(check=check, scheme="https", port=srv.port, host="intranet.example")
        wrong = await run(check=check, scheme="https", port=srv.port, host="other.example")
    assert by_ip.status is Status.OK, by_ip.message
    assert by_name.status is Status.OK, by_name.message
    assert wrong.status is Status.CRITICAL
    assert wrong.message.startswith("HTTP CRITICAL - certificate verify failed: Hostname mismatch")


async def test_https_against_a_plain_text_server_is_a_tls_error() -> None:
    async with tcp_server(banner(b"HTTP/1.1 400 Bad Request\r\n\r\nplain http")) as port:
        result = await run(scheme="https", port=port)
    assert result.status is Status.CRITICAL
    assert result.message.startswith("HTTP CRITICAL - TLS error: ")


async def test_ssl_contexts_are_built_once_per_verify_setting() -> None:
    check = HttpCheck()
    assert check.ssl_context(True) is check.ssl_context(True)
    assert check.ssl_context(False) is check.ssl_context(False)
    assert check.ssl_context(False).verify_mode is not check.ssl_context(True).verify_mode


# ------------------------------------------------------------------ params


@pytest.mark.parametrize(
    "bad",
    [
        {"path": "status"},
        {"path": "/a b"},
        {"path": "/a\r\nX-Injected: 1"},
        {"host": "evil\r\nX: 1"},
        {"host": "example.com:8080"},
        {"method": "POST"},
        {"scheme": "ftp"},
        {"port": 0},
        {"expect_status": [600]},
        {"body_regex": "("},
        {"method": "HEAD", "body_contains": "x"},
        {"username": "u"},
        {"password": "p"},
        {"username": "a:b", "password": "p"},
        {"follow_redirects": -1},
        {"max_body": 0},
        {"warn": 2, "crit": 1},
        {"bogus": True},
    ],
)
def test_params_reject(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        HttpParams.model_validate(bad)


def test_params_defaults_and_names() -> None:
    p = HttpParams()
    assert (p.effective_port, p.path, p.method, p.follow_redirects, p.verify, p.max_body) == (
        80,
        "/",
        "GET",
        5,
        True,
        1 << 20,
    )
    assert HttpParams(scheme="https").effective_port == 443
    assert p.default_name("http") == "http:80"
    assert HttpParams(scheme="https", path="/health?k=v").default_name("http") == "http:443/health"


def test_password_is_hidden_in_params_repr() -> None:
    p = HttpParams.model_validate({"username": "u", "password": "hunter2"})
    assert "hunter2" not in repr(p)
    assert "hunter2" not in str(p.model_dump())
