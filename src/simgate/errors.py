"""The error tree of simgate.

::

    SimgateError
    ├── ConfigError            bad settings; reported as one line at start-up
    ├── StoreError             the database is missing, locked or unreachable
    │   ├── StorageFull        no room for a write
    │   └── FlushFailed        the disk failed an fsync: writes refused until a restart
    └── ServiceError           a use case refused the request (maps to a dialect code)
        ├── AuthError          credentials wrong, key revoked (itnio -1, dinstar 401, openvox 401)
        ├── AccessDenied       IP not allowed (itnio -2)
        ├── AccountLocked      (itnio -13)
        ├── InvalidInput       a field is missing or malformed (itnio -22, dinstar 400, openvox 400)
        │   ├── InvalidNumber  (itnio -9)
        │   ├── ContentEmpty   (itnio -4)
        │   ├── ContentTooLong (itnio -5)
        │   ├── TooManyNumbers (itnio -7, dinstar 413)
        │   ├── InvalidMedia   an audio file that does not decode (itnio -21)
        │   └── OutOfRange     a time window too far back (itnio -25)
        ├── AlreadyExists      a unique name is taken (itnio -20)
        ├── InsufficientBalance (itnio -10)
        ├── NoPricing          no rate for a destination (itnio -19; voice -26)
        ├── NoRoute            no line or port can carry it (dinstar 550)
        ├── NotFound           (itnio -14, openvox 404)
        ├── Busy               too much waits to be finished (a flood of incoming parts);
        │                      the line refuses for now and its peer sends again later
        └── Unavailable        the process that drives the lines is down or restarting
                               (``run --worker-process``): a port action cannot run now

Each dialect maps this tree with one table; nothing else in a dialect inspects errors.
"""

from __future__ import annotations


class SimgateError(Exception):
    """Base of every error simgate raises on purpose."""


class ConfigError(SimgateError):
    """Settings are invalid; the message is one line a person can act on."""


class StoreError(SimgateError):
    """The database cannot be used (missing, locked, unreachable, wrong schema)."""


class StorageFull(StoreError):
    """The database's storage has no room for a write (a full disk, SQLITE_FULL, PostgreSQL's
    disk_full). Said as such to clients and by /healthz (issue 14 item 13), without paths."""

    def __init__(self) -> None:
        super().__init__(
            "the gateway's storage is full: nothing can be stored until space is freed"
        )


class FlushFailed(StoreError):
    """The disk did not take data already committed (an fsync of the SQLite WAL failed,
    store/wal_flush.py): what the write holds may or may not be there after a restart. Every
    later write is refused until simgate is restarted, as PostgreSQL stops on a failed
    fsync (https://wiki.postgresql.org/wiki/Fsync_Errors). The message names no path: it is
    what clients hear; the path and the system's error go to the log."""

    def __init__(self, path: str, cause: OSError) -> None:
        super().__init__(
            "the gateway's storage failed to keep written data: writes are refused until "
            "it is restarted"
        )
        self.path = path
        self.cause = cause


class ServiceError(SimgateError):
    """A use case refused the request."""


class AuthError(ServiceError):
    pass


class AccessDenied(ServiceError):
    pass


class AccountLocked(ServiceError):
    pass


class InvalidInput(ServiceError):
    pass


class InvalidNumber(InvalidInput):
    pass


class ContentEmpty(InvalidInput):
    pass


class ContentTooLong(InvalidInput):
    pass


class TooManyNumbers(InvalidInput):
    pass


class InvalidMedia(InvalidInput):
    """An uploaded audio file is not what its name says, or does not decode."""


class OutOfRange(InvalidInput):
    """A query reaches further back than the records are kept (itnio -25)."""


class AlreadyExists(ServiceError):
    pass


class InsufficientBalance(ServiceError):
    pass


class NoPricing(ServiceError):
    pass


class NoRoute(ServiceError):
    pass


class NotFound(ServiceError):
    pass


class Busy(ServiceError):
    pass


class Unavailable(ServiceError):
    """What the request needs runs in another process that cannot answer now (the worker
    child of ``run --worker-process`` is down or restarting); trying again later may work."""
