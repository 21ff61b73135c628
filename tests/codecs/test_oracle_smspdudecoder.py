"""Cross-check of packed GSM-7 against ``smspdudecoder.codecs.GSM`` (smspdudecoder 2.2.0).

It implements TS 23.038 §6.1.2.1 packing with a bit-string library, from the same tables
as ours (it has "§" at 0x5F and form feed in the extension table).

Documented differences, shown below:

* its ``decode`` has no septet count, so 8n+7 septets come back with an extra "@" from
  the 7 zero pad bits (the §6.1.2.3.1 ambiguity; we take the count from TP-UDL);
* it shows an undefined ESC sequence as a space, where TS 23.038 §6.2.1.1 says to show
  the main-table character (which we do); and it drops ESC ESC silently where
  §6.2.1.1 says to show a space (which we do).
"""

from __future__ import annotations

from hypothesis import given
from smspdudecoder.codecs import GSM

from simgate.codecs.gsm7 import decode_septets, encode_septets, pack_septets, unpack_septets
from tests.codecs.strategies import gsm7_text


@given(gsm7_text)
def test_packing_matches(text: str) -> None:
    septs = encode_septets(text)
    packed = pack_septets(septs)
    assert packed.hex().upper() == GSM.encode(text)
    theirs = GSM.decode(packed.hex())
    assert theirs == text + ("@" if len(septs) % 8 == 7 else "")
    assert decode_septets(unpack_septets(packed, len(septs))) == text


def test_seven_spare_bits() -> None:
    assert GSM.decode(pack_septets(encode_septets("1234567")).hex()) == "1234567@"
    assert decode_septets(unpack_septets(bytes.fromhex("31D98C56B3DD00"), 7)) == "1234567"


def test_undefined_escape() -> None:
    esc_a = pack_septets(b"\x1b\x41").hex()
    assert GSM.decode(esc_a) == " "
    assert decode_septets(b"\x1b\x41") == "A"
    esc_esc = pack_septets(b"\x1b\x1b").hex()
    assert GSM.decode(esc_esc) == ""
    assert decode_septets(b"\x1b\x1b") == " "
