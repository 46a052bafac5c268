"""SNMP failures as `SnmpError`: a message saying which, and a reason from a closed set.

pysnmp reports timeouts and USM rejections as an errorIndication value and
agent refusals as an error-status in the response; both become an
`SnmpError` here, and `checks.snmp.check` maps its reason to a status.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pysnmp.proto import errind

from checks.snmp.oids import OID, format_oid
from monitord.errors import Reason

if TYPE_CHECKING:
    from checks.snmp.client import Session

V1, V2C, V3 = 0, 1, 3


# RFC 3416 error-status values, and which are the agent's fault (CRITICAL)
# rather than a request this config should not make (UNKNOWN).
ERROR_STATUS = (
    "noError",
    "tooBig",
    "noSuchName",
    "badValue",
    "readOnly",
    "genErr",
    "noAccess",
    "wrongType",
    "wrongLength",
    "wrongEncoding",
    "wrongValue",
    "noCreation",
    "inconsistentValue",
    "resourceUnavailable",
    "commitFailed",
    "undoFailed",
    "authorizationError",
    "notWritable",
    "inconsistentName",
)
_AGENT_FAULTS = frozenset({5, 13})  # genErr, resourceUnavailable


class SnmpError(Exception):
    """A request that produced no usable answer. `reason` says what kind."""

    def __init__(self, message: str, reason: Reason) -> None:
        super().__init__(message)
        self.reason = reason


def indication_error(s: Session, indication: Any, discovered: bool) -> SnmpError:
    """An errorIndication (timeout, USM report …) as a message naming the cause."""
    creds = s.creds
    if isinstance(indication, errind.RequestTimedOut):
        tries = "1 try" if s.tries == 1 else f"{s.tries} tries"
        hint = timeout_hint(s, discovered)
        return SnmpError(f"no response from {s.where} after {tries} — {hint}", Reason.TIMEOUT)
    user = f"user {creds.user!r}"
    if isinstance(indication, errind.UnknownUserName):
        return SnmpError(f"unknown user name: {s.where} has no SNMPv3 {user}", Reason.AUTH)
    if isinstance(indication, errind.WrongDigest):
        return SnmpError(
            f"wrong digest from {s.where}: authentication key or protocol of {user} is wrong",
            Reason.AUTH,
        )
    if isinstance(indication, errind.DecryptionError):
        return SnmpError(
            f"decryption error at {s.where}: privacy key or protocol of {user} is wrong",
            Reason.AUTH,
        )
    if isinstance(indication, errind.UnsupportedSecurityLevel):
        return SnmpError(f"{s.where} does not allow this security level for {user}", Reason.AUTH)
    if isinstance(indication, errind.NotInTimeWindow):
        return SnmpError(f"not in time window: {s.where} rejected the SNMPv3 clock", Reason.AUTH)
    if isinstance(indication, errind.UnknownEngineID):
        return SnmpError(f"unknown engine ID: SNMPv3 discovery with {s.where} failed", Reason.AUTH)
    if isinstance(indication, errind.EncryptionError):
        return SnmpError("SNMPv3 privacy unavailable (install 'cryptography')", Reason.CLIENT_ERROR)
    return SnmpError(f"SNMP error with {s.where}: {indication}", Reason.NETWORK)


def timeout_hint(s: Session, discovered: bool) -> str:
    """What an unanswered request most likely means; `discovered`: v3 engine ID known."""
    creds = s.creds
    if s.answered:  # the same credentials worked before
        return "agent down (it answered before)"
    if creds.version != V3:
        return "agent down or wrong community"
    if creds.priv_protocol is not None and discovered:
        # net-snmp answers discovery but silently drops what it cannot decrypt.
        return (
            "it answered SNMPv3 discovery, so the privacy key or protocol "
            f"of user {creds.user!r} is likely wrong"
        )
    return "agent down or SNMPv3 not enabled"


def status_error(s: Session, status: int, index: int, oids: Sequence[OID]) -> SnmpError:
    """An error-status in a response PDU as a message naming it and the OID."""
    name = ERROR_STATUS[status] if 0 <= status < len(ERROR_STATUS) else f"error-status {status}"
    oid = format_oid(oids[index - 1]) if 0 < index <= len(oids) else ""
    at = f" at {oid}" if oid else ""
    if status == 2:  # SNMPv1's way of saying noSuchObject
        return SnmpError(f"unknown OID {oid or '(unnamed)'} (noSuchName)", Reason.CLIENT_ERROR)
    if status == 16:
        return SnmpError(
            f"{name}{at}: {s.where} denied access (security level or MIB view)", Reason.AUTH
        )
    reason = Reason.SERVER_ERROR if status in _AGENT_FAULTS else Reason.CLIENT_ERROR
    return SnmpError(f"agent {s.where} answered {name}{at}", reason)
