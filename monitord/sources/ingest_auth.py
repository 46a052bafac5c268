"""Who sent an ingest request: per-source bearer tokens or HMAC-SHA256 signatures.

Two ways to authenticate, each naming a configured source (`ingest.tokens`,
`ingest.hmac`):

- `Authorization: Bearer <token>`: the token is the credential. Use it only
  over TLS (a reverse proxy) or loopback: anyone who sees one request can send
  more.
- `X-Monitord-Timestamp: <unix seconds>` and `X-Monitord-Signature:
  sha256=<hex>`, where hex is HMAC-SHA256(secret, timestamp + "." + body). The
  secret never travels; the timestamp must be within ±300 s of the daemon's
  clock, and each signature is accepted once (`ReplayGuard`), so a captured
  request cannot be sent again, inside the window or after it.

A request carrying `X-Monitord-Signature` is judged by its signature alone.
Every comparison is constant-time and runs over all configured credentials, so
timing says nothing about how close a guess came. No token, secret or
signature is ever formatted into a message or a log line: messages say what
is wrong, never what was sent.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from monitord.config.model import IngestConfig
from monitord.errors import MonitordError
from monitord.signing import hmac_hex

TIMESTAMP_HEADER = "X-Monitord-Timestamp"
SIGNATURE_HEADER = "X-Monitord-Signature"
MAX_SKEW = 300.0  # seconds either side of the daemon's clock

_SIGNATURE = re.compile(r"^sha256=([0-9a-fA-F]{64})$")
_TIMESTAMP = re.compile(r"^\d{1,12}$")


class AuthError(MonitordError):
    """The request is not authenticated. `missing`: no credentials at all (HTTP
    401), otherwise wrong, expired or replayed ones (HTTP 403)."""

    def __init__(self, message: str, *, missing: bool) -> None:
        super().__init__(message)
        self.message = message
        self.missing = missing


@dataclass(frozen=True, slots=True)
class Bearer:
    token: str

    def __repr__(self) -> str:  # never let a token reach a log through a repr
        return "Bearer(<secret>)"


@dataclass(frozen=True, slots=True)
class Signed:
    timestamp: int
    signature: str  # 64 lowercase hex digits

    def __repr__(self) -> str:
        return f"Signed(timestamp={self.timestamp}, signature=<secret>)"


def presented(headers: Mapping[str, str], now: float) -> Bearer | Signed:
    """The credentials a request carries, checked for form and (for a signature)
    freshness. Raises AuthError; never reads the body."""
    signature = headers.get(SIGNATURE_HEADER)
    if signature is not None:
        return _signed(signature, headers.get(TIMESTAMP_HEADER), now)
    authorization = headers.get("Authorization")
    if authorization is None:
        raise AuthError(
            "authentication required: send 'Authorization: Bearer <token>' "
            f"or sign the body ({SIGNATURE_HEADER}, {TIMESTAMP_HEADER})",
            missing=True,
        )
    scheme, _, token = authorization.strip().partition(" ")
    # The scheme is not echoed: a client that forgot "Bearer " would see its token.
    if scheme.lower() != "bearer":
        raise AuthError(
            "unsupported authorization scheme: use 'Authorization: Bearer <token>'",
            missing=True,
        )
    if not token.strip():
        raise AuthError("empty bearer token", missing=True)
    return Bearer(token.strip())


def _signed(signature: str, timestamp: str | None, now: float) -> Signed:
    if timestamp is None:
        raise AuthError(f"{SIGNATURE_HEADER} needs an {TIMESTAMP_HEADER} header", missing=True)
    match = _SIGNATURE.match(signature.strip())
    if match is None:
        raise AuthError(
            f"{SIGNATURE_HEADER} must be 'sha256=' followed by 64 hex digits", missing=False
        )
    if not _TIMESTAMP.match(timestamp.strip()):
        raise AuthError(
            f"{TIMESTAMP_HEADER} must be Unix time in whole seconds, got {timestamp[:40]!r}",
            missing=False,
        )
    ts = int(timestamp.strip())
    offset = ts - now
    if abs(offset) > MAX_SKEW:
        side = "ahead of" if offset > 0 else "behind"
        raise AuthError(
            f"{TIMESTAMP_HEADER} is {abs(offset):.0f} s {side} the server clock "
            f"(at most {MAX_SKEW:.0f} s allowed): sign with the current time",
            missing=False,
        )
    return Signed(ts, match.group(1).lower())


def token_source(config: IngestConfig, credentials: Bearer) -> str:
    """The source name of a bearer token. Raises AuthError when no token matches."""
    given = credentials.token.encode()
    found: str | None = None
    for entry in config.tokens:  # no early exit: the time taken must not depend on the match
        if hmac.compare_digest(given, entry.token.get_secret_value().encode()):
            found = entry.name
    if found is None:
        raise AuthError("invalid bearer token", missing=False)
    return found


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp + "." + body` under `secret` (what senders compute)."""
    return hmac_hex(secret, timestamp, body)


def signature_source(config: IngestConfig, credentials: Signed, body: bytes) -> str:
    """The source name whose secret produced the signature over `body`. Raises
    AuthError when none did."""
    given = credentials.signature.encode()
    found: str | None = None
    for entry in config.hmac:
        expected = sign(entry.secret.get_secret_value(), credentials.timestamp, body).encode()
        if hmac.compare_digest(given, expected):
            found = entry.name
    if found is None:
        raise AuthError(
            "signature does not match the body: expected HMAC-SHA256 of "
            "timestamp + '.' + body under the source's secret",
            missing=False,
        )
    return found


class ReplayGuard:
    """Signatures accepted within the last skew window; each is accepted once.

    A signature stays remembered until its timestamp falls out of the window
    (after that the timestamp check refuses it anyway). At most `limit` are
    kept: past that the oldest are forgotten first, which only matters at more
    than `limit` signed requests per ten minutes.
    """

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._seen: dict[str, float] = {}  # signature → when it stops mattering
        self._next_sweep = 0.0

    def check(self, credentials: Signed) -> None:
        """Raises AuthError if this signature was accepted before."""
        if credentials.signature in self._seen:
            raise AuthError(
                "replayed request: this signature was already accepted; "
                "sign each request with a fresh timestamp",
                missing=False,
            )

    def remember(self, credentials: Signed, now: float) -> None:
        if now >= self._next_sweep:
            self._seen = {s: t for s, t in self._seen.items() if t >= now}
            self._next_sweep = now + 10.0
        while len(self._seen) >= self.limit:
            del self._seen[next(iter(self._seen))]
        self._seen[credentials.signature] = credentials.timestamp + MAX_SKEW

    def __len__(self) -> int:
        return len(self._seen)
