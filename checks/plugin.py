"""Monitoring Plugins check: run any Nagios/Monitoring Plugins–compatible executable.

The command is an argv list, never a shell line: `{address}`, `{device}`,
`{port}` and `{timeout}` are substituted inside items, and the first item is
an absolute path or a name looked up in the plugin directory (default
/usr/lib/nagios/plugins). The exit code is the status (0/1/2/3 → OK, WARNING,
CRITICAL, UNKNOWN; anything else, or death by a signal, is UNKNOWN saying
which), and the output is parsed as the Monitoring Plugins development
guidelines define it (see `parse_output` and `parse_perfdata`).

Each execution runs in its own session, so its process group can be killed as
a whole: at the deadline (SIGTERM, then SIGKILL after a short grace), when it
prints more than `max_output` bytes, when the check is cancelled, and when
children still hold its output open after it exited. At most `max_parallel`
(default 32) plugins run at once per daemon: the semaphore `PluginCheck._slots`,
which a check waits on within its own timeout.

What limits plugin checks is CPU for process creation: exec, dynamic loading
and the plugin's own start-up, 1.4-2.8 CPU-ms per execution (check_dummy,
check_tcp), more than ten times a native `tcp` check, so the native kinds stay
the right choice where they suffice (bench/results/plugins.json). Plugins are
spawned with vfork (subprocess.Popen) and watched with a pidfd, not with the
event loop's subprocess_exec: on uvloop that forks, copying the daemon's page
tables for every plugin, which costs several times more and grows with RSS.

Plugins get a minimal environment (PATH, LC_ALL=C so decimals use a dot),
not the daemon's, which may carry a database URL with a password; `env`
adds plain variables and `secret_env` variables whose values are masked in
the params' repr and redacted from everything the plugin prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from checks.base import BaseCheck, CheckContext, CheckParams
from monitord.model import CheckResult, Perf, Status, Target

DEFAULT_PLUGIN_DIR = "/usr/lib/nagios/plugins"
DEFAULT_MAX_PARALLEL = 32
DEFAULT_MAX_OUTPUT = 64 * 1024
# The name under which the daemon may lend a `PluginSettings` via CheckContext.services.
SETTINGS_SERVICE = "plugin_settings"
MAX_MESSAGE = 500  # characters of the first line kept as the message
KILL_GRACE = 0.5  # most seconds between SIGTERM and SIGKILL of a timed-out group
LINGER_GRACE = 0.2  # how long children may hold the output open after the plugin exited
# How long a cancelled check blocks the loop to reap the leader it just SIGKILLed: the
# loop (and its pidfd watcher) may be closing, and an unreaped leader stays a zombie.
REAP_ON_CANCEL = 0.05
BASE_ENV: Mapping[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C",
    "LC_ALL": "C",
}
PLACEHOLDERS = frozenset({"address", "device", "port", "timeout"})
# `{name}` is a placeholder, `{{` and `}}` literal braces; other braces pass as they are.
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# --------------------------------------------------------------------- parsing

# Numbers are the guidelines' class [-0-9.]; an exponent is also accepted,
# as Icinga 2 does, because some plugins print tiny values as 1e-05.
_NUM = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_VALUE = re.compile(rf"({_NUM}|U)([A-Za-z%]*)")
_NUMBER = re.compile(_NUM)
# [@]start:end, where start may be ~ (negative infinity) and both are optional.
_RANGE = re.compile(rf"@?(?:(?:~|{_NUM})?:(?:{_NUM})?|{_NUM})")
_SPACE = " \t\n\r\v\f"
MAX_NOTES = 10


@dataclass(frozen=True, slots=True)
class PluginOutput:
    """What a plugin printed, split as the guidelines define.

    `text` is the first line before `|`; `long_text` the following lines up
    to the `|` that starts the long perfdata section; `perfdata` both
    perfdata parts in order; `notes` what was skipped and why.
    """

    text: str
    long_text: str
    perfdata: tuple[Perf, ...]
    notes: tuple[str, ...]


def parse_output(output: str) -> PluginOutput:
    """Split plugin output into text, long text and parsed perfdata. Never raises.

    Line one is `TEXT | PERFDATA`. Further lines are long text until one holds
    a `|`: what follows it, and every later line, is more perfdata (Nagios 3
    semantics). Each perfdata part is parsed separately, so the two never run
    together.
    """
    lines = [line.rstrip("\r") for line in output.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return PluginOutput("", "", (), ())
    text, _, perf_parts = lines[0].partition("|")
    parts = [perf_parts]
    long_lines: list[str] = []
    for i, line in enumerate(lines[1:], start=1):
        before, bar, after = line.partition("|")
        if bar:
            if before.strip():
                long_lines.append(before)
            parts.append(after)
            parts.extend(lines[i + 1 :])
            break
        long_lines.append(line)
    perf: list[Perf] = []
    notes: list[str] = []
    for part in parts:
        perf.extend(parse_perfdata(part, notes))
    return PluginOutput(text.strip(), "\n".join(long_lines), tuple(perf), _capped(notes))


def parse_perfdata(text: str, notes: list[str] | None = None) -> list[Perf]:
    """Parse `'label'=value[UOM];[warn];[crit];[min];[max]` items separated by spaces.

    Quoted labels may hold spaces and `''` for a quote; trailing empty fields
    may be dropped; value `U` (unknown) becomes NaN; warn and crit must be
    ranges (`10`, `10:`, `~:10`, `10:20`, `@10:20`) and are kept verbatim;
    min and max are numbers. An item that breaks these rules is skipped and,
    when `notes` is given, a line saying why is appended to it. Never raises.
    """
    out: list[Perf] = []
    for label, spec, raw in _items(text, notes):
        problem = _perf(label, spec, out)
        if problem and notes is not None:
            notes.append(f"skipped perfdata {_excerpt(raw, 60)}: {problem}")
    return out


def _items(text: str, notes: list[str] | None) -> Iterator[tuple[str, str, str]]:
    """(label, `value;warn;…`, raw item) for each `label=…` item; notes the rest."""
    i, n = 0, len(text)
    while i < n:
        if text[i] in _SPACE:
            i += 1
            continue
        start = i
        label, i = _quoted_label(text, i) if text[i] == "'" else _bare_label(text, i)
        end = _token_end(text, i)
        if label is None or i >= n or text[i] != "=":
            if notes is not None:
                why = "unterminated quote" if label is None else "no label=value"
                notes.append(f"skipped perfdata {_excerpt(text[start:end], 60)}: {why}")
            i = n if label is None else end
            continue
        yield label, text[i + 1 : end], text[start:end]
        i = end


def _quoted_label(text: str, i: int) -> tuple[str | None, int]:
    """Read `'…'` starting at the quote at `i`, with `''` for a quote."""
    parts: list[str] = []
    j = i + 1
    while True:
        k = text.find("'", j)
        if k < 0:
            return None, len(text)
        parts.append(text[j:k])
        if text.startswith("''", k):
            parts.append("'")
            j = k + 2
            continue
        return "".join(parts), k + 1


def _bare_label(text: str, i: int) -> tuple[str, int]:
    """Read an unquoted label: up to `=`, whitespace, a quote (not allowed) or the end."""
    j = i
    while j < len(text) and text[j] not in "='" and text[j] not in _SPACE:
        j += 1
    return text[i:j], j


def _token_end(text: str, i: int) -> int:
    while i < len(text) and text[i] not in _SPACE:
        i += 1
    return i


def _perf(label: str, spec: str, out: list[Perf]) -> str:
    """Append the Perf for one item to `out`; return why not, or ''."""
    if not label:
        return "empty label"
    fields = spec.split(";")
    while len(fields) > 1 and not fields[-1]:
        fields.pop()
    if len(fields) > 5:
        return "more than value;warn;crit;min;max"
    fields += [""] * (5 - len(fields))
    value = _VALUE.fullmatch(fields[0])
    if value is None:
        return f"value {fields[0]!r} is not a number with a unit"
    for name, field in (("warn", fields[1]), ("crit", fields[2])):
        if field and not _RANGE.fullmatch(field):
            return f"{name} {field!r} is not a range"
    for name, field in (("min", fields[3]), ("max", fields[4])):
        if field and not _NUMBER.fullmatch(field):
            return f"{name} {field!r} is not a number"
    number = float("nan") if value[1] == "U" else float(value[1])
    out.append(
        Perf(
            label,
            number,
            value[2],
            fields[1] or None,
            fields[2] or None,
            float(fields[3]) if fields[3] else None,
            float(fields[4]) if fields[4] else None,
        )
    )
    return ""


def _capped(notes: list[str]) -> tuple[str, ...]:
    if len(notes) <= MAX_NOTES:
        return tuple(notes)
    return (*notes[:MAX_NOTES], f"… and {len(notes) - MAX_NOTES} more")


def _excerpt(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters, quoted, safe on one line."""
    short = _CONTROL.sub("\ufffd", text[:limit])
    return repr(short) + ("…" if len(text) > limit else "")


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` with control characters replaced, cut to `limit` characters."""
    clean = _CONTROL.sub(lambda m: " " if m[0] == "\t" else "\ufffd", text[:limit])
    return clean + ("…" if len(text) > limit else "")


# --------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How one execution ended and what it printed (each stream capped).

    `returncode` is negative for death by a signal and None when the
    process could not even be reaped after SIGKILL (uninterruptible sleep).
    """

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    overflowed: bool = False
    lingered: bool = False


class _Execution:
    """One running plugin: its pipes and its exit, watched by the event loop.

    Output is read with `loop.add_reader` on the raw pipes, up to `limit`
    bytes per stream (the rest is read and dropped, and `overflowed` set);
    the exit is seen through a pidfd (Linux 5.3+) or else a thread in waitpid.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, proc: subprocess.Popen[bytes], limit: int
    ) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        self.loop = loop
        self.proc = proc
        self.limit = limit
        self.overflowed = False
        self.returncode: int | None = None
        self.stop: asyncio.Future[None] = loop.create_future()  # exited or overflowed
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()  # both pipes at EOF
        self.out = bytearray()
        self.err = bytearray()
        self._open = {proc.stdout.fileno(): self.out, proc.stderr.fileno(): self.err}
        for fd in self._open:
            os.set_blocking(fd, False)
            loop.add_reader(fd, self._read, fd)
        try:
            self._pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):  # not Linux 5.3+, or out of descriptors
            self._pidfd = -1
            threading.Thread(target=self._wait_thread, daemon=True).start()
        else:
            loop.add_reader(self._pidfd, self._reap)

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.loop.remove_reader(fd)
            del self._open[fd]
            if not self._open:
                _resolve(self.drained)
            return
        buf = self._open[fd]
        room = self.limit - len(buf)
        if len(data) > room:
            self.overflowed = True
            _resolve(self.stop)
        buf += data[: max(room, 0)]

    def _reap(self) -> None:
        try:
            pid, status = os.waitpid(self.proc.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else; the status is lost
            pid, status = self.proc.pid, 255 << 8
        if pid:
            self._exited(status)

    def _wait_thread(self) -> None:
        _, status = os.waitpid(self.proc.pid, 0)
        # Reaped: say so to Popen now, in case the loop never runs `_exited`.
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
            self.loop.call_soon_threadsafe(self._exited, status)

    def _exited(self, status: int) -> None:
        if self._pidfd >= 0:
            self.loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1
        self.returncode = self.proc.returncode = os.waitstatus_to_exitcode(status)
        _resolve(self.exited)
        _resolve(self.stop)

    def reap_now(self, within: float) -> None:
        """Reap the (killed) leader synchronously, polling for up to `within` seconds.

        Past that it stays watched by the loop, which reaps it if it keeps running.
        Without a pidfd the waiting thread reaps it, loop or not.
        """
        end = time.monotonic() + within
        while self._pidfd >= 0 and not self.exited.done():
            self._reap()
            if self.exited.done() or time.monotonic() >= end:
                return
            time.sleep(0.001)

    def close(self) -> None:
        """Stop reading; an unreaped child stays watched until it is reaped."""
        for fd in self._open:
            self.loop.remove_reader(fd)
        self._open.clear()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _wait(fut: asyncio.Future[None], timeout: float) -> bool:
    """Wait up to `timeout` seconds for `fut` without cancelling it; True if done."""
    if not fut.done() and timeout > 0:
        await asyncio.wait((fut,), timeout=timeout)
    return fut.done()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # Gone already, or a member changed its credentials (setuid): nothing we can do.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def spawn(argv: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session with piped output. Raises OSError if it cannot.

    subprocess.Popen, not the event loop's subprocess_exec: Popen spawns with
    vfork, whose cost does not grow with the daemon's memory, while uvloop
    (libuv) forks, copying the page tables of the whole daemon for every
    plugin (see bench/results/plugins.json). It takes well under a
    millisecond, so it runs on the loop like asyncio's own subprocess code.
    """
    return subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
    )


async def run_process(
    argv: Sequence[str], env: Mapping[str, str], timeout: float, max_output: int
) -> ProcessOutcome:
    """Run `argv` in a new session and return how it ended, within about `timeout`.

    At `timeout` minus a grace the whole process group gets SIGTERM and, once
    the leader is gone or the grace is over, SIGKILL; output past
    `max_output` bytes (per stream) is discarded and the group killed the
    same way. Raises OSError only when the program cannot be started.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    grace = min(KILL_GRACE, timeout / 5)
    run = _Execution(loop, spawn(argv, env), max_output)
    pgid = run.proc.pid
    timed_out = lingered = False
    try:
        timed_out = not await _wait(run.stop, deadline - grace - loop.time())
        if timed_out or run.overflowed:
            _signal_group(pgid, signal.SIGTERM)
            await _wait(run.exited, grace)
            _signal_group(pgid, signal.SIGKILL)
            await _wait(run.exited, 0.1)
        elif not await _wait(run.drained, max(min(LINGER_GRACE, deadline - loop.time()), 0.02)):
            # The plugin exited but children it left still hold its output.
            lingered = True
            _signal_group(pgid, signal.SIGKILL)
        await _wait(run.drained, 0.1)
    finally:
        if not run.exited.done():  # cancelled: take the whole group down with us
            _signal_group(pgid, signal.SIGKILL)
            run.reap_now(REAP_ON_CANCEL)
        run.close()
    return ProcessOutcome(
        run.returncode,
        bytes(run.out),
        bytes(run.err),
        timed_out,
        run.overflowed and not timed_out,
        lingered,
    )


# ----------------------------------------------------------------------- check


@dataclass(frozen=True, slots=True)
class PluginResult(CheckResult):
    """A CheckResult that also keeps the plugin's long text and our notes.

    The message stays one line (the first line of output); `long_output` holds
    the following lines and `notes` what the daemon adds (skipped perfdata,
    stderr, killed leftovers). Both are dropped by stages that know only
    CheckResult.
    """

    long_output: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PluginSettings:
    """Daemon-wide settings of the plugin kind (one instance per daemon)."""

    plugin_dir: str = DEFAULT_PLUGIN_DIR
    max_parallel: int = DEFAULT_MAX_PARALLEL
    max_output: int = DEFAULT_MAX_OUTPUT


class PluginParams(CheckParams):
    """Parameters of a `plugin` check.

    `command` is the argv: the first item an absolute path or a plain name in
    the plugin directory; placeholders `{address}`, `{device}` (the device
    id), `{port}` (the `port` param) and `{timeout}` (whole seconds, one less
    than the check's timeout so the plugin can time out by itself first) are
    substituted in every item, `{{` and `}}` stand for literal braces, and an
    unknown `{name}` is an error (a typo would otherwise reach the plugin). A
    string command is rejected: no shell is used.
    """

    command: tuple[str, ...] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    secret_env: dict[str, SecretStr] = Field(default_factory=dict)
    port: int | None = Field(default=None, ge=1, le=65535)

    @field_validator("command", mode="before")
    @classmethod
    def _argv_not_shell(cls, v: Any) -> Any:
        if isinstance(v, str):
            raise ValueError(
                f"command must be a list of arguments, not a string (no shell is used): {v!r}"
            )
        return v

    @field_validator("command")
    @classmethod
    def _command_ok(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        program = v[0]
        if (
            not program
            or program in (".", "..")
            or ("/" in program and not program.startswith("/"))
        ):
            raise ValueError(
                f"command[0] must be an absolute path or a plugin name, got {program!r}"
            )
        for item in v:
            if "\x00" in item:
                raise ValueError(f"command item {item!r} contains a NUL character")
            unknown = set(_PLACEHOLDER.findall(item)) - PLACEHOLDERS - {""}
            if unknown:
                raise ValueError(
                    f"unknown placeholder {{{sorted(unknown)[0]}}} in {item!r} "
                    f"(known: {', '.join(sorted(PLACEHOLDERS))}; "
                    "write {{ and }} for literal braces)"
                )
        return v

    @field_validator("env", "secret_env")
    @classmethod
    def _env_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name, value in v.items():
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
            text = value.get_secret_value() if isinstance(value, SecretStr) else value
            if "\x00" in text:
                raise ValueError(f"the value of {name!r} contains a NUL character")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        both = self.env.keys() & self.secret_env.keys()
        if both:
            raise ValueError(f"{sorted(both)[0]!r} is in both env and secret_env")
        uses_port = any("port" in _PLACEHOLDER.findall(item) for item in self.command)
        if uses_port != (self.port is not None):
            raise ValueError("port and a {port} placeholder in command go together")
        return self

    def default_name(self, kind: str) -> str:
        name = f"{kind}:{os.path.basename(self.command[0])}"
        return name if self.port is None else f"{name}:{self.port}"

    def argv(self, target: Target, timeout: float, plugin_dir: str) -> list[str]:
        """The command with placeholders filled in and the program resolved."""
        values = {
            "address": target.address,
            "device": target.device_id,
            "port": str(self.port),
            "timeout": str(max(1, int(timeout) - 1)),
        }
        values.update({"{{": "{", "}}": "}"})
        argv = [_PLACEHOLDER.sub(lambda m: values[m[1] or m[0]], item) for item in self.command]
        if not argv[0].startswith("/"):
            argv[0] = os.path.join(plugin_dir, argv[0])
        return argv

    def environment(self) -> dict[str, str]:
        return {
            **BASE_ENV,
            **self.env,
            **{k: v.get_secret_value() for k, v in self.secret_env.items()},
        }


class PluginCheck(BaseCheck):
    """Runs a Monitoring Plugins–compatible executable; see the module docstring.

    Never raises for plugin failures: not found, not executable, timed out,
    runaway output, killed by a signal and out-of-range exit codes are
    UNKNOWN results naming which.
    """

    kind: ClassVar[str] = "plugin"
    Params: ClassVar[type[CheckParams]] = PluginParams

    def __init__(self, settings: PluginSettings | None = None) -> None:
        self._configure(settings or PluginSettings())

    def _configure(self, settings: PluginSettings) -> None:
        self.settings = settings
        self._slots = asyncio.Semaphore(settings.max_parallel)
        self.running = 0  # plugins executing now, for a gauge

    async def start(self, context: CheckContext | None = None) -> None:
        lent = None if context is None else context.services.get(SETTINGS_SERVICE)
        if isinstance(lent, PluginSettings):
            self._configure(lent)

    async def run(self, target: Target, params: Any, timeout: float) -> CheckResult:
        p: PluginParams = params
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        argv = p.argv(target, timeout, self.settings.plugin_dir)
        try:
            async with asyncio.timeout(timeout):
                await self._slots.acquire()
        except TimeoutError:
            return PluginResult(
                Status.UNKNOWN,
                f"plugin not started: all {self.settings.max_parallel} plugin slots "
                f"stayed busy for {timeout:g}s",
            )
        self.running += 1
        try:
            outcome = await run_process(
                argv, p.environment(), deadline - loop.time(), self.settings.max_output
            )
        except OSError as exc:
            return PluginResult(Status.UNKNOWN, f"cannot execute {argv[0]!r}: {_os_reason(exc)}")
        finally:
            self.running -= 1
            self._slots.release()
        secrets = [v.get_secret_value() for v in p.secret_env.values()]
        return judge(outcome, timeout, self.settings.max_output, secrets)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    return (exc.strerror or str(exc)).lower()


def _redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<secret>")
    return text


def judge(
    outcome: ProcessOutcome, timeout: float, max_output: int, secrets: Sequence[str] = ()
) -> PluginResult:
    """The result for a finished execution: status from the exit code, text from stdout."""
    parsed = parse_output(_redact(outcome.stdout.decode("utf-8", "replace"), secrets))
    stderr = _redact(outcome.stderr.decode("utf-8", "replace"), secrets).strip()
    notes = list(parsed.notes)
    if stderr:
        notes.append(f"stderr: {stderr[:1024]}")
    if outcome.lingered:
        notes.append("children kept the output open after the plugin exited; group killed")
    status, message = _status(outcome, parsed, stderr, timeout, max_output)
    return PluginResult(status, message, parsed.perfdata, parsed.long_text, tuple(notes))


def _status(
    o: ProcessOutcome, parsed: PluginOutput, stderr: str, timeout: float, max_output: int
) -> tuple[Status, str]:
    text = parsed.text or (f"(no output; stderr: {stderr.splitlines()[0]})" if stderr else "")
    seen = f": {_excerpt(text, 100)}" if text else " with no output"
    if o.timed_out:
        return Status.UNKNOWN, f"plugin timed out after {timeout:g}s (process group killed){seen}"
    if o.overflowed:
        return Status.UNKNOWN, (
            f"plugin printed more than {max_output} bytes "
            f"(rest discarded, process group killed){seen}"
        )
    if o.returncode is None:
        return Status.UNKNOWN, f"plugin could not be reaped after SIGKILL{seen}"
    if o.returncode < 0:
        return Status.UNKNOWN, f"plugin killed by signal {_signal_name(-o.returncode)}{seen}"
    if o.returncode > 3:
        return Status.UNKNOWN, f"plugin exited with code {o.returncode} (not 0-3){seen}"
    return Status(o.returncode), one_line(text or "(no output returned from plugin)")


def _signal_name(number: int) -> str:
    try:
        return f"{number} ({signal.Signals(number).name})"
    except ValueError:
        return str(number)
