"""The signed JSON webhook: exact headers and body, signature, idempotency headers."""

from __future__ import annotations

import hashlib
import hmac

from alerts.tickets.base import MemoryTicketMap
from alerts.tickets.webhook import sign
from tests.tickets.conftest import Harness, item


def test_signature_matches_the_ingest_scheme() -> None:
    expected = hmac.new(b"k", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k", 1_700_000_000, b"{}") == f"sha256={expected}"


async def test_open_sends_signed_json_with_dedup_headers(webhook: Harness) -> None:
    await webhook.deliverer().deliver(item("open"))
    (seen,) = webhook.emulator.requests
    assert seen.method == "POST" and seen.path == "/hook"
    assert seen.headers["X-Monitord-Timestamp"] == "1700000000"  # the injected clock
    assert seen.headers["X-Monitord-Dedup-Key"] == "monitord-incident-7"
    assert seen.headers["Idempotency-Key"] == "monitord-incident-7:open:1"
    assert seen.body["text"].startswith("Problem: ICMP loss 100%\n")
    assert {k: v for k, v in seen.body.items() if k != "text"} == {
        "op": "open",
        "dedup_key": "monitord-incident-7",
        "external_id": None,
        "subject": "[P2] acme-srv-db01: ping down",
        "customer": "acme",
        "device_id": "acme-srv-db01",
        "priority": "P2",
        "message": "ICMP loss 100%",
        "ts": 1_700_000_001.0,
        "event": "",
        "close": False,
        "changes": [],
    }
    assert webhook.tickets.rows == {("helpdesk", "monitord-incident-7"): "T1"}


async def test_redelivered_operations_take_effect_once(webhook: Harness) -> None:
    d = webhook.deliverer()
    await d.deliver(item("open"))
    await webhook.deliverer(MemoryTicketMap()).deliver(item("open"))
    await d.deliver(item("comment", ident=2))
    await d.deliver(item("comment", ident=2))
    await d.deliver(item("resolve", ident=3))
    ticket = webhook.emulator.tickets["monitord-incident-7"]
    assert ticket["log"] == ["open", "comment", "resolve"]
    assert ticket["state"] == "resolved"
    assert webhook.emulator.requests[-1].body["external_id"] == "T1"
