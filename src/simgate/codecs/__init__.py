"""Pure codecs: bytes <-> values, stdlib only (no I/O, no clock)."""
