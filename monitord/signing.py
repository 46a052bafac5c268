"""The one HMAC scheme monitord speaks, inbound (ingest) and outbound (webhooks):
HMAC-SHA256 under a shared secret over `timestamp + "." + body` (docs/ingest.md)."""

from __future__ import annotations

import hashlib
import hmac


def hmac_hex(secret: str, timestamp: int | str, body: bytes) -> str:
    """The hex digest senders compute and receivers compare."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Monitord-Signature` value: `sha256=<hex>`."""
    return "sha256=" + hmac_hex(secret, timestamp, body)
