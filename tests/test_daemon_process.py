"""A real daemon process: sd_notify readiness, SIGHUP reloads (bad config rejected,
good config applied), SIGTERM shuts down cleanly with state written."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, func, select

from monitord.storage.schema import check_state
from tests.conftest import free_port

CONFIG = """\
daemon:
  listen: 127.0.0.1:{api}
  state_dir: {state}
  initial_spread: 0.2s
  write_interval: 0.2s
defaults: {{interval: 1s, retry_interval: 0.5s, max_attempts: 2, timeout: 1s}}
customers:
  - name: acme
devices:
  - {{name: "srv-{{n}}", count: {count}, customer: acme, address: 127.42.0.1, role: server,
     checks: [{{type: tcp, port: {port}}}]}}
"""


def get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def wait(pred: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            if pred():  # type: ignore[operator]
                return
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"condition not met in time (last error: {last})")


def metric(api: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{api}/metrics", timeout=2) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def test_signals_reload_and_shutdown(tmp_path: Path) -> None:
    api, port = free_port(), free_port()
    listeners = [socket.create_server((f"127.42.0.{i}", port)) for i in (1, 2, 3)]
    cfg = tmp_path / "monitord.yaml"
    cfg.write_text(CONFIG.format(api=api, state=tmp_path / "state", count=2, port=port))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(15)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    log = (tmp_path / "stderr.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitord", "run", "--config", str(cfg)], env=env, stderr=log
    )
    try:
        assert b"READY=1" in notify.recv(4096)
        wait(lambda: get(f"http://127.0.0.1:{api}/api/v1/status")["by_status"]["ok"] == 2)

        # A bad config is rejected; the daemon keeps running the old one.
        cfg.write_text(
            CONFIG.format(api=api, state=tmp_path / "state", count=2, port=port) + "bogus: 1\n"
        )
        proc.send_signal(signal.SIGHUP)
        wait(lambda: metric(api, "monitord_config_last_reload_successful") == 0.0)
        assert proc.poll() is None
        assert get(f"http://127.0.0.1:{api}/api/v1/status")["devices"] == 2

        # A good config is applied.
        cfg.write_text(CONFIG.format(api=api, state=tmp_path / "state", count=3, port=port))
        proc.send_signal(signal.SIGHUP)
        wait(lambda: get(f"http://127.0.0.1:{api}/api/v1/status")["by_status"]["ok"] == 3)
        assert metric(api, "monitord_config_last_reload_successful") == 1.0
        messages = b""
        while b"READY=1" not in messages.split(b"RELOADING=1")[-1]:
            messages += notify.recv(4096) + b"\n"
        assert b"RELOADING=1" in messages

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for listener in listeners:
            listener.close()
        notify.close()
        log.close()
    stderr = (tmp_path / "stderr.log").read_text()
    assert "reload rejected, keeping the running config" in stderr
    assert "bogus: unknown key" in stderr
    assert "monitord stopped" in stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'state' / 'monitord.db'}")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(check_state)).scalar_one() == 3
    engine.dispose()


def test_invalid_config_exits_2_before_starting(tmp_path: Path) -> None:
    cfg = tmp_path / "monitord.yaml"
    cfg.write_text("customers:\n  - name: acme\n    sites:\n      - {name: hq, gateway: rtr-1}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "monitord", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "monitord.yaml:4: customers[0].sites[0].gateway: unknown device 'rtr-1'" in proc.stderr


def test_unreachable_database_exits_nonzero(tmp_path: Path) -> None:
    cfg = tmp_path / "monitord.yaml"
    cfg.write_text("daemon:\n  database: postgresql+psycopg://x:secretpw@127.0.0.1:1/db\n")
    proc = subprocess.run(
        [sys.executable, "-m", "monitord", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert (
        "cannot start: database 'postgresql+psycopg://x:***@127.0.0.1:1/db' unreachable"
        in proc.stderr
    )
    assert "secretpw" not in proc.stderr
