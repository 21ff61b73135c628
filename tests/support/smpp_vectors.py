"""SMPP byte vectors for the golden, receipt and interop tests of the codec.

Sources are noted per vector:
* "SMPP v3.4 §3.2": the example bind_transmitter PDU of the spec's PDU format
  overview (system_id SMPP3TEST, password secret08, system_type SUBMIT1,
  command_length 0x2F), typed in from memory of the spec's field table: the
  length is self-consistent, the single-octet values (interface_version 0x00,
  addr_ton/addr_npi 0x01) were not re-checked against the PDF.
* "smpplib tests": byte strings from smpplib 2.2.4 tests/test_command.py, captured
  from real SMSCs (delivery receipts).
* "smpplib 2.2.4 output": bytes produced by smpplib.smpp.make_pdu(...).generate()
  for the inputs written next to them (regenerated live in test_smpplib_interop).
* "hand": assembled by hand from the v3.4 field tables.
"""

from __future__ import annotations

SPEC_BIND_TRANSMITTER = bytes.fromhex(
    "0000002f" "00000002" "00000000" "00000001"
    "534d5050335445535400"  # system_id "SMPP3TEST"
    "7365637265743038" "00"  # password "secret08"
    "5355424d49543100"  # system_type "SUBMIT1"
    "00" "01" "01" "00"  # interface_version, addr_ton, addr_npi, address_range ""
)  # fmt: skip

SMPPLIB_TEST_DELIVER_SM_1 = (
    b"\x00\x00\x00\xcb\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x01\x00"
    b"\x01\x0131600000000\x00\x05\x00XXX YYYY\x00\x04\x00\x00\x00\x00\x00"
    b"\x00\x00\x00\x00\x00\x0e\x00\x01\x01\x00\x06\x00\x01\x01\x00\x1e\x00"
    b"\t1d305b4c\x00\x04'\x00\x01\x02\x04$\x00rid:0489708364 sub:001"
    b" dlvrd:001 submit date:1810151907 done date:1810151907 stat:DELIVRD"
    b" err:000 text:\x04\x1f\x04@\x048\x042\x045\x04B\x04&\x00\x01\x01"
)

SMPPLIB_TEST_DELIVER_SM_2 = (
    b"\x00\x00\x00\xa8\x00\x00\x00\x05\x00\x00\x00\x00/p\xc6"
    b"\x9a\x00\x00\x0022549909028\x00\x01\x00\x00\x04\x00\x00"
    b"\x00\x00\x00\x00\x00\x00iid:795920026 sub:001 dlvrd:001 "
    b"submit date:200319131913 done date:200319131913 stat:DELIVRD err:000 text:"
    b"\x14\x03\x00\x07(null)\x00\x14\x02\x00\x04612\x00"
)

# smpplib 2.2.4 output for make_pdu("submit_sm", source_addr_ton=5, source_addr="SIMGATE",
# dest_addr_ton=1, dest_addr_npi=1, destination_addr="447700900123", esm_class=0x40,
# registered_delivery=1, data_coding=8, short_message=UDH+UCS2 "Hi",
# sar_msg_ref_num=0x2a, sar_total_segments=2, sar_segment_seqnum=1,
# user_message_reference=513), sequence 7.
SMPPLIB_SUBMIT_SM = bytes.fromhex(
    "0000005400000004000000000000000700050053494d47415445000101343437373030393030313233"
    "004000000000010008000a0500032a020100480069020400020201020c0002002a020e000102020f000101"
)
# smpplib 2.2.4 output for make_pdu("bind_transceiver", system_id="simgate",
# password="s3cret"), sequence 1.
SMPPLIB_BIND_TRANSCEIVER = bytes.fromhex(
    "0000002400000009000000000000000173696d6761746500733363726574000034000000"
)
# smpplib 2.2.4 output for make_pdu("submit_sm_resp", message_id="1d305b4c"), sequence 7.
SMPPLIB_SUBMIT_SM_RESP = bytes.fromhex("00000019800000040000000000000007316433303562346300")

# hand: deliver_sm, empty addresses, esm_class 0x04, no short_message; TLVs
# receipted_message_id "abc", message_state UNDELIVERABLE, network_error_code GSM 0x0022.
HAND_DELIVER_SM = bytes.fromhex(
    "00000035" "00000005" "00000000" "00000010"
    "00" "00" "00" "00" "00" "00" "00"  # service_type .. destination_addr
    "04" "00" "00" "00" "00" "00" "00" "00" "00" "00"  # esm_class .. sm_length
    "001e" "0004" "61626300"
    "0427" "0001" "05"
    "0423" "0003" "030022"
)  # fmt: skip
