"""Signed, expiring acknowledgement links (the `/ack/<token>` URL in an SMS or e-mail).

A token names the incidents it acknowledges (one, or all of a summary page), the
engineer it was sent to and when it expires, and is signed with HMAC-SHA256 under
`paging.ack_secret` (monitord.signing's scheme: the expiry is the timestamp):

    12-13~jan~1765000000~<20 hex>

A summary page of more incidents than fit in an SMS names the summary instead
(`s<first incident>.<unix time>`, its dedup key `monitord-summary-<first>-<time>`),
whose incidents the daemon looks up, so one link acknowledges all 300 of a storm:

    s12.1764972000~jan~1765000000~<20 hex>

Short enough for an SMS, made of URL-safe characters only. Verification is
constant-time and tells forged from expired, so the refusal can be logged as such.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from monitord.signing import hmac_hex

SIGNATURE_HEX = 20  # 80 bits: plenty against guessing within a link's lifetime


@dataclass(frozen=True, slots=True)
class AckToken:
    incidents: tuple[int, ...]  # empty when `summary` names them
    engineer: str
    expires: int
    summary: str | None = None  # a summary page's dedup key


def summary_key(first: int, ts: int) -> str:
    return f"monitord-summary-{first}-{ts}"


class LinkRefused(Exception):
    """A forged, malformed or expired token; `reason` is forged | expired | malformed."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _subject(incidents: tuple[int, ...], summary: tuple[int, int] | None) -> str:
    if summary is not None:
        return f"s{summary[0]}.{summary[1]}"
    return "-".join(str(i) for i in incidents)


def _body(subject: str, engineer: str) -> bytes:
    return (subject + "~" + engineer).encode()


def sign(
    secret: str,
    incidents: tuple[int, ...],
    engineer: str,
    expires: float,
    summary: tuple[int, int] | None = None,
) -> str:
    """A token for `incidents`, or for the summary page (first incident, unix time)."""
    x = int(expires)
    subject = _subject(incidents, summary)
    mac = hmac_hex(secret, x, _body(subject, engineer))[:SIGNATURE_HEX]
    return f"{subject}~{engineer}~{x}~{mac}"


def verify(secret: str, token: str, now: float) -> AckToken:
    """The token's content; raises LinkRefused (forged before expired: an attacker
    learns nothing from the answer)."""
    parts = token.split("~")
    if len(parts) != 4 or not parts[2].isdigit():
        raise LinkRefused("malformed", "not an acknowledgement link")
    subject, engineer, expires, mac = parts
    summary = None
    incidents: tuple[int, ...]
    try:
        if subject.startswith("s"):
            first, ts = (int(x) for x in subject[1:].split("."))
            incidents, summary = (), summary_key(first, ts)
        else:
            incidents = tuple(int(i) for i in subject.split("-"))
    except ValueError:
        raise LinkRefused("malformed", "not an acknowledgement link") from None
    expected = hmac_hex(secret, expires, _body(subject, engineer))[:SIGNATURE_HEX]
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        raise LinkRefused("forged", "this link is not valid")
    if int(expires) <= now:
        raise LinkRefused("expired", "this link has expired")
    return AckToken(incidents, engineer, int(expires), summary)


def ack_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/ack/{token}"
