"""`python -m monitord.lab` in the foreground: starts, serves, stops on a signal."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from monitord.lab import Fleet
from monitord.lab.main import main
from tests.lab.probes import Ports

ROOT = Path(__file__).resolve().parents[2]


def http_get_sync(address: str, port: int, path: str = "/") -> bytes:
    with socket.create_connection((address, port), timeout=5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_runs_until_signal(tmp_path: Path, ports: Ports, sig: signal.Signals) -> None:
    out = tmp_path / "fleet.json"
    cmd = [sys.executable, "-m", "monitord.lab", "--devices", "30", "--customers", "3"]
    cmd += ["--control", "127.0.0.1:0", "--tcp-port", str(ports.tcp)]
    cmd += ["--http-port", str(ports.http), "--fleet-json-out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT) as proc:
        try:
            assert proc.stdout is not None
            banner = proc.stdout.readline()
            assert "30 devices" in banner and "started in" in banner, banner
            control = banner.rsplit("control ", 1)[1].strip()
            fleet = Fleet.from_json(out.read_text())
            device = fleet.devices[0]
            assert http_get_sync(device.address, ports.http).endswith(f"ok {device.name}".encode())
            host, port = control.removeprefix("http://").split(":")
            reply = http_get_sync(host, int(port), "/api/faults")
            assert json.loads(reply.split(b"\r\n\r\n", 1)[1]) == {"faults": []}
            proc.send_signal(sig)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_bad_control_address_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--control", "9788"])
    assert info.value.code == 2
    assert "expected host:port, got '9788'" in capsys.readouterr().err


def test_impossible_fleet_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--devices", "5", "--customers", "10"]) == 1
    assert "devices must be between 10" in capsys.readouterr().err
