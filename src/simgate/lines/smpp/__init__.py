"""SMPP v3.4 line driver (issue 5): binds to an SMSC, submits, matches receipts, takes MO.

Modules: :mod:`.outbound` (submit_sm PDUs: addresses, data_coding, long messages),
:mod:`.inbound` (receipt status, incoming reassembly), :mod:`.receipts` (receipt id
matching), :mod:`.bind` (one connection), :mod:`.line` (the line: window, rate, outcomes).
"""

from simgate.lines.smpp.line import SmppLine

__all__ = ["SmppLine"]
