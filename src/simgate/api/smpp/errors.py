"""simgate's service errors as the SMPP status a real SMSC answers with (v3.4 §5.1.3).

Balance, a locked account, no route or no price: ESME_RSUBMITFAIL (the submit failed for
a reason of the account, retrying does not help); an empty message ESME_RINVMSGLEN; storage
full or anything unexpected ESME_RSYSERR (a transient error ESMEs retry).
"""

from __future__ import annotations

from simgate.codecs.smpp import CommandStatus
from simgate.errors import (
    AccountLocked,
    ContentEmpty,
    InsufficientBalance,
    InvalidInput,
    NoPricing,
    NoRoute,
    StorageFull,
)

_TABLE: tuple[tuple[type[Exception], int], ...] = (
    (InsufficientBalance, CommandStatus.ESME_RSUBMITFAIL),
    (AccountLocked, CommandStatus.ESME_RSUBMITFAIL),
    (NoRoute, CommandStatus.ESME_RSUBMITFAIL),
    (NoPricing, CommandStatus.ESME_RSUBMITFAIL),
    (ContentEmpty, CommandStatus.ESME_RINVMSGLEN),
    (InvalidInput, CommandStatus.ESME_RSUBMITFAIL),
    (StorageFull, CommandStatus.ESME_RSYSERR),
)


def status_of(exc: Exception) -> int:
    for kind, status in _TABLE:
        if isinstance(exc, kind):
            return status
    return CommandStatus.ESME_RSYSERR
