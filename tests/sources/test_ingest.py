"""HTTP event ingest through the real daemon: App + database + API server on loopback.

Every refusal is checked for its exact status and message, and that nothing
reached the database; accepted events are checked in the events and
incidents tables the correlator wrote.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client import generate_latest
from sqlalchemy import select

from correlator.events import Event, EventKind, fingerprint
from monitord.api.http import serve
from monitord.app import App
from monitord.clock import FakeClock
from monitord.config import ConfigErrors, LoadedConfig
from monitord.config.load import config_from_dict, load_config
from monitord.model import Status
from monitord.sources.ingest import claimed_device
from monitord.sources.ingest_auth import sign
from monitord.sources.ingest_schema import MAX_BATCH, SchemaError, validate
from monitord.storage.schema import events, incidents
from tests.conftest import free_port, need

NOW = 1_800_000_000  # the daemon's (fake) clock: 2027-01-15T08:00:00Z
TOKEN = "tok-NAS-0123456789abcdef"
SECRET = "hmac-VEEAM-fedcba9876543210"
OTHER_SECRET = "hmac-OTHER-0000000000000000"
JSON = {"Content-Type": "application/json"}
BEARER = {**JSON, "Authorization": f"Bearer {TOKEN}"}


def backup(**fields: Any) -> dict[str, Any]:
    event = {
        "customer": "acme",
        "device": "acme-nas1",
        "check": "nightly-backup",
        "category": "backup-failed",
        "status": "critical",
        "message": "3 of 12 VMs failed",
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def config(tmp_path: Path, db_url: str | None = None, **ingest: Any) -> LoadedConfig:
    return config_from_dict(
        {
            "daemon": {
                "state_dir": str(tmp_path),
                "listen": f"127.0.0.1:{free_port()}",
                "write_interval": "0.1s",
                **({"database": db_url} if db_url else {}),
            },
            "customers": [{"name": "acme"}, {"name": "beta"}],
            "devices": [
                {"name": "acme-nas1", "customer": "acme", "address": "10.0.0.5", "role": "server"},
                {"name": "acme-srv", "customer": "acme", "address": "10.0.0.6", "role": "server"},
                # the same private address at another customer
                {"name": "beta-nas1", "customer": "beta", "address": "10.0.0.5", "role": "server"},
            ],
            "ingest": {
                "enabled": True,
                "tokens": [{"name": "backup-nas", "token": "env:TEST_INGEST_TOKEN"}],
                "hmac": [{"name": "veeam", "secret": SECRET}],
                "max_body_bytes": 4096,
                **ingest,
            },
        }
    )


def signed(body: bytes, ts: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return {
        **JSON,
        "X-Monitord-Timestamp": str(ts),
        "X-Monitord-Signature": f"sha256={sign(secret, ts, body)}",
    }


@dataclass
class Daemon:
    app: App
    url: str
    http: aiohttp.ClientSession
    seen: list[str]  # every response body, to check for leaked secrets

    async def post(
        self, body: bytes | Any, headers: dict[str, str], **kw: Any
    ) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if isinstance(body, dict | list) else body
        async with self.http.post(
            self.url + "/api/v1/events", data=data, headers=headers, **kw
        ) as resp:
            text = await resp.text()
            self.seen.append(text + str(dict(resp.headers)))
            return resp.status, json.loads(text)

    async def stored(self) -> tuple[list[Any], list[Any]]:
        """Events and incidents in the database, after writing everything queued."""
        await self.app.flush()
        assert self.app.engine is not None
        with self.app.engine.connect() as conn:
            return (
                list(conn.execute(select(events).order_by(events.c.id))),
                list(conn.execute(select(incidents).order_by(incidents.c.id))),
            )

    def metric(self, result: str) -> float:
        text = generate_latest(self.app.registry).decode()
        line = f'monitord_ingest_requests_total{{result="{result}"}} '
        return float(next(x for x in text.splitlines() if x.startswith(line)).split()[-1])


async def start(loaded: LoadedConfig) -> tuple[App, Any]:
    app = App(loaded, clock=FakeClock(NOW))
    await app.start()
    return app, await serve(app, loaded.config.daemon.listen)


@pytest.fixture
async def daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Daemon]:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("TEST_INGEST_TOKEN", TOKEN)
    loaded = config(tmp_path)
    app, runner = await start(loaded)
    try:
        async with aiohttp.ClientSession() as http:
            d = Daemon(app, f"http://{loaded.config.daemon.listen}", http, [])
            yield d
    finally:
        await runner.cleanup()
        await app.stop()
    # No secret in any response, log line or metric, whatever the test did.
    leaked = "\n".join([*d.seen, caplog.text, generate_latest(app.registry).decode()])
    for secret in (TOKEN, SECRET, OTHER_SECRET):
        assert secret not in leaked


# --- refusals ---------------------------------------------------------------------------------

GOOD = json.dumps(backup()).encode()
BAD_STATUS = json.dumps([backup(), backup(), backup(), backup(status="down")]).encode()

REFUSALS: list[tuple[str, bytes, dict[str, str], int, str, str]] = [
    # (case, body, headers, status, metric result, exact message)
    (
        "no credentials",
        GOOD,
        JSON,
        401,
        "unauthorized",
        "authentication required: send 'Authorization: Bearer <token>' "
        "or sign the body (X-Monitord-Signature, X-Monitord-Timestamp)",
    ),
    (
        "token without the Bearer scheme",
        GOOD,
        {**JSON, "Authorization": TOKEN},
        401,
        "unauthorized",
        "unsupported authorization scheme: use 'Authorization: Bearer <token>'",
    ),
    (
        "basic auth",
        GOOD,
        {**JSON, "Authorization": "Basic YWRtaW46YWRtaW4="},
        401,
        "unauthorized",
        "unsupported authorization scheme: use 'Authorization: Bearer <token>'",
    ),
    (
        "empty bearer",
        GOOD,
        {**JSON, "Authorization": "Bearer "},
        401,
        "unauthorized",
        "empty bearer token",
    ),
    (
        "wrong token",
        GOOD,
        {**JSON, "Authorization": f"Bearer {TOKEN}x"},
        403,
        "forbidden",
        "invalid bearer token",
    ),
    (
        "signature without timestamp",
        GOOD,
        {**JSON, "X-Monitord-Signature": "sha256=" + "0" * 64},
        401,
        "unauthorized",
        "X-Monitord-Signature needs an X-Monitord-Timestamp header",
    ),
    (
        "malformed signature",
        GOOD,
        {**signed(GOOD), "X-Monitord-Signature": "md5=abc"},
        403,
        "forbidden",
        "X-Monitord-Signature must be 'sha256=' followed by 64 hex digits",
    ),
    (
        "malformed timestamp",
        GOOD,
        {**signed(GOOD), "X-Monitord-Timestamp": "yesterday"},
        403,
        "forbidden",
        "X-Monitord-Timestamp must be Unix time in whole seconds, got 'yesterday'",
    ),
    (
        "expired timestamp",
        GOOD,
        signed(GOOD, ts=NOW - 301),
        403,
        "forbidden",
        "X-Monitord-Timestamp is 301 s behind the server clock (at most 300 s allowed): "
        "sign with the current time",
    ),
    (
        "timestamp from the future",
        GOOD,
        signed(GOOD, ts=NOW + 400),
        403,
        "forbidden",
        "X-Monitord-Timestamp is 400 s ahead of the server clock (at most 300 s allowed): "
        "sign with the current time",
    ),
    (
        "signed with an unknown secret",
        GOOD,
        signed(GOOD, secret=OTHER_SECRET),
        403,
        "forbidden",
        "signature does not match the body: expected HMAC-SHA256 of "
        "timestamp + '.' + body under the source's secret",
    ),
    (
        "body changed after signing",
        GOOD.replace(b"critical", b"ok"),
        signed(GOOD),
        403,
        "forbidden",
        "signature does not match the body: expected HMAC-SHA256 of "
        "timestamp + '.' + body under the source's secret",
    ),
    (
        "text/plain",
        GOOD,
        {**BEARER, "Content-Type": "text/plain"},
        415,
        "unsupported",
        "content type must be application/json, got 'text/plain'",
    ),
    (
        "latin-1",
        GOOD,
        {**BEARER, "Content-Type": "application/json; charset=latin-1"},
        415,
        "unsupported",
        "charset must be utf-8, got 'latin-1'",
    ),
    (
        "declared too large",
        b"[" + b" " * 5000 + b"]",
        BEARER,
        413,
        "too_large",
        "body is 5002 bytes; the limit is 4096 (ingest.max_body_bytes)",
    ),
    (
        "empty body",
        b"",
        BEARER,
        400,
        "invalid",
        "empty body: expected a JSON event object or an array of them",
    ),
    (
        "malformed JSON",
        b'{"customer": "acme",\n "check" "x"}',
        BEARER,
        400,
        "invalid",
        "malformed JSON at line 2 column 10 (char 30): expecting ':' delimiter",
    ),
    ("not UTF-8", b'{"customer": "\xff"}', BEARER, 400, "invalid", "body is not UTF-8 (byte 14)"),
    (
        "nested too deeply",
        b"[" * 4000,
        BEARER,
        400,
        "invalid",
        "malformed JSON: nested too deeply",
    ),
    (
        "bad status in a batch",
        BAD_STATUS,
        BEARER,
        422,
        "invalid",
        "body[3].status: input should be 'ok', 'warning', 'critical' or 'unknown'",
    ),
    (
        "unknown and missing fields",
        json.dumps({**backup(customer=None), "severity": 5}).encode(),
        BEARER,
        422,
        "invalid",
        "body.customer: missing required field; body.severity: unknown field",
    ),
    (
        "device of another customer",
        json.dumps(backup(device="beta/beta-nas1")).encode(),
        BEARER,
        422,
        "invalid",
        "body.device: device 'beta/beta-nas1' is of customer 'beta', not 'acme'",
    ),
    (
        "no device and no address",
        json.dumps(backup(device=None)).encode(),
        BEARER,
        422,
        "invalid",
        "body: give the device, its address, or both",
    ),
    (
        "time without zone",
        json.dumps(backup(time="2027-01-15T07:00:00")).encode(),
        BEARER,
        422,
        "invalid",
        "body.time: input should have timezone info",
    ),
    (
        "time in the future",
        json.dumps(backup(time="2027-01-15T09:00:00Z")).encode(),
        BEARER,
        422,
        "invalid",
        "body.time: time is 3600 s in the future (is the sender's clock right?)",
    ),
    (
        "bad category and label",
        json.dumps(backup(category="Backup Failed", labels={"job name": "x"})).encode(),
        BEARER,
        422,
        "invalid",
        "body.category: category 'Backup Failed' must be lowercase letters, digits, '.', '_' "
        "or '-' (like 'backup-failed'); body.labels: label name 'job name' must match "
        "[A-Za-z_][A-Za-z0-9_]* (64 at most)",
    ),
    (
        "a bare string",
        b'"critical"',
        BEARER,
        422,
        "invalid",
        "body: expected an event object or an array of them, got a string",
    ),
    (
        "empty batch",
        b"[]",
        BEARER,
        422,
        "invalid",
        "body: the batch is empty; send 1 or more events",
    ),
]


async def test_every_refusal_is_precise_counted_and_stores_nothing(daemon: Daemon) -> None:
    counts: dict[str, int] = {}
    for case, body, headers, status, result, message in REFUSALS:
        got, answer = await daemon.post(body, headers)
        assert (got, answer["error"]) == (status, message), case
        counts[result] = counts.get(result, 0) + 1
    got, answer = await daemon.post(BAD_STATUS, BEARER)
    assert answer["errors"] == [
        "body[3].status: input should be 'ok', 'warning', 'critical' or 'unknown'"
    ]
    counts["invalid"] += 1

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(5):
            yield b" " * 1000

    got, answer = await daemon.post(chunked(), BEARER)
    assert (got, answer["error"]) == (
        413,
        "body exceeds the limit of 4096 bytes (ingest.max_body_bytes)",
    )
    got, answer = await daemon.post(GOOD, {}, skip_auto_headers=["Content-Type"])
    assert got == 401  # credentials are checked before anything else
    got, answer = await daemon.post(
        GOOD, {"Authorization": f"Bearer {TOKEN}"}, skip_auto_headers=["Content-Type"]
    )
    assert (got, answer["error"]) == (415, "content type must be application/json, got none")
    counts["too_large"] += 1
    counts["unauthorized"] += 1
    counts["unsupported"] += 1

    assert await daemon.stored() == ([], [])
    for result, n in counts.items():
        assert daemon.metric(result) == n, result
    assert daemon.metric("accepted") == 0


async def test_unauthenticated_answer_names_the_scheme(daemon: Daemon) -> None:
    async with daemon.http.post(daemon.url + "/api/v1/events", data=GOOD, headers=JSON) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="monitord"'


async def test_refusals_are_logged_once_per_change(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = {**JSON, "Authorization": "Bearer not-the-token-at-all"}
    for _ in range(5):
        assert (await daemon.post(GOOD, wrong))[0] == 403
    assert (await daemon.post(GOOD, JSON))[0] == 401
    assert (await daemon.post(GOOD, BEARER))[0] == 202
    lines = [r.getMessage() for r in caplog.records if r.name == "monitord.sources.ingest"]
    assert [m for m in lines if "refused" in m] == [
        "ingest request from 127.0.0.1 refused (403): invalid bearer token",
        "ingest request from 127.0.0.1 refused (401): authentication required: send "
        "'Authorization: Bearer <token>' or sign the body "
        "(X-Monitord-Signature, X-Monitord-Timestamp)",
    ]
    assert "ingest from 127.0.0.1 accepted again" in lines


# --- accepted ---------------------------------------------------------------------------------


async def test_token_event_opens_and_resolves_an_incident(daemon: Daemon) -> None:
    body = backup(time="2027-01-15T07:59:00+00:00", labels={"job": "vm-daily"}, source="veeam")
    status, answer = await daemon.post(body, BEARER)
    fp = fingerprint("acme", "acme/acme-nas1", "backup-failed")
    assert (status, answer) == (
        202,
        {
            "accepted": 1,
            "events": [{"fingerprint": fp, "kind": "problem", "device": "acme/acme-nas1"}],
        },
    )
    stored, opened = await daemon.stored()
    assert [
        (e.ts, e.source, e.kind, e.fingerprint, e.device_id, e.status, e.message) for e in stored
    ] == [
        (
            NOW - 60.0,
            "ingest:backup-nas",
            "problem",
            fp,
            "acme/acme-nas1",
            int(Status.CRITICAL),
            "nightly-backup: 3 of 12 VMs failed [source=veeam job=vm-daily]",
        )
    ]
    assert [(i.fingerprint, i.state, i.device_id) for i in opened] == [
        (fp, "open", "acme/acme-nas1")
    ]

    # the same check, now fine: a recovery for the same fingerprint
    status, answer = await daemon.post(backup(status="ok", message=""), BEARER)
    assert status == 202 and answer["events"][0]["kind"] == "recovery"
    stored, resolved = await daemon.stored()
    assert stored[-1].message == "nightly-backup: ok"
    assert [(i.fingerprint, i.state) for i in resolved] == [(fp, "resolved")]
    assert daemon.metric("accepted") == 2


async def test_signed_batch_is_accepted_once(daemon: Daemon) -> None:
    batch = [
        backup(device="acme/acme-srv", category=None, check="raid", status="warning"),
        backup(device=None, address="10.0.0.5"),  # acme's 10.0.0.5, not beta's
        backup(customer="beta", device=None, address="10.0.0.5"),
    ]
    body = json.dumps(batch).encode()
    status, answer = await daemon.post(body, signed(body))
    assert status == 202 and answer["accepted"] == 3
    assert [e["device"] for e in answer["events"]] == [
        "acme/acme-srv",
        "acme/acme-nas1",
        "beta/beta-nas1",
    ]
    # the category, or else the check, names the problem
    assert answer["events"][0]["fingerprint"] == fingerprint("acme", "acme/acme-srv", "raid")

    status, answer = await daemon.post(body, signed(body))  # replayed within the window
    assert (status, answer["error"]) == (
        403,
        "replayed request: this signature was already accepted; "
        "sign each request with a fresh timestamp",
    )
    clock = daemon.app.clock
    assert isinstance(clock, FakeClock)
    clock.advance(1)
    assert (await daemon.post(body, signed(body, ts=NOW + 1)))[0] == 202  # freshly signed

    stored, _ = await daemon.stored()
    assert len(stored) == 6 and {e.source for e in stored} == {"ingest:veeam"}
    assert daemon.metric("forbidden") == 1


async def test_unknown_device_is_kept_as_an_unknown_device_incident(daemon: Daemon) -> None:
    body = [
        backup(device="acme-nas9", address="10.0.0.9"),
        backup(customer="gamma", device="gamma-fs", check="disk", category="disk-full"),
    ]
    status, answer = await daemon.post(body, BEARER)
    fp = fingerprint("acme", "unknown:acme-nas9", "backup-failed")
    assert (status, answer["events"][0]) == (
        202,
        {"fingerprint": fp, "kind": "problem", "device": None, "unknown_device": "acme-nas9"},
    )
    assert answer["events"][1]["unknown_device"] == "gamma-fs"
    stored, opened = await daemon.stored()
    assert [(e.device_id, e.customer, e.message) for e in stored] == [
        (None, "acme", "'acme-nas9' (acme, address 10.0.0.9): nightly-backup: 3 of 12 VMs failed"),
        (None, "gamma", "'gamma-fs' (gamma, customer not configured): disk: 3 of 12 VMs failed"),
    ]
    assert [(i.fingerprint, i.state, i.device_id, i.customer) for i in opened] == [
        (fp, "open", None, "acme"),
        (fingerprint("gamma", "unknown:gamma-fs", "disk-full"), "open", None, "gamma"),
    ]
    assert "acme-nas9" in opened[0].title
    # its own recovery resolves it
    assert (await daemon.post(backup(device="acme-nas9", status="ok"), BEARER))[0] == 202
    _, after = await daemon.stored()
    assert [i.state for i in after] == ["resolved", "open"]


async def test_unknown_device_incident_on_each_database(tmp_path: Path, db_url: str) -> None:
    loaded = config(tmp_path, db_url, tokens=[{"name": "b" * 23, "token": TOKEN}])
    app, runner = await start(loaded)
    try:
        async with aiohttp.ClientSession() as http:
            d = Daemon(app, f"http://{loaded.config.daemon.listen}", http, [])
            event = backup(device="x" * 100, address="2001:db8::1", check="c" * 96)
            assert (await d.post([event] * 3, BEARER))[0] == 202
            stored, opened = await d.stored()
    finally:
        await runner.cleanup()
        await app.stop()
    assert len(stored) == 3 and {e.source for e in stored} == {"ingest:" + "b" * 23}
    assert len(opened) == 1 and opened[0].device_id is None


async def test_disabled_ingest_is_not_found(tmp_path: Path) -> None:
    loaded = config(tmp_path, enabled=False, tokens=[])
    app, runner = await start(loaded)
    try:
        async with aiohttp.ClientSession() as http:
            d = Daemon(app, f"http://{loaded.config.daemon.listen}", http, [])
            assert await d.post(GOOD, BEARER) == (
                404,
                {"error": "event ingest is disabled (ingest.enabled: false)"},
            )
            assert await d.stored() == ([], [])
            assert d.metric("disabled") == 1
    finally:
        await runner.cleanup()
        await app.stop()


async def test_reload_applies_new_credentials(tmp_path: Path) -> None:
    data: dict[str, Any] = {
        "daemon": {"state_dir": str(tmp_path), "listen": f"127.0.0.1:{free_port()}"},
        "customers": [{"name": "acme"}],
        "devices": [{"name": "acme-nas1", "customer": "acme", "address": "10.0.0.5"}],
        "ingest": {"enabled": True, "tokens": [{"name": "nas", "token": TOKEN}]},
    }
    path = tmp_path / "monitord.yaml"
    path.write_text(yaml.safe_dump(data))
    loaded = load_config(path)
    app = App(loaded, config_path=path, clock=FakeClock(NOW))
    await app.start()
    runner = await serve(app, loaded.config.daemon.listen)
    try:
        async with aiohttp.ClientSession() as http:
            d = Daemon(app, f"http://{loaded.config.daemon.listen}", http, [])
            assert (await d.post(GOOD, BEARER))[0] == 202
            data["ingest"]["tokens"] = [{"name": "nas", "token": TOKEN + "-rotated"}]
            path.write_text(yaml.safe_dump(data))
            await app.reload()
            assert (await d.post(GOOD, BEARER))[0] == 403  # revoked at once
            rotated = {**JSON, "Authorization": f"Bearer {TOKEN}-rotated"}
            assert (await d.post(GOOD, rotated))[0] == 202
    finally:
        await runner.cleanup()
        await app.stop()


# --- the documentation ------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "ingest.md"


def doc_block(after: str, lang: str = "sh") -> str:
    """The first fenced `lang` block after the text `after` in docs/ingest.md."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"```{lang}\n", text.index(after)) + len(lang) + 4
    return text[start : text.index("```", start)]


async def test_documented_examples_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    need(bool(shutil.which("curl") and shutil.which("openssl")), "curl and openssl are needed")
    key = tmp_path / "veeam.key"
    key.write_text(SECRET + "\n")
    monkeypatch.setenv("INGEST_NAS_TOKEN", TOKEN)
    documented = yaml.safe_load(doc_block("## Configuration", "yaml"))
    documented["ingest"]["hmac"][0]["secret"] = f"file:{key}"
    ingest = documented["ingest"]
    loaded = config(tmp_path, **ingest)
    app = App(loaded)  # the system clock: the script signs with `date +%s`
    await app.start()
    runner = await serve(app, loaded.config.daemon.listen)
    url = f"http://{loaded.config.daemon.listen}"
    try:
        for heading in ("With a token:", "A batch", "Signed with HMAC-SHA256"):
            script = (
                doc_block(heading)
                .replace("http://127.0.0.1:9787", url)
                .replace("/etc/monitord/veeam.key", str(key))
                .replace("/tmp/event.json", str(tmp_path / "event.json"))
            )
            proc = await asyncio.create_subprocess_exec(
                "bash", "-euo", "pipefail", "-c", script, stdout=asyncio.subprocess.PIPE
            )
            out, _ = await proc.communicate()
            assert proc.returncode == 0, heading
            assert json.loads(out)["accepted"] >= 1, (heading, out)
    finally:
        await runner.cleanup()
        await app.stop()


# --- pure parts -------------------------------------------------------------------------------


def test_batch_size_is_bounded() -> None:
    item = backup()
    assert len(validate([item] * MAX_BATCH, NOW)) == MAX_BATCH
    with pytest.raises(SchemaError) as exc:
        validate([item] * (MAX_BATCH + 1), NOW)
    assert (exc.value.status, exc.value.message) == (
        422,
        "body: a batch holds at most 1000 events, got 1001",
    )


def test_many_errors_are_capped() -> None:
    with pytest.raises(SchemaError) as exc:
        validate([backup(status="bad")] * 25, NOW)
    assert exc.value.errors is not None and len(exc.value.errors) == 20
    assert exc.value.message.endswith(
        "body[19].status: input should be 'ok', 'warning', 'critical' or 'unknown' (and 5 more)"
    )


def test_message_and_labels_are_bounded() -> None:
    with pytest.raises(SchemaError) as exc:
        validate([backup(message="x" * 4097, labels={f"l{i}": "v" for i in range(33)})], NOW)
    assert exc.value.errors == [
        "body[0].message: string should have at most 4096 characters",
        "body[0].labels: at most 32 labels, got 33",
    ]


def test_claimed_device_reads_the_convention() -> None:
    def event(source: str, device_id: str | None, message: str) -> Event:
        return Event(
            0.0, source, EventKind.PROBLEM, "fp", "acme", device_id, None, Status.CRITICAL, message
        )

    assert claimed_device(event("ingest:nas", None, "'acme-nas9' (acme): x: y")) == "acme-nas9"
    assert claimed_device(event("ingest:nas", "acme/nas1", "'acme-nas9' (acme): x")) is None
    assert claimed_device(event("trap", None, "'acme-nas9' (acme): x")) is None


@pytest.mark.parametrize(
    ("ingest", "message"),
    [
        ({"enabled": True}, "ingest: ingest is enabled but has no tokens and no hmac secrets"),
        (
            {"tokens": [{"name": "nas", "token": "short"}]},
            "ingest.tokens[0]: token of 'nas' is shorter than 16 characters",
        ),
        (
            {"hmac": [{"name": "veeam", "secret": "short"}]},
            "ingest.hmac[0]: secret of 'veeam' is shorter than 16 characters",
        ),
        (
            {"tokens": [{"name": "n" * 24, "token": TOKEN}]},
            f"ingest.tokens[0].name: source name {'n' * 24!r} is longer than 23 characters",
        ),
        (
            {"tokens": [{"name": "a", "token": TOKEN}, {"name": "a", "token": TOKEN + "x"}]},
            "ingest.tokens: duplicate token name 'a'",
        ),
        (
            {"tokens": [{"name": "a", "token": TOKEN}, {"name": "b", "token": TOKEN}]},
            "ingest.tokens: tokens 'a' and 'b' have the same value",
        ),
        (
            {"hmac": [{"name": "v", "secret": SECRET}, {"name": "v", "secret": SECRET}]},
            "ingest.hmac: duplicate hmac name 'v'",
        ),
        (
            {"max_body_bytes": 10},
            "ingest.max_body_bytes: input should be greater than or equal to 1024",
        ),
        ({"token": "x"}, "ingest.token: unknown key"),
    ],
)
def test_config_errors(ingest: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigErrors) as exc:
        config_from_dict({"ingest": ingest})
    assert [str(e) for e in exc.value.errors] == [f"<dict>: {message}"]
    assert TOKEN not in str(exc.value) and SECRET not in str(exc.value)
