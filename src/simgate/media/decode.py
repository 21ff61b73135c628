"""Uploaded audio files (itnio ``fileUpload``, spec §1.13) decoded to call audio.

The spec allows .mp3, .m4a and .wav. A file must be what its name says: the container is
recognised by its magic bytes (:func:`sniff`), not trusted from the name. MP3 and WAV decode
with miniaudio (dr_mp3 / dr_wav), M4A (AAC in ISO BMFF) with PyAV (FFmpeg). Both stream: a
file that expands past ``max_seconds`` is refused as soon as it does, so a small upload that
claims hours of audio (a decompression bomb) never allocates more than the limit.

Everything here is synchronous and CPU-bound; callers run :func:`decode` in a thread.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from fractions import Fraction

import av
import av.error
import miniaudio

from simgate.domain.calls import Audio
from simgate.errors import InvalidMedia
from simgate.media.pcm import RATE, SAMPLE_BYTES, max_samples, native_to_le

FORMATS = ("mp3", "m4a", "wav")

_NAMES = {"mp3": "MP3 audio", "m4a": "M4A (AAC) audio", "wav": "WAV audio"}

# ISO BMFF brands an .m4a may carry (major or compatible): Apple's audio brands, the generic
# MP4/ISO brands FFmpeg and phones write, 3GPP (phone recordings) and QuickTime.
_MP4_BRANDS = frozenset(
    {
        b"M4A ",
        b"M4B ",
        b"M4P ",
        b"F4A ",
        b"mp41",
        b"mp42",
        b"isom",
        b"iso2",
        b"iso3",
        b"iso4",
        b"iso5",
        b"iso6",
        b"3gp4",
        b"3gp5",
        b"3gp6",
        b"3g2a",
        b"dash",
        b"MSNV",
        b"qt  ",
    }
)

# Other things people upload by mistake, named in the refusal so the reason is clear.
_OTHER_MAGIC = (
    (b"OggS", "Ogg audio"),
    (b"fLaC", "FLAC audio"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive"),
)

# Decoded in chunks of one second of call audio: small enough to stop early on a bomb.
_CHUNK_FRAMES = RATE


class _TooLong(Exception):
    """Internal: the decoded audio passed the limit; decoding stopped."""


def sniff(data: bytes) -> str | None:
    """The real container of ``data`` by its magic bytes: "wav", "mp3", "m4a" or None."""
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if _is_mp3(data):
        return "mp3"
    if _is_mp4_audio(data):
        return "m4a"
    return None


def decode(data: bytes, *, declared: str, max_seconds: int) -> Audio:
    """Decode an uploaded file to 8 kHz mono s16 call audio.

    ``declared`` is the suffix of the uploaded fileName ("mp3", "m4a" or "wav"). Raises
    :class:`InvalidMedia` with a reason a person can act on: empty file, contents that are not
    the declared format, data that does not decode, no audio, or audio over ``max_seconds``.
    """
    if max_seconds < 1:
        raise ValueError(f"max_seconds must be at least 1, not {max_seconds}")
    fmt = declared.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InvalidMedia(f"audio files must be .mp3, .m4a or .wav, not .{fmt}")
    if not data:
        raise InvalidMedia(f"the .{fmt} file is empty")
    actual = sniff(data)
    if actual != fmt:
        raise InvalidMedia(f"the .{fmt} file is not {_NAMES[fmt]} (it looks like {describe(data)})")
    limit = max_samples(max_seconds)
    try:
        pcm = _decode_m4a(data, limit) if fmt == "m4a" else _decode_miniaudio(data, fmt, limit)
    except _TooLong:
        raise InvalidMedia(f"the audio is longer than the limit of {max_seconds} s") from None
    if not pcm:
        raise InvalidMedia(f"the .{fmt} file holds no audio")
    return Audio(pcm=pcm)


def describe(data: bytes) -> str:
    """What ``data`` looks like, in words, for refusal messages."""
    actual = sniff(data)
    if actual is not None:
        return _NAMES[actual]
    for magic, name in _OTHER_MAGIC:
        if data.startswith(magic):
            return name
    if not data:
        return "nothing (it is empty)"
    if _looks_like_text(data[:512]):
        return "text"
    return "unknown binary data"


def _is_mp3(data: bytes) -> bool:
    if data[:3] == b"ID3" and len(data) >= 10:
        # ID3v2 header: "ID3", version (2..4), revision, flags, 4-byte syncsafe size.
        version, revision, flags = data[3], data[4], data[5]
        size_bytes = data[6:10]
        if version not in (2, 3, 4) or revision == 0xFF or any(b & 0x80 for b in size_bytes):
            return False
        size = 0
        for b in size_bytes:
            size = size << 7 | b
        end = 10 + size + (10 if flags & 0x10 else 0)  # footer flag (v2.4)
        # The first MPEG frame follows the tag, maybe after zero padding. A tag that runs
        # past the end is a truncated MP3: recognised here, refused as "no audio" later.
        while end < len(data) and data[end] == 0:
            end += 1
        return end >= len(data) or _is_layer3_header(data[end : end + 4])
    return _is_layer3_header(data[:4])


def _is_layer3_header(header: bytes) -> bool:
    """A valid MPEG-1/2/2.5 Layer III frame header (frame sync = 11 set bits)."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return False
    version = header[1] >> 3 & 0b11  # 0b01 is reserved
    layer = header[1] >> 1 & 0b11  # 0b01 is Layer III
    bitrate = header[2] >> 4  # 0b1111 is invalid (0 = free format, valid)
    sample_rate = header[2] >> 2 & 0b11  # 0b11 is reserved
    emphasis = header[3] & 0b11  # 0b10 is reserved
    return (
        version != 0b01
        and layer == 0b01
        and bitrate != 0b1111
        and sample_rate != 0b11
        and (emphasis != 0b10)
    )


def _is_mp4_audio(data: bytes) -> bool:
    # ISO BMFF: the first box is `ftyp`: size (4), "ftyp", major brand (4), minor version (4),
    # then compatible brands (4 each) up to the box size.
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    size = int.from_bytes(data[:4], "big")
    if size < 16 or size % 4 != 0:
        return False
    brands = [data[8:12]]
    brands += [data[i : i + 4] for i in range(16, min(size, len(data)) - 3, 4)]
    return any(brand in _MP4_BRANDS for brand in brands)


def _looks_like_text(head: bytes) -> bool:
    # Incremental decoding tolerates a multi-byte character cut at the end of the sample.
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return bool(text) and all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)


def _decode_miniaudio(data: bytes, fmt: str, limit: int) -> bytes:
    """MP3 or WAV through miniaudio, converted to 8 kHz mono s16 as it streams.

    :func:`sniff` has already pinned the container, and miniaudio's other decoders (FLAC,
    Vorbis) need magic bytes neither an MP3 frame header nor RIFF/WAVE can carry.
    """
    s16 = miniaudio.SampleFormat.SIGNED16
    try:
        stream = miniaudio.stream_memory(
            data, output_format=s16, nchannels=1, sample_rate=RATE, frames_to_read=_CHUNK_FRAMES
        )
    except miniaudio.MiniaudioError as exc:
        raise InvalidMedia(f"the .{fmt} file does not decode as {_NAMES[fmt]}") from exc
    out = bytearray()
    try:
        for chunk in stream:
            if len(out) // SAMPLE_BYTES + len(chunk) > limit:
                raise _TooLong
            out += native_to_le(chunk.tobytes())  # the array holds native-order samples
    except miniaudio.MiniaudioError as exc:
        raise InvalidMedia(f"the .{fmt} file does not decode as {_NAMES[fmt]}") from exc
    finally:
        stream.close()  # frees the decoder when stopped early
    return bytes(out)


def _decode_m4a(data: bytes, limit: int) -> bytes:
    """AAC (or any audio FFmpeg knows) in an MP4/M4A container, resampled to 8 kHz mono s16."""
    try:
        with av.open(io.BytesIO(data), mode="r", format="mp4") as container:
            if not container.streams.audio:
                raise InvalidMedia("the .m4a file has no audio track")
            stream = container.streams.audio[0]
            out = bytearray()
            for pcm in _resampled(container.decode(stream)):
                if (len(out) + len(pcm)) // SAMPLE_BYTES > limit:
                    raise _TooLong
                out += pcm
            declared = _declared_samples(stream.duration, stream.time_base)
    except (av.error.FFmpegError, ValueError, EOFError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or "damaged or not AAC"
        raise InvalidMedia(f"the .m4a file does not decode ({reason})") from exc
    # AAC decodes in whole 1024-sample frames, so the last one carries encoder padding past
    # the track's stated duration; drop that tail (a small one only: a container that
    # understates its length by more than padding is not trusted to cut audio).
    if declared is not None and 0 < len(out) // SAMPLE_BYTES - declared <= RATE // 10:
        del out[declared * SAMPLE_BYTES :]
    return bytes(out)


def _resampled(frames: Iterator[av.AudioFrame]) -> Iterator[bytes]:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    for frame in frames:
        for out in resampler.resample(frame):
            yield _frame_bytes(out)
    for out in resampler.resample(None):  # flush what the resampler still holds
        yield _frame_bytes(out)


def _frame_bytes(frame: av.AudioFrame) -> bytes:
    # Packed native-order s16 mono in plane 0; the plane may be padded past the last sample.
    return native_to_le(bytes(frame.planes[0])[: frame.samples * SAMPLE_BYTES])


def _declared_samples(duration: int | None, time_base: Fraction | None) -> int | None:
    if duration is None or duration <= 0 or time_base is None:
        return None
    return round(duration * time_base * RATE)
