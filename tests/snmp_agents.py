"""Real SNMP agents on 127.0.0.0/8 for tests and benchmarks.

- `snmpd`: Debian's net-snmp agent (`apt-get install snmpd`), in the
  foreground with only our config (`-C -c`), a v2c community and v3 users.
- `snmpsim`: snmpsim 1.2.2 (`pip install snmpsim==1.2.2 pysmi`) serving the
  recordings in tests/snmp_data (copied from shared/fixtures/snmp/data: ups,
  printer, switch24, linux-server; the v2c community or the v3 context is
  the file name) on any number of loopback addresses.
- `fleet_args`: many devices for one snmpsim process, one engine per device
  kind (the layout of shared/fixtures/snmp/make_fleet.py).

Each agent is a child process started here and stopped by its PID; each is
ready when it answers an SNMP GET, not after a sleep.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).resolve().parent / "snmp_data"
KINDS = ("ups", "printer", "switch24", "linux-server")
V3_USER, V3_AUTH, V3_PRIV = "monuser", "authpass123", "privpass123"
SNMPD = shutil.which("snmpd") or next(
    (p for p in ("/usr/sbin/snmpd", "/usr/local/sbin/snmpd") if os.access(p, os.X_OK)), None
)
SNMPSIM = shutil.which(
    "snmpsim-command-responder", path=str(Path(sys.executable).parent)
) or shutil.which("snmpsim-command-responder")


def snmpsim_available() -> bool:
    """snmpsim's script is installed and its undeclared dependency pysmi imports."""
    if SNMPSIM is None:
        return False
    try:
        import pysmi  # noqa: F401
    except ImportError:
        return False
    return True


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def probe_packet(community: str) -> bytes:
    """A v2c GET of sysUpTime.0, BER-encoded by hand (no pysnmp needed)."""
    oid = bytes([0x06, 0x08, 0x2B, 6, 1, 2, 1, 1, 3, 0])
    varbind = b"\x30" + bytes([len(oid) + 2]) + oid + b"\x05\x00"
    varbinds = b"\x30" + bytes([len(varbind)]) + varbind
    pdu_body = b"\x02\x01\x01" + b"\x02\x01\x00" + b"\x02\x01\x00" + varbinds
    pdu = b"\xa0" + bytes([len(pdu_body)]) + pdu_body
    comm = community.encode()
    body = b"\x02\x01\x01" + b"\x04" + bytes([len(comm)]) + comm + pdu
    return b"\x30" + bytes([len(body)]) + body


def wait_answering(
    host: str, port: int, community: str, proc: subprocess.Popen[bytes], deadline: float
) -> None:
    """Return once the agent answers a GET; raise if it died or `deadline` passed."""
    packet = probe_packet(community)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.1)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"agent exited with {proc.returncode} before answering")
            s.sendto(packet, (host, port))
            with contextlib.suppress(TimeoutError, ConnectionRefusedError):
                s.recvfrom(65535)
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"agent on {host}:{port} did not answer in time")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate one child by PID and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Agent:
    """A running agent: where it listens and how to start it again."""

    host: str
    port: int
    cmd: list[str]
    env: dict[str, str]
    log: Path
    probe_host: str
    probe_community: str
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 15.0) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=self.log.parent
            )
        try:
            wait_answering(
                self.probe_host,
                self.port,
                self.probe_community,
                self.proc,
                time.monotonic() + timeout,
            )
        except RuntimeError as exc:
            self.stop()
            tail = self.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; log:\n{tail}") from None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port: sysUpTime starts from zero."""
        self.stop()
        self.start()


SNMPD_CONF = """\
agentAddress udp:{host}:{port}
rocommunity {community} 127.0.0.1
createUser {user} SHA "{auth}" AES "{priv}"
createUser md5user MD5 "{auth}" DES "{priv}"
createUser authuser SHA "{auth}"
rouser {user} priv
rouser md5user priv
rouser authuser auth
sysLocation Loopback lab
sysContact test@example.invalid
"""


@contextlib.contextmanager
def snmpd(workdir: Path, *, community: str = "public", host: str = "127.0.0.1") -> Iterator[Agent]:
    """net-snmp snmpd on a free UDP port of `host`, v2c `community` and v3 users:
    monuser (SHA/AES, authPriv), md5user (MD5/DES, authPriv), authuser (SHA, authNoPriv)."""
    assert SNMPD is not None, "snmpd is not installed"
    port = free_udp_port(host)
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "snmpd.conf"
    conf.write_text(
        SNMPD_CONF.format(
            host=host, port=port, community=community, user=V3_USER, auth=V3_AUTH, priv=V3_PRIV
        )
    )
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir / "persist"), "MIBS": ""}
    # -C -c: only this config; -f -Lo: foreground, log to stdout; -m '': no MIB files.
    cmd = [SNMPD, "-f", "-Lo", "-C", "-c", str(conf), "-m", "", "-p", str(workdir / "pid")]
    agent = Agent(host, port, cmd, env, workdir / "snmpd.log", host, community)
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def snmpsim_cmd(
    data_dir: Path, cache: Path, endpoints: Sequence[str], *, quiet: bool = False
) -> list[str]:
    """Command line for one engine serving every file of `data_dir` on `endpoints`."""
    assert SNMPSIM is not None, "snmpsim is not installed"
    cmd = [SNMPSIM, *_engine_args(data_dir), f"--cache-dir={cache}"]
    cmd += [f"--agent-udpv4-endpoint={e}" for e in endpoints]
    if quiet:
        cmd += ["--log-level=error"]
    return cmd


def _engine_args(data_dir: Path) -> list[str]:
    # --v3-engine-id must come first: it opens the engine section.
    return [
        "--v3-engine-id=auto",
        f"--v3-user={V3_USER}",
        f"--v3-auth-key={V3_AUTH}",
        "--v3-auth-proto=SHA",
        f"--v3-priv-key={V3_PRIV}",
        "--v3-priv-proto=AES",
        f"--data-dir={data_dir}",
    ]


def snmpsim_env() -> dict[str, str]:
    # As root snmpsim refuses to run unless allowed (dropping to nobody breaks
    # when the interpreter lives under /root).
    return {**os.environ, "SNMPSIM_ALLOW_ROOT": "true"}


@contextlib.contextmanager
def snmpsim(
    workdir: Path,
    hosts: Sequence[str] = ("127.0.0.1",),
    *,
    data_dir: Path = DATA,
    probe_community: str = "ups",
) -> Iterator[Agent]:
    """snmpsim serving every recording of `data_dir` on the same free port of each host."""
    port = free_udp_port(hosts[0])
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = snmpsim_cmd(data_dir, workdir / "cache", [f"{h}:{port}" for h in hosts])
    agent = Agent(
        hosts[0], port, cmd, snmpsim_env(), workdir / "snmpsim.log", hosts[-1], probe_community
    )
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


def fleet_address(i: int, net: str = "127.1") -> str:
    """Device i of a fleet: NET.(i // 250).(i % 250 + 1)."""
    return f"{net}.{i // 250}.{i % 250 + 1}"


def fleet_args(workdir: Path, count: int, port: int, net: str = "127.1") -> Path:
    """Lay out `count` devices for one snmpsim process; return its --args-from-file.

    Device i is kind KINDS[i % 4] at `fleet_address(i)`, community (and v3
    context) `public`. One engine per kind serves all devices of that kind
    (data dir with a hard link or copy of the recording as public.snmprec;
    not a symlink: snmpsim would take the community from the target's name).
    """
    args: list[str] = []
    for k, kind in enumerate(KINDS):
        ddir = workdir / "data" / kind
        ddir.mkdir(parents=True, exist_ok=True)
        dst = ddir / "public.snmprec"
        if not dst.exists():
            try:
                os.link(DATA / f"{kind}.snmprec", dst)
            except OSError:
                shutil.copyfile(DATA / f"{kind}.snmprec", dst)
        args += _engine_args(ddir)
        args += [
            f"--agent-udpv4-endpoint={fleet_address(i, net)}:{port}"
            for i in range(k, count, len(KINDS))
        ]
    path = workdir / "snmpsim.args"
    path.write_text("\n".join(args) + "\n")
    return path


@contextlib.contextmanager
def snmpsim_fleet(workdir: Path, count: int, net: str = "127.1") -> Iterator[Agent]:
    """`count` simulated devices in one quiet snmpsim process (see `fleet_args`)."""
    assert SNMPSIM is not None, "snmpsim is not installed"
    port = free_udp_port()
    args = fleet_args(workdir, count, port, net)
    cmd = [
        SNMPSIM,
        f"--cache-dir={workdir / 'cache'}",
        "--log-level=error",
        f"--args-from-file={args}",
    ]
    last = fleet_address(count - 1, net)
    agent = Agent(last, port, cmd, snmpsim_env(), workdir / "snmpsim.log", last, "public")
    agent.start(timeout=60.0)
    try:
        yield agent
    finally:
        agent.stop()


# ------------------------------------------------------------ contract suite


@contextlib.asynccontextmanager
async def snmpd_port(community: str) -> AsyncIterator[int]:
    """snmpd answering v2c `community` (skips, or fails under CI, without snmpd)."""
    from tests.conftest import need

    need(SNMPD is not None, "snmpd is not installed (apt-get install snmpd)")
    with (
        tempfile.TemporaryDirectory(prefix="snmpd-") as tmp,
        snmpd(Path(tmp), community=community) as agent,
    ):
        yield agent.port


@contextlib.contextmanager
def silent_udp_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A bound UDP port that receives requests and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        yield int(s.getsockname()[1])


def snmp_set_int(
    host: str, port: int, community: str, oid: str, value: int, syntax: str = "Integer32"
) -> None:
    """SET one integer (`syntax`: Integer32 or Gauge32) with v2c; fail unless it took.

    For snmpsim's writecache OIDs; the syntax must match the recording's tag,
    else snmpsim answers noSuchInstance (with error-status 0).
    """
    from pyasn1.codec.ber import decoder
    from pysnmp.proto import api, rfc1902

    from checks.snmp.community import encode

    proto = api.PROTOCOL_MODULES[1]
    pdu = proto.SetRequestPDU()
    proto.apiPDU.set_defaults(pdu)
    typed = getattr(rfc1902, syntax)(value)
    proto.apiPDU.set_varbinds(pdu, [(rfc1902.ObjectName(oid), typed)])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3.0)
        s.sendto(encode(1, community.encode(), pdu), (host, port))
        data, _ = s.recvfrom(65535)
    answer, _ = decoder.decode(data, asn1Spec=proto.Message())
    rsp = proto.apiMessage.get_pdu(answer)
    status = int(proto.apiPDU.get_error_status(rsp))
    ((_, got),) = proto.apiPDU.get_varbinds(rsp)
    assert status == 0 and int(got) == value, f"SET {oid} = {value} did not take: {got!r}"
