"""Mandatory-parameter kinds (SMPP v3.4 section 3.1) and a bounds-checked reader.

A PDU body is declared as dataclass fields whose ``metadata[SMPP_FIELD]`` holds one
of the kinds below; :mod:`simgate.codecs.smpp.codec` walks them in order to encode
and decode. Helpers (:func:`int1`, :func:`cstring`, :func:`octets`...) build those
dataclass fields so each PDU layout is written exactly once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

from simgate.codecs.smpp.constants import CommandStatus
from simgate.codecs.smpp.errors import SmppDecodeError, SmppEncodeError

SMPP_FIELD: Final = "smpp"

T = TypeVar("T")

# C-octet strings are ASCII on the wire; latin-1 keeps every byte value round-trippable.
TEXT_ENCODING: Final = "latin-1"


class Reader:
    """Cursor over a PDU; every read is bounds-checked and fails with SmppDecodeError."""

    __slots__ = ("command_id", "data", "pos", "sequence_number")

    def __init__(
        self,
        data: bytes,
        pos: int = 0,
        *,
        command_id: int | None = None,
        sequence_number: int | None = None,
    ) -> None:
        self.data = data
        self.pos = pos
        self.command_id = command_id
        self.sequence_number = sequence_number

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def error(
        self, reason: str, status: CommandStatus = CommandStatus.ESME_RINVCMDLEN
    ) -> SmppDecodeError:
        return SmppDecodeError(
            reason,
            status=status,
            command_id=self.command_id,
            sequence_number=self.sequence_number,
        )

    def take(
        self, n: int, what: str, status: CommandStatus = CommandStatus.ESME_RINVCMDLEN
    ) -> bytes:
        if n > self.remaining:
            raise self.error(f"{what}: need {n} octets, {self.remaining} left", status)
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "big")

    def cstring(self, what: str) -> bytes:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise self.error(f"{what}: C-octet string without NUL terminator")
        value = self.data[self.pos : end]
        self.pos = end + 1
        return value


#: Appends the wire form of one value to a list of pieces (one ``b"".join`` per PDU).
Appender = Callable[[object, list[bytes]], None]


class FieldKind(Protocol):
    """How one mandatory parameter is put on the wire."""

    def encode(self, value: object, name: str) -> bytes: ...

    def appender(self, name: str) -> Appender:
        """The encoder the codec runs per PDU: values that need no check beyond the
        common case go straight to ``out``; anything else takes :meth:`encode` (same
        bytes, same errors)."""
        ...

    def decode(self, reader: Reader, name: str, strict: bool) -> object: ...


@dataclass(frozen=True, slots=True)
class Int:
    """Unsigned big-endian integer of 1, 2 or 4 octets."""

    size: int

    def encode(self, value: object, name: str) -> bytes:
        if not isinstance(value, int):
            raise SmppEncodeError(f"{name}: expected int, got {type(value).__name__}")
        if not 0 <= value < 1 << (8 * self.size):
            raise SmppEncodeError(f"{name}: {value} does not fit in {self.size} octet(s)")
        return value.to_bytes(self.size, "big")

    def appender(self, name: str) -> Appender:
        if self.size != 1:
            return _checked(self, name)
        encode = self.encode

        def append(value: object, out: list[bytes]) -> None:
            if isinstance(value, int) and 0 <= value < 256:  # IntEnum members too
                out.append(_OCTETS[value])
            else:  # not an int, or out of range: the checked path raises
                out.append(encode(value, name))

        return append

    def decode(self, reader: Reader, name: str, strict: bool) -> int:
        return reader.uint(self.size, name)


@dataclass(frozen=True, slots=True)
class CString:
    """NUL-terminated ASCII string. ``max_len`` counts the NUL, as the spec tables do.
    ``lengths`` restricts the length without NUL (e.g. {0, 16} for absolute/relative
    times, which are "Fixed 1 or 17")."""

    max_len: int
    lengths: frozenset[int] | None = None

    def _check(self, raw: bytes, name: str) -> str | None:
        if len(raw) + 1 > self.max_len:
            return f"{name}: {len(raw) + 1} octets with NUL, max {self.max_len}"
        if self.lengths is not None and len(raw) not in self.lengths:
            return f"{name}: length {len(raw)} not in {sorted(self.lengths)}"
        return None

    def encode(self, value: object, name: str) -> bytes:
        if not isinstance(value, str):
            raise SmppEncodeError(f"{name}: expected str, got {type(value).__name__}")
        try:
            raw = value.encode(TEXT_ENCODING)
        except UnicodeEncodeError as exc:
            raise SmppEncodeError(f"{name}: not encodable as a C-octet string") from exc
        if b"\x00" in raw:
            raise SmppEncodeError(f"{name}: NUL inside a C-octet string")
        problem = self._check(raw, name)
        if problem:
            raise SmppEncodeError(problem)
        return raw + b"\x00"

    def appender(self, name: str) -> Appender:
        encode, longest = self.encode, self.max_len - 1
        if self.lengths is not None:  # time strings: almost always empty
            empty_ok = 0 in self.lengths

            def append_fixed(value: object, out: list[bytes]) -> None:
                if value == "" and empty_ok:
                    out.append(_NUL)
                else:
                    out.append(encode(value, name))

            return append_fixed

        def append(value: object, out: list[bytes]) -> None:
            if value.__class__ is str and value.isascii():
                raw: bytes = value.encode("ascii")
                if len(raw) <= longest and b"\x00" not in raw:
                    out += (raw, _NUL)
                    return
            out.append(encode(value, name))

        return append

    def decode(self, reader: Reader, name: str, strict: bool) -> str:
        raw = reader.cstring(name)
        if strict:
            problem = self._check(raw, name)
            if problem:
                raise reader.error(problem, CommandStatus.ESME_RINVPARLEN)
        return raw.decode(TEXT_ENCODING)


@dataclass(frozen=True, slots=True)
class OctetString:
    """Octet string preceded on the wire by its length (e.g. sm_length then
    short_message). ``length_field`` is the wire name of that length prefix."""

    length_field: str
    length_size: int = 1
    max_len: int = 254

    def encode(self, value: object, name: str) -> bytes:
        if not isinstance(value, bytes | bytearray):
            raise SmppEncodeError(f"{name}: expected bytes, got {type(value).__name__}")
        if len(value) > self.max_len:
            raise SmppEncodeError(f"{name}: {len(value)} octets, max {self.max_len}")
        return len(value).to_bytes(self.length_size, "big") + bytes(value)

    def appender(self, name: str) -> Appender:
        if self.length_size != 1:
            return _checked(self, name)
        encode, longest = self.encode, min(self.max_len, 255)

        def append(value: object, out: list[bytes]) -> None:
            if value.__class__ is bytes and len(value) <= longest:
                out += (_OCTETS[len(value)], value)
            else:
                out.append(encode(value, name))

        return append

    def decode(self, reader: Reader, name: str, strict: bool) -> bytes:
        length = reader.uint(self.length_size, self.length_field)
        if strict and length > self.max_len:
            raise reader.error(
                f"{self.length_field}={length} exceeds {self.max_len}",
                CommandStatus.ESME_RINVMSGLEN,
            )
        return reader.take(length, name, CommandStatus.ESME_RINVMSGLEN)


TIME_STRING: Final = CString(17, frozenset({0, 16}))

# One-octet values, built once: the common integers of a PDU cost a tuple look-up.
_OCTETS: Final = tuple(bytes((i,)) for i in range(256))
_NUL: Final = b"\x00"


def _checked(kind: FieldKind, name: str) -> Appender:
    encode = kind.encode

    def append(value: object, out: list[bytes]) -> None:
        out.append(encode(value, name))

    return append


def _field(default: T, kind: FieldKind) -> T:
    result: T = dataclasses.field(default=default, metadata={SMPP_FIELD: kind})
    return result


def int1(default: int = 0) -> int:
    """A 1-octet Integer mandatory parameter."""
    return _field(default, Int(1))


def int2(default: int = 0) -> int:
    return _field(default, Int(2))


def int4(default: int = 0) -> int:
    return _field(default, Int(4))


def cstring(max_len: int, default: str = "") -> str:
    """A C-Octet String of at most ``max_len`` octets including the NUL."""
    return _field(default, CString(max_len))


def time_string() -> str:
    """schedule_delivery_time / validity_period / final_date: empty or 16 chars."""
    return _field("", TIME_STRING)


def octets(length_field: str, *, max_len: int = 254, length_size: int = 1) -> bytes:
    """An Octet String whose length is carried by the preceding ``length_field``."""
    return _field(b"", OctetString(length_field, length_size, max_len))


def body_layout(cls: type) -> tuple[tuple[str, FieldKind], ...]:
    """The ordered mandatory parameters declared on a PDU dataclass."""
    return tuple(
        (f.name, f.metadata[SMPP_FIELD])
        for f in dataclasses.fields(cls)
        if SMPP_FIELD in f.metadata
    )
