"""The v1/v2c BER reader against messages pysnmp encodes, and against garbage."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.api import v1, v2c

from monitord.sources import trap_wire as w

IF_INDEX_5 = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1, 5)


def v2_message(pdu: Any, varbinds: list[tuple[Any, Any]], community: str = "c0mm") -> bytes:
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, 4242)
    v2c.apiPDU.set_varbinds(
        pdu,
        [
            (v2c.apiTrapPDU.sysUpTime, v2c.TimeTicks(99)),
            (v2c.apiTrapPDU.snmpTrapOID, v2c.ObjectIdentifier("1.3.6.1.6.3.1.1.5.3")),
            *varbinds,
        ],
    )
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, community)
    v2c.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


VARBINDS: list[tuple[Any, Any]] = [
    (IF_INDEX_5, v2c.Integer(5)),
    ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, 5), v2c.OctetString("Gi0/5")),
    ((1, 3, 6, 1, 4, 1, 9, 1), v2c.OctetString(b"\x00\xff")),
    ((1, 3, 6, 1, 4, 1, 9, 2), v2c.IpAddress("10.0.0.7")),
    ((1, 3, 6, 1, 4, 1, 9, 3), v2c.Counter64(2**40)),
    ((1, 3, 6, 1, 4, 1, 9, 4), v2c.Integer(-3)),
    ((1, 3, 6, 1, 4, 1, 9, 5), v2c.ObjectIdentifier("1.3.6.1.2.1.33.1.6.3.2")),
    ((1, 3, 6, 1, 4, 1, 9, 6), v2c.OctetString("x" * 300)),  # long-form lengths
]


def test_v2c_trap_is_read_as_pysnmp_writes_it() -> None:
    message = w.parse(v2_message(v2c.SNMPv2TrapPDU(), VARBINDS))
    assert (message.version, message.community, message.pdu) == (1, b"c0mm", w.V2_TRAP)
    assert message.trap_oid == "1.3.6.1.6.3.1.1.5.3" and message.reply is None
    assert message.varbinds == (
        ("1.3.6.1.2.1.2.2.1.1.5", "5"),
        ("1.3.6.1.2.1.31.1.1.1.1.5", "Gi0/5"),
        ("1.3.6.1.4.1.9.1", "0x00ff"),
        ("1.3.6.1.4.1.9.2", "10.0.0.7"),
        ("1.3.6.1.4.1.9.3", str(2**40)),
        ("1.3.6.1.4.1.9.4", "-3"),
        ("1.3.6.1.4.1.9.5", "1.3.6.1.2.1.33.1.6.3.2"),
        ("1.3.6.1.4.1.9.6", "x" * 300),
    )


def test_an_inform_gets_a_response_pysnmp_accepts() -> None:
    message = w.parse(v2_message(v2c.InformRequestPDU(), VARBINDS))
    assert message.reply is not None
    reply, rest = decoder.decode(message.reply, asn1Spec=v2c.Message())
    assert rest == b""
    pdu = v2c.apiMessage.get_pdu(reply)
    assert pdu.isSameTypeWith(v2c.ResponsePDU())
    assert int(v2c.apiPDU.get_request_id(pdu)) == 4242
    assert int(v2c.apiPDU.get_error_status(pdu)) == 0
    assert str(v2c.apiMessage.get_community(reply)) == "c0mm"
    assert len(v2c.apiPDU.get_varbinds(pdu)) == len(VARBINDS) + 2


@pytest.mark.parametrize(
    ("generic", "specific", "trap_oid"),
    [(2, 0, "1.3.6.1.6.3.1.1.5.3"), (6, 17, "1.3.6.1.4.1.318.0.17")],
)
def test_v1_traps_are_converted_to_v2_form(generic: int, specific: int, trap_oid: str) -> None:
    pdu = v1.TrapPDU()
    v1.apiTrapPDU.set_defaults(pdu)
    v1.apiTrapPDU.set_enterprise(pdu, (1, 3, 6, 1, 4, 1, 318))
    v1.apiTrapPDU.set_agent_address(pdu, "192.0.2.9")
    v1.apiTrapPDU.set_generic_trap(pdu, generic)
    v1.apiTrapPDU.set_specific_trap(pdu, specific)
    v1.apiTrapPDU.set_varbinds(pdu, [(IF_INDEX_5, v1.Integer(5))])
    msg = v1.Message()
    v1.apiMessage.set_defaults(msg)
    v1.apiMessage.set_community(msg, "c0mm")
    v1.apiMessage.set_pdu(msg, pdu)
    message = w.parse(bytes(encoder.encode(msg)))
    assert (message.version, message.trap_oid) == (0, trap_oid)
    assert message.varbinds == (
        ("1.3.6.1.2.1.2.2.1.1.5", "5"),
        (w.SNMP_TRAP_ADDRESS, "192.0.2.9"),
        (w.SNMP_TRAP_ENTERPRISE, "1.3.6.1.4.1.318"),
    )


def test_other_pdus_and_garbage_are_told_apart() -> None:
    get = v2c.GetRequestPDU()
    v2c.apiPDU.set_defaults(get)
    msg = v2c.Message()
    v2c.apiMessage.set_defaults(msg)
    v2c.apiMessage.set_community(msg, "c0mm")
    v2c.apiMessage.set_pdu(msg, get)
    with pytest.raises(w.NotANotification):
        w.parse(bytes(encoder.encode(msg)))
    good = v2_message(v2c.SNMPv2TrapPDU(), VARBINDS)
    for bad in (b"", b"\x30", b"\x30\x80\x02\x01\x01", good[:-1], good[:40], b"\x04\x02hi"):
        with pytest.raises(w.WireError):
            w.parse(bad)
    assert (w.version(good), w.version(b"junk"), w.version(b"\x30\x03\x02\x01\x03")) == (1, None, 3)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_wire_error(data: bytes) -> None:
    with contextlib.suppress(w.WireError):
        w.parse(data)


_GOOD = v2_message(v2c.InformRequestPDU(), VARBINDS[:3])


@settings(max_examples=500, deadline=None)
@given(st.integers(0, len(_GOOD) - 1), st.integers(0, 255), st.integers(1, len(_GOOD)))
def test_mutated_informs_raise_only_wire_error(at: int, byte: int, cut: int) -> None:
    data = (_GOOD[:at] + bytes([byte]) + _GOOD[at + 1 :])[:cut]
    with contextlib.suppress(w.WireError):
        w.parse(data)
