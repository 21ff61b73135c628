"""Split a TCP byte stream into whole PDUs using command_length."""

from __future__ import annotations

from simgate.codecs.smpp.codec import HEADER_LENGTH, MAX_PDU_LENGTH
from simgate.codecs.smpp.constants import CommandStatus
from simgate.codecs.smpp.errors import SmppDecodeError


class PduFramer:
    """Accumulates bytes; :meth:`feed` returns each complete PDU (undecoded).

    A command_length below 16 or above ``max_length`` makes the stream unusable
    (no way to find the next PDU boundary): :meth:`feed` raises SmppDecodeError
    (status ESME_RINVCMDLEN, with command_id/sequence_number when 16 octets are
    available) and keeps raising on later calls; the connection must be closed.
    PDUs completed before the bad header in the same call are returned first; the
    error is then in :attr:`error` and raised by the next call.
    """

    def __init__(self, max_length: int = MAX_PDU_LENGTH) -> None:
        if max_length < HEADER_LENGTH:
            raise ValueError(f"max_length must be >= {HEADER_LENGTH}")
        self.max_length = max_length
        self._buffer = bytearray()
        self._error: SmppDecodeError | None = None

    @property
    def error(self) -> SmppDecodeError | None:
        """The framing error that made the stream unusable, if any."""
        return self._error

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as a PDU."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        self._buffer += data
        frames: list[bytes] = []
        while len(self._buffer) >= 4:
            length = int.from_bytes(self._buffer[:4], "big")
            if not HEADER_LENGTH <= length <= self.max_length:
                self._error = self._length_error(length)
                if frames:
                    break
                raise self._error
            if len(self._buffer) < length:
                break
            frames.append(bytes(self._buffer[:length]))
            del self._buffer[:length]
        return frames

    def _length_error(self, length: int) -> SmppDecodeError:
        header = self._buffer[:HEADER_LENGTH]
        full = len(header) == HEADER_LENGTH
        return SmppDecodeError(
            f"command_length {length} outside [{HEADER_LENGTH}, {self.max_length}]",
            status=CommandStatus.ESME_RINVCMDLEN,
            command_id=int.from_bytes(header[4:8], "big") if full else None,
            sequence_number=int.from_bytes(header[12:16], "big") if full else None,
        )
