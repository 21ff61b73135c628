"""GSM modems over serial ports and TCP modem banks: :mod:`.line` (the Line),
:mod:`.port` (one modem's connection and state), :mod:`.journal` (TP-MRs kept for reports),
:mod:`.state` and :mod:`.errors` (pure readings of AT answers)."""

from simgate.lines.modem.line import ModemLine

__all__ = ["ModemLine"]
