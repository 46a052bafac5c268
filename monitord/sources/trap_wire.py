"""SNMPv1/v2c notifications on the wire: a strict, minimal BER reader.

pysnmp decodes a message through pyasn1 several times over, ~0.8 CPU-ms for a
five-varbind linkDown: a trap storm of 1,000/s took a whole core. Community
messages are simple enough to read directly (~25 µs), so v1 traps, v2c traps
and v2c informs take this path; SNMPv3, whose security needs the full
machinery, still goes through pysnmp.

The reader accepts only what a notification can be (definite lengths, the
expected tags in order) and raises `WireError` for anything else, never
another exception; every slice is bounds-checked against its container.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE, INTEGER, OCTET_STRING, NULL, OID = 0x30, 0x02, 0x04, 0x05, 0x06
IP_ADDRESS, TIME_TICKS = 0x40, 0x43
V1_TRAP, V2_TRAP, INFORM, RESPONSE = 0xA4, 0xA7, 0xA6, 0xA2
# Application types whose value is an unsigned number (Counter32, Gauge32, TimeTicks, Counter64).
_UNSIGNED = frozenset({0x41, 0x42, TIME_TICKS, 0x46})
_GENERIC_TRAPS = "1.3.6.1.6.3.1.1.5."
_NO_ERROR = b"\x02\x01\x00\x02\x01\x00"  # error-status 0, error-index 0
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
SNMP_TRAP_ENTERPRISE = "1.3.6.1.6.3.1.1.4.3.0"


class WireError(ValueError):
    """The datagram is not a well-formed SNMP message of the expected shape."""


class NotANotification(WireError):
    """A well-formed v1/v2c message that carries no notification (a GET, a SET …)."""


@dataclass(frozen=True, slots=True)
class CommunityMessage:
    """A decoded v1/v2c notification: its version (0 = v1, 1 = v2c), community,
    PDU tag, trap OID and other varbinds as text (sysUpTime left out; a v1
    trap converted as RFC 3584 says), and for an inform the reply to send."""

    version: int
    community: bytes
    pdu: int
    trap_oid: str
    varbinds: tuple[tuple[str, str], ...]
    reply: bytes | None = None


def _tlv(data: bytes, i: int, limit: int) -> tuple[int, int, int]:
    """(tag, start, end) of the element at `i`, which must end by `limit`."""
    if i + 2 > limit:
        raise WireError("truncated element")
    tag, n = data[i], data[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        if not 1 <= k <= 3 or i + k > limit:
            raise WireError("bad length")
        n = int.from_bytes(data[i : i + k], "big")
        i += k
    if i + n > limit:
        raise WireError("element overruns its container")
    return tag, i, i + n


def _expect(data: bytes, i: int, limit: int, tag: int) -> tuple[int, int]:
    got, start, end = _tlv(data, i, limit)
    if got != tag:
        raise WireError(f"expected tag 0x{tag:02x}, got 0x{got:02x}")
    return start, end


def oid_text(raw: bytes) -> str:
    """BER object identifier contents → dotted text. Raises WireError."""
    if not raw or raw[-1] & 0x80:
        raise WireError("bad object identifier")
    arcs: list[int] = []
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(map(str, head + arcs[1:]))


def value_text(tag: int, raw: bytes) -> str:
    """A varbind value as text: numbers in decimal, OIDs and IP addresses dotted,
    printable strings as they are and other octets as 0x-hex, like pysnmp's
    prettyPrint; NULL and the v2 exceptions (noSuchObject …) as ""."""
    if tag == INTEGER:
        return str(int.from_bytes(raw, "big", signed=True))
    if tag in _UNSIGNED:
        return str(int.from_bytes(raw, "big"))
    if tag == OID:
        return oid_text(raw)
    if tag == IP_ADDRESS:
        return ".".join(map(str, raw))
    if tag == OCTET_STRING:
        if all(b >= 32 or b in (9, 10, 13) for b in raw):
            try:
                return raw.decode()
            except UnicodeDecodeError:
                pass
        return "0x" + raw.hex()
    if tag == 0x44:  # Opaque
        return "0x" + raw.hex()
    return ""


def version(data: bytes) -> int | None:
    """The message's SNMP version field (0, 1, 3), or None when the datagram does
    not even start like an SNMP message."""
    try:
        start, end = _expect(data, 0, len(data), SEQUENCE)
        v_start, v_end = _expect(data, start, end, INTEGER)
    except WireError:
        return None
    return int.from_bytes(data[v_start:v_end], "big") if v_end - v_start == 1 else None


def parse(data: bytes) -> CommunityMessage:
    """Decode a v1/v2c message carrying a notification PDU (v1 Trap, v2 Trap,
    Inform). Raises NotANotification for another PDU, WireError when malformed."""
    start, end = _expect(data, 0, len(data), SEQUENCE)
    v_start, v_end = _expect(data, start, end, INTEGER)
    ver = int.from_bytes(data[v_start:v_end], "big")
    c_start, c_end = _expect(data, v_end, end, OCTET_STRING)
    pdu, p_start, p_end = _tlv(data, c_end, end)
    community = data[c_start:c_end]
    if (ver, pdu) == (0, V1_TRAP):
        v1_oid, v1_varbinds = _v1_trap(data, p_start, p_end)
        return CommunityMessage(0, community, pdu, v1_oid, v1_varbinds)
    if ver != 1 or pdu not in (V2_TRAP, INFORM):
        raise NotANotification(f"no notification (version {ver}, pdu 0x{pdu:02x})")
    r_start, r_end = _expect(data, p_start, p_end, INTEGER)
    i = _expect(data, r_end, p_end, INTEGER)[1]
    i = _expect(data, i, p_end, INTEGER)[1]
    l_start, l_end = _expect(data, i, p_end, SEQUENCE)
    decoded = _varbinds(data, l_start, l_end)
    trap_oid = next((v for o, v in decoded if o == SNMP_TRAP_OID), "")
    if not trap_oid:
        raise WireError("notification without snmpTrapOID.0")
    rest = tuple((o, v) for o, v in decoded if o not in (SNMP_TRAP_OID, SYS_UPTIME))
    reply = None
    if pdu == INFORM:
        # The response: same version, community, request-id and varbinds, no error.
        response = _wrap(INTEGER, data[r_start:r_end]) + _NO_ERROR + data[i:l_end]
        reply = _wrap(SEQUENCE, data[start:c_end] + _wrap(RESPONSE, response))
    return CommunityMessage(1, community, pdu, trap_oid, rest, reply)


def _varbinds(data: bytes, i: int, end: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    while i < end:
        vb_start, vb_end = _expect(data, i, end, SEQUENCE)
        o_start, o_end = _expect(data, vb_start, vb_end, OID)
        tag, v_start, v_end = _tlv(data, o_end, vb_end)
        out.append((oid_text(data[o_start:o_end]), value_text(tag, data[v_start:v_end])))
        i = vb_end
    return out


def _v1_trap(data: bytes, i: int, end: int) -> tuple[str, tuple[tuple[str, str], ...]]:
    """RFC 3584 §3.1: a v1 Trap-PDU in v2 form (trap OID, then the varbinds,
    snmpTrapAddress.0 and snmpTrapEnterprise.0)."""
    e_start, e_end = _expect(data, i, end, OID)
    a_start, a_end = _expect(data, e_end, end, IP_ADDRESS)
    g_start, g_end = _expect(data, a_end, end, INTEGER)
    s_start, s_end = _expect(data, g_end, end, INTEGER)
    t_end = _expect(data, s_end, end, TIME_TICKS)[1]
    l_start, l_end = _expect(data, t_end, end, SEQUENCE)
    enterprise = oid_text(data[e_start:e_end])
    generic = int.from_bytes(data[g_start:g_end], "big", signed=True)
    specific = int.from_bytes(data[s_start:s_end], "big", signed=True)
    if 0 <= generic <= 5:
        trap_oid = f"{_GENERIC_TRAPS}{generic + 1}"
    elif generic == 6:
        trap_oid = f"{enterprise}.0.{specific}"
    else:
        raise WireError(f"bad generic-trap {generic}")
    varbinds = _varbinds(data, l_start, l_end)
    varbinds.append((SNMP_TRAP_ADDRESS, value_text(IP_ADDRESS, data[a_start:a_end])))
    varbinds.append((SNMP_TRAP_ENTERPRISE, enterprise))
    return trap_oid, tuple(varbinds)


def _wrap(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content
