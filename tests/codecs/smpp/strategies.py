"""Hypothesis strategies derived from the PDU declarations."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from simgate.codecs.smpp.codec import layout
from simgate.codecs.smpp.fields import CString, FieldKind, Int, OctetString
from simgate.codecs.smpp.pdus import PDU_TYPES, Pdu
from simgate.codecs.smpp.tlv_types import NetworkErrorCode, TlvTag
from simgate.codecs.smpp.tlvs import Tlv, Tlvs

# C-octet strings: any latin-1 character but NUL.
_CHARS = st.characters(min_codepoint=1, max_codepoint=255)


def field_strategy(kind: FieldKind) -> st.SearchStrategy[Any]:
    if isinstance(kind, Int):
        return st.integers(0, (1 << (8 * kind.size)) - 1)
    if isinstance(kind, CString):
        if kind.lengths is not None:
            return st.sampled_from(sorted(kind.lengths)).flatmap(
                lambda n: st.text(_CHARS, min_size=n, max_size=n)
            )
        return st.text(_CHARS, max_size=kind.max_len - 1)
    if isinstance(kind, OctetString):
        return st.binary(max_size=kind.max_len)
    raise AssertionError(f"no strategy for {kind!r}")


_KNOWN = {int(t) for t in TlvTag}

typed_tlvs = st.builds(
    Tlvs.build,
    message_payload=st.none() | st.binary(max_size=300),
    sar_msg_ref_num=st.none() | st.integers(0, 0xFFFF),
    sar_total_segments=st.none() | st.integers(0, 0xFF),
    sar_segment_seqnum=st.none() | st.integers(0, 0xFF),
    receipted_message_id=st.none() | st.text(_CHARS, max_size=64),
    message_state=st.none() | st.integers(0, 0xFF),
    network_error_code=st.none()
    | st.builds(NetworkErrorCode, st.integers(0, 0xFF), st.integers(0, 0xFFFF)),
    user_message_reference=st.none() | st.integers(0, 0xFFFF),
    sc_interface_version=st.none() | st.integers(0, 0xFF),
    extra=st.lists(
        st.builds(
            Tlv,
            st.integers(0, 0xFFFF).filter(lambda t: t not in _KNOWN),
            st.binary(max_size=40),
        ),
        max_size=3,
    ),
)


def pdu_strategy(cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    fields = {name: field_strategy(kind) for name, kind in layout(cls)}
    tlvs = typed_tlvs
    if "short_message" in fields:
        # short_message and message_payload are mutually exclusive.
        tlvs = typed_tlvs.map(lambda t: t.without(TlvTag.MESSAGE_PAYLOAD))
    return st.builds(
        cls,
        sequence_number=st.integers(0, 0xFFFF_FFFF),
        command_status=st.integers(0, 0xFFFF_FFFF),
        tlvs=tlvs,
        **fields,
    )


any_pdu = st.sampled_from(sorted(PDU_TYPES.values(), key=lambda c: c.COMMAND_ID)).flatmap(
    pdu_strategy
)
