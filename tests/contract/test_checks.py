"""The contract every check type in `checks.REGISTRY` must keep, one suite for all.

Each kind needs an entry in CASES: example params, a healthy loopback service,
one that hangs and one that fails. A kind registered without an entry fails
`test_every_registered_kind_has_a_case`, so new kinds cannot skip the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import pkgutil
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import pytest
from pydantic import ValidationError

import checks
from checks import REGISTRY
from checks.base import CheckContext, CheckParams, CheckType, load_check_class
from checks.heartbeat import HeartbeatRecord, Ping, PingKind, token_key
from monitord.clock import FakeClock
from monitord.config.model import CheckDef
from monitord.heartbeats import HeartbeatBook
from monitord.model import CheckResult, Perf, Status, Target
from tests.checks.loopback import (
    LOOPBACK,
    Zone,
    banner,
    blackhole_port,
    hanging_server,
    http_server,
    make_cert,
    refused_port,
    response,
    silent_dns_server,
    tcp_server,
    tls_server,
    zone_server,
)
from tests.conftest import LATE
from tests.snmp_agents import silent_udp_port, snmpd_port

TARGET = Target("contract-dev", LOOPBACK)
SECRET = "s3cr3t-Pa55w0rd"
HANG_TIMEOUT = 0.5
GRACE = 0.5

Service = Callable[[], contextlib.AbstractAsyncContextManager[int | None]]


@dataclass(frozen=True)
class Case:
    """How to exercise one kind.

    `params` are complete except the port, which is filled in from the
    service (`port_param`, None when the kind has no port). `secret` names a
    param that holds a secret; SECRET is put there and must never come out.
    A None service is skipped with `skip_reason`. `context` builds what the
    check type is started with (None: no context).
    """

    params: dict[str, Any]
    live: Service
    hanging: Service | None
    failing: Service | None
    port_param: str | None = "port"
    secret: str | None = None
    skip_reason: str = ""
    hanging_address: str = LOOPBACK
    context: Callable[[], CheckContext] | None = None


@contextlib.asynccontextmanager
async def no_service() -> AsyncIterator[int | None]:
    yield None


def sync(cm: Callable[[], contextlib.AbstractContextManager[int]]) -> Service:
    @contextlib.asynccontextmanager
    async def wrapper() -> AsyncIterator[int | None]:
        with cm() as port:
            yield port

    return wrapper


def http(status: int, body: bytes = b"ok") -> Service:
    @contextlib.asynccontextmanager
    async def serve() -> AsyncIterator[int | None]:
        async with http_server(lambda _req: response(status, body)) as srv:
            yield srv.port

    return serve


def dns_zone(**kw: Any) -> Service:
    zone = Zone({("www.example.test.", "A"): ["192.0.2.1"]}, **kw)
    return lambda: zone_server(zone)


def tls_live() -> contextlib.AbstractAsyncContextManager[int | None]:
    return tls_server(make_cert())


HB_CLOCK = FakeClock()
HB_BOOK = HeartbeatBook(HB_CLOCK.time)


def heartbeat(pinged: bool) -> Service:
    """A book holding the contract's heartbeat check: pinged just now, or
    created ten days ago and never pinged."""

    @contextlib.asynccontextmanager
    async def book() -> AsyncIterator[int | None]:
        now = HB_CLOCK.time()
        created = HeartbeatRecord(created_at=now if pinged else now - 10 * 86400)
        key = token_key(SECRET + "-heartbeat-token")
        HB_BOOK.index([(f"{TARGET.device_id}/heartbeat", key, created)])
        if pinged:
            HB_BOOK.apply(f"{TARGET.device_id}/heartbeat", Ping(PingKind.SUCCESS, now))
        yield None

    return book


# A Monitoring Plugins-style probe for the `plugin` kind (python, so the suite
# needs no plugin package). It echoes a secret env variable, which the check
# must redact.
PLUGIN_PROBE = """
import os, socket, sys
token = os.environ["PLUGIN_TOKEN"]
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2]))) as s:
        got = s.recv(64)
except OSError as exc:
    print("TCP CRITICAL - %s (token %s)" % (exc, token))
    sys.exit(2)
print("TCP OK - %r (token %s) | time=0.001s;;;0" % (got[:8], token))
sys.exit(0 if got.startswith(b"SSH-") else 2)
"""


CASES: dict[str, Case] = {
    "tcp": Case(
        params={"expect": "SSH-"},
        live=lambda: tcp_server(banner(b"SSH-2.0-OpenSSH_9.6\r\n")),
        hanging=sync(blackhole_port),
        failing=sync(refused_port),
    ),
    "http": Case(
        params={"path": "/health", "username": "monitor", "password": SECRET},
        live=http(200),
        hanging=hanging_server,
        failing=http(401, b"denied"),
        secret="password",
    ),
    "tls": Case(
        params={"verify": False},
        live=tls_live,
        hanging=hanging_server,
        failing=lambda: tcp_server(banner(b"220 not tls\r\n")),
    ),
    "dns": Case(
        params={"query": "www.example.test", "expect": ["192.0.2.1"]},
        live=dns_zone(),
        hanging=silent_dns_server,
        failing=dns_zone(servfail={"www.example.test."}),
    ),
    "snmp": Case(
        params={"get": ["sysUpTime.0", "SNMPv2-MIB::sysName.0"], "community": SECRET},
        live=lambda: snmpd_port(SECRET),
        hanging=sync(silent_udp_port),
        failing=lambda: snmpd_port("not-the-community"),  # wrong community: no answer
        secret="community",
    ),
    "icmp": Case(
        params={"count": 1},
        live=no_service,
        # 0.0.0.0 is answered locally from 127.0.0.1, so the reply never matches the
        # request: a target that stays silent without any packet leaving the host.
        hanging=no_service,
        hanging_address="0.0.0.0",
        failing=None,
        port_param=None,
        skip_reason="no target on loopback refuses ICMP at once; the hanging case covers failure",
    ),
    "heartbeat": Case(
        params={"token": SECRET + "-heartbeat-token", "period": "1d", "grace": "1h"},
        live=heartbeat(pinged=True),
        hanging=None,
        failing=heartbeat(pinged=False),
        port_param=None,
        secret="token",
        skip_reason="a heartbeat is passive: it reads the daemon's book and has nothing to hang on",
        context=lambda: CheckContext(now=HB_CLOCK.time, services={"heartbeats": HB_BOOK}),
    ),
    "plugin": Case(
        params={
            "command": [sys.executable, "-c", PLUGIN_PROBE, "{address}", "{port}"],
            "secret_env": {"PLUGIN_TOKEN": SECRET},
        },
        live=lambda: tcp_server(banner(b"SSH-2.0-OpenSSH_9.6\r\n")),
        hanging=sync(blackhole_port),
        failing=sync(refused_port),
        secret="secret_env",
    ),
    "local": Case(
        params={"metric": "listening"},
        live=lambda: tcp_server(banner(b"SSH-2.0-OpenSSH_9.6\r\n")),
        hanging=None,
        failing=sync(refused_port),
        skip_reason="local checks read this machine's own tables; nothing on loopback hangs them",
    ),
}

KINDS = sorted(REGISTRY)


def test_every_registered_kind_has_a_case() -> None:
    assert set(CASES) == set(REGISTRY), "add a Case for each new kind (and drop removed ones)"


def test_every_module_in_checks_is_registered() -> None:
    folder = Path(checks.__file__).parent
    modules = {m.name for m in pkgutil.iter_modules([str(folder)])} - {"base"}
    registered = {path.split(".")[1] for path in REGISTRY.values()}
    assert modules <= registered, f"unregistered check modules: {sorted(modules - registered)}"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if CASES[name].skip_reason and importlib.util.find_spec(f"checks.{name}") is None:
        pytest.skip(CASES[name].skip_reason)
    return name


def check_class(kind: str) -> type[CheckType]:
    return load_check_class(kind)


def make_params(kind: str, port: int | None) -> dict[str, Any]:
    case = CASES[kind]
    params = dict(case.params)
    if case.port_param is not None:
        params[case.port_param] = port if port is not None else 1
    return params


def test_check_class_keeps_the_protocol(kind: str) -> None:
    cls = check_class(kind)
    assert cls.kind == kind
    assert issubclass(cls.Params, CheckParams)
    assert isinstance(cls(), CheckType)


def test_params_validate_and_reject_unknown_keys(kind: str) -> None:
    params_cls = check_class(kind).Params
    params = make_params(kind, None)
    validated = params_cls.model_validate(params)
    assert isinstance(validated.default_name(kind), str)
    with pytest.raises(ValidationError, match="no_such_option"):
        params_cls.model_validate({**params, "no_such_option": 1})
    name = next(iter(type(validated).model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(validated, name, getattr(validated, name))


# Known violations, each failing strictly so that the fix has to remove it here.
SHADOWING: dict[str, str] = {}


def test_params_do_not_shadow_the_config_s_own_check_keys(
    kind: str, request: pytest.FixtureRequest
) -> None:
    # A check's params sit beside `type`, `name`, `interval`… in the config's
    # check entry; a param of the same name could never be set.
    if kind in SHADOWING:
        request.applymarker(pytest.mark.xfail(strict=True, reason=SHADOWING[kind]))
    own = set(CheckDef.model_fields)
    assert not own & set(check_class(kind).Params.model_fields)


@pytest.mark.parametrize("kind", [k for k in KINDS if CASES[k].secret is not None])
def test_secret_param_is_not_in_the_params_repr(kind: str) -> None:
    validated = check_class(kind).Params.model_validate(make_params(kind, None))
    assert SECRET not in repr(validated)
    assert SECRET not in str(validated.model_dump())


def assert_no_secret(kind: str, result: CheckResult) -> None:
    if CASES[kind].secret is not None:
        assert SECRET not in result.message
        assert all(SECRET not in repr(p) for p in result.perfdata)


async def run_against(
    kind: str, service: Service, timeout: float, address: str = LOOPBACK
) -> tuple[CheckResult, float]:
    check = check_class(kind)()
    context = CASES[kind].context
    await check.start(context() if context is not None else None)
    try:
        async with service() as port:
            params = check_class(kind).Params.model_validate(make_params(kind, port))
            start = perf_counter()
            async with asyncio.timeout(timeout + GRACE):
                result = await check.run(Target(TARGET.device_id, address), params, timeout)
            return result, perf_counter() - start
    finally:
        await check.close()


def assert_shape(result: CheckResult) -> None:
    assert isinstance(result, CheckResult)
    assert isinstance(result.status, Status)
    assert isinstance(result.message, str) and result.message
    assert "\n" not in result.message
    assert isinstance(result.perfdata, tuple)
    assert all(isinstance(p, Perf) for p in result.perfdata)


async def test_live_target_is_ok(kind: str) -> None:
    result, _ = await run_against(kind, CASES[kind].live, 5.0)
    assert_shape(result)
    assert result.status is Status.OK, result.message
    assert_no_secret(kind, result)


async def test_hanging_target_fails_within_the_timeout(kind: str) -> None:
    case = CASES[kind]
    if case.hanging is None:
        pytest.skip(case.skip_reason or f"{kind} has no hanging target")
    result, took = await run_against(kind, case.hanging, HANG_TIMEOUT, case.hanging_address)
    assert_shape(result)
    assert result.status in (Status.CRITICAL, Status.UNKNOWN), result.message
    assert took <= HANG_TIMEOUT + GRACE + LATE
    assert_no_secret(kind, result)


async def test_failing_target_is_a_result_not_an_exception(kind: str) -> None:
    case = CASES[kind]
    if case.failing is None:
        pytest.skip(case.skip_reason or f"{kind} has no failing target")
    result, _ = await run_against(kind, case.failing, 5.0)
    assert_shape(result)
    assert result.status in (Status.CRITICAL, Status.UNKNOWN), result.message
    assert_no_secret(kind, result)
