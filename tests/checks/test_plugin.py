"""The `plugin` kind: output/perfdata parsing, process handling, real Monitoring Plugins.

The parser is table-tested against the Monitoring Plugins development
guidelines. Process handling is tested with scripts written into tmp_path
(garbage, megabytes, never exits and forks, ignores SIGTERM, exit 4, killed
by a signal), and the real plugins of Debian's monitoring-plugins-basic run
against loopback services; those skip when the package is missing, except
under CI.
"""

from __future__ import annotations

import asyncio
import math
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from pydantic import ValidationError

from checks.plugin import (
    DEFAULT_PLUGIN_DIR,
    PluginCheck,
    PluginParams,
    PluginResult,
    PluginSettings,
    parse_output,
    parse_perfdata,
)
from monitord.model import CheckResult, Perf, Status, Target
from tests.checks.loopback import (
    LOOPBACK,
    banner,
    blackhole_port,
    http_server,
    loop_factories,
    refused_port,
    response,
    tcp_server,
)
from tests.conftest import LATE, need

TARGET = Target("acme/web-1", LOOPBACK)

# ------------------------------------------------------------------ perfdata


def P(label: str, value: float, uom: str = "", *rest: Any) -> Perf:
    return Perf(label, value, uom, *rest)


PERFDATA: list[tuple[str, list[Perf], int]] = [
    # (input, parsed, how many items skipped)
    ("time=0.002s;1;2;0;10", [P("time", 0.002, "s", "1", "2", 0.0, 10.0)], 0),
    ("'label with spaces'=5MB;;;0", [P("label with spaces", 5, "MB", None, None, 0.0)], 0),
    ("'it''s'=1", [P("it's", 1)], 0),
    ("''''=1", [P("'", 1)], 0),
    ("'a=b'=1", [P("a=b", 1)], 0),
    ("a=1;;;;", [P("a", 1)], 0),
    ("a=1;;", [P("a", 1)], 0),
    ("a=1;5", [P("a", 1, "", "5")], 0),
    ("pl=0%;20;50;0;", [P("pl", 0, "%", "20", "50", 0.0)], 0),
    ("load1=1.670;5.000;10.000;0;", [P("load1", 1.67, "", "5.000", "10.000", 0.0)], 0),
    ("a=10%;80:90;@95:100", [P("a", 10, "%", "80:90", "@95:100")], 0),
    ("a=1;~:10;10:", [P("a", 1, "", "~:10", "10:")], 0),
    ("a=-1.5;-10:-1;@~:0;-20;.5", [P("a", -1.5, "", "-10:-1", "@~:0", -20.0, 0.5)], 0),
    ("a=1.5e-05s", [P("a", 1.5e-05, "s")], 0),
    (
        "a=5c b=6us c=7ms d=8KB e=9TB f=1B",
        [
            P("a", 5, "c"),
            P("b", 6, "us"),
            P("c", 7, "ms"),
            P("d", 8, "KB"),
            P("e", 9, "TB"),
            P("f", 1, "B"),
        ],
        0,
    ),
    ("x=1GiB", [P("x", 1, "GiB")], 0),  # outside the list, kept verbatim as Icinga does
    ("  a=1 \t b=2  ", [P("a", 1), P("b", 2)], 0),
    ("a=1,5", [], 1),  # a German decimal comma
    ("a=abc", [], 1),
    ("a=", [], 1),
    ("a=;1;2", [], 1),
    ("=5", [], 1),
    ("''=5", [], 1),
    ("a=1;2;3;4;5;6", [], 1),
    ("a=1;x;2", [], 1),
    ("a=1;2;1:2:3", [], 1),
    ("a=1;;;z", [], 1),
    ("a=1;;;0;U", [], 1),  # only the value may be U
    ("noequals b=2", [P("b", 2)], 1),
    ("a'b=1 c=3", [P("c", 3)], 1),
    ("'unterminated=5 b=1", [], 1),
    ("'q'x=1 c=3", [P("c", 3)], 1),
    ("| b=2", [P("b", 2)], 1),
]


@pytest.mark.parametrize(("text", "expected", "skipped"), PERFDATA)
def test_perfdata_parser(text: str, expected: list[Perf], skipped: int) -> None:
    notes: list[str] = []
    assert parse_perfdata(text, notes) == expected
    assert len(notes) == skipped, notes
    assert all(note.startswith("skipped perfdata ") for note in notes)


def test_unknown_value_u_is_nan_and_keeps_its_fields() -> None:
    (perf,) = parse_perfdata("rta=Ums;100;200;0")
    assert math.isnan(perf.value)
    assert (perf.label, perf.uom, perf.warn, perf.crit, perf.min) == ("rta", "ms", "100", "200", 0)


def test_perfdata_parser_never_raises_on_garbage() -> None:
    junk = "".join(chr(c) for c in range(0, 0x3000, 7)) + "'''=;;;;;;==''" * 50
    notes: list[str] = []
    parse_perfdata(junk, notes)
    parse_output(junk + "\n" + junk + "|" + junk)


OUTPUTS: list[tuple[str, str, str, list[str]]] = [
    # (output, text, long text, perfdata labels)
    ("OK - fine", "OK - fine", "", []),
    ("OK - fine\n", "OK - fine", "", []),
    ("OK - fine | a=1 b=2", "OK - fine", "", ["a", "b"]),
    ("OK - fine|a=1", "OK - fine", "", ["a"]),
    ("DISK OK\nline 2\nline 3", "DISK OK", "line 2\nline 3", []),
    (
        # the guidelines' multi-line layout: perfdata after a | on a later line,
        # continuing over every line after it
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
        "/ 15272 MB (77%);\n/boot 68 MB (69%);\n"
        "/home 69357 MB (27%);\n/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
        "/home=69357MB;253404;253409;0;253414\n/var/log=818MB;970;975;0;980",
        "DISK OK - free space: / 3326 MB (56%);",
        "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%); ",
        ["/", "/boot", "/home", "/var/log"],
    ),
    ("T | a=1\nL | b=2", "T", "L ", ["a", "b"]),  # the two parts never run together
    ("T | a=1\n| b=2", "T", "", ["a", "b"]),
    ("T\r\nlong\r\n", "T", "long", []),
    ("", "", "", []),
    ("\n\n", "", "", []),
    (" | a=1", "", "", ["a"]),
]


@pytest.mark.parametrize(("output", "text", "long_text", "labels"), OUTPUTS)
def test_output_parser(output: str, text: str, long_text: str, labels: list[str]) -> None:
    parsed = parse_output(output)
    assert parsed.text == text
    assert parsed.long_text == long_text
    assert [p.label for p in parsed.perfdata] == labels
    assert parsed.notes == ()


def test_output_parser_caps_its_notes() -> None:
    parsed = parse_output("T | " + " ".join(f"bad{i}" for i in range(30)))
    assert len(parsed.notes) == 11
    assert parsed.notes[-1] == "… and 20 more"


# -------------------------------------------------------------------- params


def params(**kw: Any) -> PluginParams:
    return PluginParams.model_validate(kw)


@pytest.mark.parametrize(
    ("kw", "error"),
    [
        ({"command": "check_tcp -H x"}, "not a string (no shell is used)"),
        ({"command": []}, "at least 1 item"),
        ({"command": ["bin/check_tcp"]}, "absolute path or a plugin name"),
        ({"command": ["./check_tcp"]}, "absolute path or a plugin name"),
        ({"command": [".."]}, "absolute path or a plugin name"),
        ({"command": [""]}, "absolute path or a plugin name"),
        ({"command": ["check_tcp", "-H", "{adress}"]}, "unknown placeholder {adress}"),
        ({"command": ["check_tcp", "-p", "{port}"]}, "port and a {port} placeholder"),
        ({"command": ["check_tcp"], "port": 22}, "port and a {port} placeholder"),
        ({"command": ["check_tcp"], "env": {"1X": "y"}}, "not a valid environment variable"),
        ({"command": ["c"], "env": {"X": "1"}, "secret_env": {"X": "2"}}, "both env and"),
        ({"command": ["c\x00"]}, "NUL"),
        ({"command": ["c"], "secret_env": {"X": "a\x00b"}}, "value of 'X' contains a NUL"),
    ],
)
def test_params_reject(kw: dict[str, Any], error: str) -> None:
    with pytest.raises(ValidationError, match=error.replace("(", r"\(").replace(")", r"\)")):
        params(**kw)


def test_argv_substitutes_placeholders_and_resolves_the_plugin_dir() -> None:
    command = "check_x -H {address} -d {device} -p {port} -t {timeout} {{address}} a{b"
    p = params(command=[*command.split(), "{ print $1 }"], port=5432)
    argv = "/opt/plugins/check_x -H 127.0.0.1 -d acme/web-1 -p 5432 -t 9 {address} a{b"
    assert p.argv(TARGET, 10.0, "/opt/plugins") == [*argv.split(), "{ print $1 }"]
    assert params(command=["/bin/true", "{timeout}"]).argv(TARGET, 0.5, "/x") == ["/bin/true", "1"]
    assert p.default_name("plugin") == "plugin:check_x:5432"
    assert params(command=["/usr/local/bin/check_y"]).default_name("plugin") == "plugin:check_y"


def test_secret_env_is_masked_in_the_params() -> None:
    p = params(command=["c"], secret_env={"PGPASSWORD": "hunter2-long"})
    assert "hunter2-long" not in repr(p)
    assert "hunter2-long" not in str(p.model_dump())


# ------------------------------------------------------- process handling


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def run(
    command: list[str],
    timeout: float = 5.0,
    settings: PluginSettings | None = None,
    **kw: Any,
) -> PluginResult:
    check = PluginCheck(settings)
    await check.start()
    try:
        result = await check.run(TARGET, params(command=command, **kw), timeout)
    finally:
        await check.close()
    assert isinstance(result, CheckResult)
    assert "\n" not in result.message and result.message
    if not isinstance(result, PluginResult):
        pytest.fail(f"expected a PluginResult, got {result!r}")
    return result


def gone(pid: int) -> bool:
    """True once `pid` is dead (a zombie left for an init that never reaps counts)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_gone(pid: int, within: float = 2.0) -> bool:
    end = time.monotonic() + within
    while not gone(pid):
        if time.monotonic() > end:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.parametrize(("code", "status"), [(s.value, s) for s in Status])
async def test_exit_codes_map_to_statuses(tmp_path: Path, code: int, status: Status) -> None:
    path = script(tmp_path, "p", f"echo 'SVC {status.name} - fine | t=1s;2;3'\nexit {code}\n")
    result = await run([path])
    assert result.status is status
    assert result.message == f"SVC {status.name} - fine"
    assert result.perfdata == (Perf("t", 1.0, "s", "2", "3"),)


async def test_exit_code_4_is_unknown_with_the_code(tmp_path: Path) -> None:
    result = await run([script(tmp_path, "p", "echo 'weird'\nexit 4\n")])
    assert result.status is Status.UNKNOWN
    assert result.message == "plugin exited with code 4 (not 0-3): 'weird'"


async def test_death_by_signal_is_unknown_naming_it(tmp_path: Path) -> None:
    result = await run([script(tmp_path, "p", "echo 'half a line'\nkill -SEGV $$\n")])
    assert result.status is Status.UNKNOWN
    assert result.message == "plugin killed by signal 11 (SIGSEGV): 'half a line'"


async def test_garbage_output_is_decoded_with_replacement(tmp_path: Path) -> None:
    body = r"printf '\377\376OK \000\033[31m bin\r\200ary | a=1 b=\377\n\377long\n'" + "\n"
    result = await run([script(tmp_path, "p", body)])
    assert result.status is Status.OK
    assert result.message == "\ufffd\ufffdOK \ufffd\ufffd[31m bin\ufffd\ufffdary"
    assert result.perfdata == (Perf("a", 1.0),)
    assert result.long_output == "\ufffdlong"
    assert any("skipped perfdata 'b=\ufffd'" in n for n in result.notes)


async def test_a_long_first_line_is_cut(tmp_path: Path) -> None:
    result = await run([script(tmp_path, "p", "printf 'x%.0s' $(seq 2000); echo\n")])
    assert result.status is Status.OK
    assert result.message == "x" * 500 + "…"


async def test_megabytes_of_output_are_cut_and_the_group_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    body = f"echo $$ > {pid_file}\nwhile :; do echo 'spam spam spam spam'; done\n"
    started = time.monotonic()
    result = await run([script(tmp_path, "p", body)], settings=PluginSettings(max_output=4096))
    assert time.monotonic() - started < 5.0 - LATE  # cut, not run to the timeout
    assert result.status is Status.UNKNOWN
    assert result.message == (
        "plugin printed more than 4096 bytes (rest discarded, process group killed): "
        "'spam spam spam spam'"
    )
    assert len(result.long_output) < 4096
    assert await wait_gone(int(pid_file.read_text()))


async def test_stderr_is_kept_and_used_when_stdout_is_empty(tmp_path: Path) -> None:
    result = await run([script(tmp_path, "p", "echo 'cannot open socket' >&2\nexit 2\n")])
    assert result.status is Status.CRITICAL
    assert result.message == "(no output; stderr: cannot open socket)"
    assert result.notes == ("stderr: cannot open socket",)


async def test_no_output_at_all(tmp_path: Path) -> None:
    result = await run([script(tmp_path, "p", "exit 0\n")])
    assert (result.status, result.message) == (Status.OK, "(no output returned from plugin)")


async def test_hung_plugin_and_its_child_are_killed_as_a_group(tmp_path: Path) -> None:
    child = tmp_path / "child"
    body = f"sleep 1000 &\necho $! > {child}\necho 'starting…'\nsleep 1000\n"
    started = time.monotonic()
    result = await run([script(tmp_path, "p", body)], timeout=1.0)
    assert time.monotonic() - started <= 1.5 + LATE  # the timeout plus the engine's grace
    assert result.status is Status.UNKNOWN
    assert result.message == "plugin timed out after 1s (process group killed): 'starting…'"
    assert await wait_gone(int(child.read_text()))


async def test_sigterm_ignored_by_plugin_and_child_gets_sigkill(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    body = f"trap '' TERM\nsleep 1000 &\necho $$ $! > {pids}\nsleep 1000\n"
    started = time.monotonic()
    result = await run([script(tmp_path, "p", body)], timeout=1.0)
    assert time.monotonic() - started <= 1.5 + LATE  # the timeout plus the engine's grace
    assert result.message == "plugin timed out after 1s (process group killed) with no output"
    for pid in pids.read_text().split():
        assert await wait_gone(int(pid)), pid


async def test_children_left_holding_the_output_are_killed(tmp_path: Path) -> None:
    child = tmp_path / "child"
    body = f"(sleep 1000 & echo $! > {child})\necho 'OK - done'\n"
    started = time.monotonic()
    result = await run([script(tmp_path, "p", body)], timeout=5.0)
    assert time.monotonic() - started < 5.0 - LATE
    assert (result.status, result.message) == (Status.OK, "OK - done")
    assert "children kept the output open" in result.notes[-1]
    assert await wait_gone(int(child.read_text()))


async def test_cancelling_the_check_kills_the_group(tmp_path: Path) -> None:
    child = tmp_path / "child"
    path = script(tmp_path, "p", f"sleep 1000 &\necho $! > {child}\nsleep 1000\n")
    task = asyncio.ensure_future(run([path], timeout=30.0))
    for _ in range(250):
        if child.exists() and child.read_text().strip():
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The plugin itself is reaped before the cancelled check returns: the loop that
    # would reap it later may be closing (a zombie then outlives the test run).
    assert [c for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE] == []
    assert await wait_gone(int(child.read_text()))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: "check_nothing_here", "no such file"),
        (lambda d: str(d / "noexec"), "permission denied"),
        (lambda d: str(d / "noshebang"), "exec format error"),
    ],
)
async def test_unstartable_plugins_are_unknown(
    tmp_path: Path, make: Callable[[Path], str], message: str
) -> None:
    (tmp_path / "noexec").write_text("#!/bin/sh\n")
    (tmp_path / "noshebang").write_bytes(b"\x7fELF garbage")
    (tmp_path / "noshebang").chmod(0o755)
    program = make(tmp_path)
    result = await run([program], settings=PluginSettings(plugin_dir=str(tmp_path)))
    assert result.status is Status.UNKNOWN
    resolved = program if program.startswith("/") else str(tmp_path / program)
    assert result.message == f"cannot execute {resolved!r}: {message}"


async def test_plugin_names_resolve_in_the_plugin_dir(tmp_path: Path) -> None:
    script(tmp_path, "check_mine", 'echo "MINE OK - $0 $*"\n')
    settings = PluginSettings(plugin_dir=str(tmp_path))
    result = await run(["check_mine", "-H", "{address}", "-t", "{timeout}"], 10, settings)
    assert result.message == f"MINE OK - {tmp_path}/check_mine -H 127.0.0.1 -t 9"


async def test_environment_is_minimal_plus_env_and_secrets_are_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITORD_DATABASE_URL", "postgresql://u:daemon-secret@db/x")
    body = 'echo "OK - $LC_ALL $COLOUR pw=$PGPASSWORD"\nenv\n'
    result = await run(
        [script(tmp_path, "p", body)],
        env={"COLOUR": "blue"},
        secret_env={"PGPASSWORD": "hunter2-long"},
    )
    assert result.message == "OK - C blue pw=<secret>"
    assert "daemon-secret" not in result.long_output
    assert "PGPASSWORD=<secret>" in result.long_output.splitlines()
    assert "hunter2-long" not in repr(result)


async def test_parallelism_is_bounded(tmp_path: Path) -> None:
    running = tmp_path / "running"
    running.mkdir()
    body = (
        f'touch {running}/$$\nsleep 0.2\necho "OK - $(ls {running} | wc -l) running"\n'
        f"rm {running}/$$\n"
    )
    path = script(tmp_path, "p", body)
    check = PluginCheck(PluginSettings(max_parallel=2))
    await check.start()
    results = await asyncio.gather(
        *(check.run(TARGET, params(command=[path]), 5) for _ in range(6))
    )
    seen = {int(r.message.split()[2]) for r in results}
    assert all(r.status is Status.OK for r in results)
    assert max(seen) <= 2
    assert check.running == 0


async def test_a_check_waiting_for_a_slot_gives_up_at_its_timeout(tmp_path: Path) -> None:
    slow = script(tmp_path, "slow", "sleep 1\necho OK\n")
    check = PluginCheck(PluginSettings(max_parallel=1))
    await check.start()
    first = asyncio.ensure_future(check.run(TARGET, params(command=[slow]), 5))
    await asyncio.sleep(0.1)
    waiting = await check.run(TARGET, params(command=[slow]), 0.3)
    assert waiting.status is Status.UNKNOWN
    assert waiting.message == "plugin not started: all 1 plugin slots stayed busy for 0.3s"
    assert (await first).status is Status.OK


async def test_no_descriptor_or_zombie_is_left_behind(tmp_path: Path) -> None:
    scripts = [
        script(tmp_path, "ok", "echo 'OK - fine | a=1'\n"),
        script(tmp_path, "hang", "sleep 1000 &\nsleep 1000\n"),
        script(tmp_path, "flood", "while :; do echo spam; done\n"),
        script(tmp_path, "linger", "(sleep 1000 &)\necho OK\n"),
    ]
    before = len(os.listdir("/proc/self/fd"))
    for path in scripts * 3:
        await run([path], timeout=0.5)
    await asyncio.sleep(0.1)
    assert len(os.listdir("/proc/self/fd")) == before
    zombies = [c for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]
    assert zombies == []


async def test_exit_is_seen_without_pidfd_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pidfd(pid: int) -> int:
        raise OSError("pidfd_open not available")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    ok = await run([script(tmp_path, "ok", "echo 'OK - threaded'\nexit 1\n")])
    assert (ok.status, ok.message) == (Status.WARNING, "OK - threaded")
    hung = await run([script(tmp_path, "hang", "sleep 1000\n")], timeout=0.5)
    assert hung.message.startswith("plugin timed out after 0.5s")


# The daemon runs on uvloop, whose subprocess transport is libuv's, not asyncio's:
# the process-group handling must hold on both.
@pytest.mark.parametrize("loop", sorted(loop_factories()))
def test_group_kill_and_signals_on_both_loops(tmp_path: Path, loop: str) -> None:
    child = tmp_path / "child"
    hang = script(tmp_path, "hang", f"sleep 1000 &\necho $! > {child}\nsleep 1000\n")
    killed = script(tmp_path, "killed", "kill -KILL $$\n")
    flood = script(tmp_path, "flood", "while :; do echo spam; done\n")

    async def scenario() -> list[CheckResult]:
        return [await run([hang], 0.5), await run([killed]), await run([flood])]

    with asyncio.Runner(loop_factory=loop_factories()[loop]) as runner:
        hung, died, flooded = runner.run(scenario())
        assert runner.run(wait_gone(int(child.read_text())))
    assert hung.message == "plugin timed out after 0.5s (process group killed) with no output"
    assert died.message == "plugin killed by signal 9 (SIGKILL) with no output"
    assert flooded.message.startswith("plugin printed more than 65536 bytes")


# ---------------------------------------------- real Monitoring Plugins

PLUGIN_PACKAGE = "monitoring-plugins-basic"


@pytest.fixture
def plugins() -> None:
    need(
        os.access(os.path.join(DEFAULT_PLUGIN_DIR, "check_tcp"), os.X_OK),
        f"{PLUGIN_PACKAGE} is not installed (apt-get install {PLUGIN_PACKAGE})",
    )


@pytest.mark.usefixtures("plugins")
@pytest.mark.parametrize("code", [0, 1, 2, 3])
async def test_check_dummy(code: int) -> None:
    result = await run(["check_dummy", str(code), "hello world"])
    assert result.status is Status(code)
    assert result.message == f"{Status(code).name}: hello world"


@pytest.mark.usefixtures("plugins")
async def test_check_tcp_against_loopback_services() -> None:
    argv = ["check_tcp", "-H", "{address}", "-p", "{port}", "-e", "SSH-", "-t", "{timeout}"]
    async with tcp_server(banner(b"SSH-2.0-OpenSSH_9.6\r\n")) as port:
        ok = await run(argv, port=port)
    async with tcp_server(banner(b"220 smtp.example.test ESMTP\r\n")) as port:
        wrong = await run(argv, port=port)
    with refused_port() as port:
        refused = await run(argv, port=port)
    with blackhole_port() as port:
        hung = await run(["check_tcp", "-H", "{address}", "-p", "{port}", "-t", "30"], 1, port=port)
    assert ok.status is Status.OK, ok.message
    assert ok.message.startswith("TCP OK - ")
    (time_perf,) = ok.perfdata
    assert (time_perf.label, time_perf.uom, time_perf.min, time_perf.max) == ("time", "s", 0, 4)
    assert 0 <= time_perf.value < 1
    assert wrong.status is Status.WARNING
    assert "Unexpected response" in wrong.message
    assert refused.status is Status.CRITICAL
    assert "Connection refused" in refused.message
    assert hung.status is Status.UNKNOWN
    assert hung.message.startswith("plugin timed out after 1s (process group killed)")


@pytest.mark.usefixtures("plugins")
async def test_check_http_against_a_loopback_server() -> None:
    argv = ["check_http", "-I", "{address}", "-p", "{port}", "-u", "/health"]
    async with http_server(lambda _req: response(200, b"fine")) as srv:
        ok = await run(argv, port=srv.port)
    async with http_server(lambda _req: response(503, b"down")) as srv:
        down = await run(argv, port=srv.port)
    assert ok.status is Status.OK, ok.message
    assert ok.message.startswith("HTTP OK: HTTP/1.1 200")
    assert [(p.label, p.uom) for p in ok.perfdata] == [("time", "s"), ("size", "B")]
    assert down.status is Status.CRITICAL
    assert "503" in down.message


@pytest.mark.usefixtures("plugins")
async def test_check_ping_loopback() -> None:
    result = await run(
        ["check_ping", "-H", "{address}", "-w", "100,20%", "-c", "200,50%", "-p", "1"]
    )
    assert result.status is Status.OK, result.message
    rta, pl = result.perfdata
    assert (rta.label, rta.uom, rta.warn, rta.crit) == ("rta", "ms", "100.000000", "200.000000")
    assert (pl.label, pl.value, pl.uom, pl.warn, pl.crit) == ("pl", 0, "%", "20", "50")


@pytest.mark.usefixtures("plugins")
async def test_check_disk_root() -> None:
    result = await run(["check_disk", "-w", "0%", "-c", "0%", "-p", "/"])
    assert result.status is Status.OK, result.message
    (root,) = result.perfdata
    assert (root.label, root.uom, root.min) == ("/", "B", 0)
    assert root.max is not None and 0 < root.value <= root.max
    missing = await run(["check_disk", "-w", "10%", "-c", "5%", "-p", "/no/such/mount"])
    assert missing.status is Status.CRITICAL


@pytest.mark.usefixtures("plugins")
async def test_check_procs_finds_a_process() -> None:
    # check_procs skips its own parent (here: this test process), so it looks
    # for a child of ours with an argument nothing else on the machine has.
    marker = f"monitord-procs-probe-{os.getpid()}-{time.monotonic_ns()}"
    probe = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)", marker
    )
    try:
        result = await run(["check_procs", "-c", "1:", "-a", marker])
    finally:
        probe.kill()
        await probe.wait()
    assert result.status is Status.OK, result.message
    (procs,) = result.perfdata
    assert procs.label == "procs" and procs.value == 1 and procs.crit == "1:"
    gone = await run(["check_procs", "-c", "1:", "-a", marker])
    assert gone.status is Status.CRITICAL


@pytest.mark.usefixtures("plugins")
async def test_check_load_perfdata() -> None:
    result = await run(["check_load", "-w", "1000,1000,1000", "-c", "2000,2000,2000"])
    assert result.status is Status.OK
    assert [p.label for p in result.perfdata] == ["load1", "load5", "load15"]
    assert all(p.warn == "1000.000" and p.min == 0 for p in result.perfdata)
