"""SNMP values as plain Python: what the checks judge and put into messages."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from enum import Enum
from typing import Any

from pyasn1.type import univ
from pysnmp.proto import rfc1905

from checks.snmp.oids import OID


class Missing(Enum):
    """SNMPv2 exception values: the agent answered, but not with a value."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"
    END_OF_MIB_VIEW = "endOfMibView"


Value = int | str | bytes | tuple[int, ...] | Missing | None
Var = tuple[OID, Value, str]
"""One varbind: numeric OID, plain Python value, SMI type name (`Counter64` …)."""

_MISSING = {
    rfc1905.NoSuchObject: Missing.NO_SUCH_OBJECT,
    rfc1905.NoSuchInstance: Missing.NO_SUCH_INSTANCE,
    rfc1905.EndOfMibView: Missing.END_OF_MIB_VIEW,
}


# RFC 3416 error-status values, and which are the agent's fault (CRITICAL)
# rather than a request this config should not make (UNKNOWN).
def convert(value: Any) -> tuple[Value, str]:
    """A pyasn1 value as a plain Python value and its SMI type name."""
    cls = type(value)
    syntax = cls.__name__
    missing = _MISSING.get(cls)
    if missing is not None:
        return missing, syntax
    if isinstance(value, univ.Integer):
        return int(value), syntax
    if isinstance(value, univ.OctetString):
        raw = value.asOctets()
        if syntax in ("IpAddress", "NetworkAddress") and len(raw) == 4:
            return socket.inet_ntoa(raw), syntax
        try:
            return raw.decode(), syntax
        except UnicodeDecodeError:
            return raw, syntax
    if isinstance(value, univ.ObjectIdentifier):
        return value.asTuple(), syntax
    return None, syntax


def plain_vars(varbinds: Sequence[Any]) -> list[Var]:
    out: list[Var] = []
    for oid, value in varbinds:
        plain, syntax = convert(value)
        out.append((oid.asTuple(), plain, syntax))
    return out
