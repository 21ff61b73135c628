"""Uploaded audio (spec §1.13): sniffing, decoding to 8 kHz call audio, and refusals."""

from __future__ import annotations

import random
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simgate.domain.calls import Audio
from simgate.errors import InvalidMedia
from simgate.media.decode import FORMATS, decode, describe, sniff
from tests.media.samples import (
    TONE_HZ,
    m4a_file,
    mp3_file,
    peak,
    sign_changes,
    wav_file,
)
from tests.support.examples import examples

MAKERS: dict[str, Callable[[float], bytes]] = {
    "wav": lambda s: wav_file(s, 44100, 2),
    "mp3": mp3_file,
    "m4a": m4a_file,
}

ONE_SECOND = {fmt: make(1.0) for fmt, make in MAKERS.items()}


def assert_one_second_tone(audio: Audio) -> None:
    assert audio.RATE == 8000
    assert abs(audio.duration_ms - 1000) <= 50
    # It is the tone, not silence or noise: 440 Hz crosses zero 880 times a second.
    assert abs(sign_changes(audio.pcm) - 2 * TONE_HZ) <= 2 * TONE_HZ * 0.05
    assert peak(audio.pcm) > 6000


@pytest.mark.parametrize("fmt", FORMATS)
def test_sniff_names_each_container(fmt: str) -> None:
    assert sniff(ONE_SECOND[fmt]) == fmt


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is text", b"RIFF\x00\x00\x00\x00AVI LIST", b"\xff\xfb", b"ID3", b"fLaC"],
)
def test_sniff_refuses_what_is_not_one_of_the_three(data: bytes) -> None:
    assert sniff(data) is None


def test_sniff_mp3_frame_header_without_a_tag() -> None:
    # MPEG-1 Layer III, 128 kb/s, 44.1 kHz: the header most bare MP3 files start with.
    assert sniff(b"\xff\xfb\x90\x64" + bytes(400)) == "mp3"
    # Layer II (0xFD) and a reserved sample rate (0x0C) are not MP3.
    assert sniff(b"\xff\xfd\x90\x64" + bytes(400)) is None
    assert sniff(b"\xff\xfb\x9c\x64" + bytes(400)) is None


def test_sniff_id3_tag_must_lead_to_mp3_frames() -> None:
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x05" + b"TIT2\x00"
    assert sniff(tag + b"\xff\xfb\x90\x64" + bytes(100)) == "mp3"
    assert sniff(tag + bytes(20) + b"\xff\xfb\x90\x64" + bytes(100)) == "mp3"  # zero padding
    assert sniff(tag + b"fLaC" + bytes(100)) is None  # a tagged FLAC file is not MP3


@pytest.mark.parametrize("brand", [b"M4A ", b"mp42", b"isom"])
def test_sniff_m4a_by_major_brand(brand: bytes) -> None:
    assert sniff(b"\x00\x00\x00\x10ftyp" + brand + bytes(4) + bytes(64)) == "m4a"


def test_sniff_m4a_by_compatible_brand_only_within_the_box() -> None:
    box = b"\x00\x00\x00\x18ftypXXXX\x00\x00\x00\x00" + b"abcdM4A "
    assert sniff(box + bytes(16)) == "m4a"
    short = b"\x00\x00\x00\x14ftypXXXX\x00\x00\x00\x00abcd"
    assert sniff(short + b"M4A " + bytes(16)) is None  # after the box: not a brand


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_decodes_to_8khz_call_audio(fmt: str) -> None:
    assert_one_second_tone(decode(ONE_SECOND[fmt], declared=fmt, max_seconds=5))


@pytest.mark.parametrize(
    ("rate", "channels", "width"),
    [(8000, 1, 2), (16000, 1, 2), (22050, 2, 2), (48000, 1, 2), (11025, 1, 1)],
)
def test_wav_shapes_decode(rate: int, channels: int, width: int) -> None:
    data = wav_file(1.0, rate, channels, width)
    assert_one_second_tone(decode(data, declared="wav", max_seconds=5))


@pytest.mark.parametrize(("fmt", "rate", "channels"), [("mp3", 8000, 1), ("m4a", 16000, 1)])
def test_mono_low_rate_encodings_decode(fmt: str, rate: int, channels: int) -> None:
    data = mp3_file(1.0, rate, channels) if fmt == "mp3" else m4a_file(1.0, rate, channels)
    assert_one_second_tone(decode(data, declared=fmt, max_seconds=5))


def test_declared_suffix_is_case_insensitive() -> None:
    assert_one_second_tone(decode(ONE_SECOND["wav"], declared="WAV", max_seconds=5))


def test_text_named_mp3_is_refused() -> None:
    with pytest.raises(InvalidMedia, match=r"not MP3 audio \(it looks like text\)"):
        decode(b"Dear customer, your code is 1234.\n", declared="mp3", max_seconds=5)


@pytest.mark.parametrize(
    ("actual", "declared", "looks_like"),
    [("wav", "mp3", "WAV audio"), ("mp3", "m4a", "MP3 audio"), ("m4a", "wav", "M4A")],
)
def test_one_format_named_as_another_is_refused(
    actual: str, declared: str, looks_like: str
) -> None:
    with pytest.raises(InvalidMedia, match=f"looks like {looks_like}"):
        decode(ONE_SECOND[actual], declared=declared, max_seconds=5)


@pytest.mark.parametrize(
    ("data", "looks_like"),
    [
        (b"OggS\x00\x02" + bytes(50), "Ogg audio"),
        (b"%PDF-1.7\n", "a PDF document"),
        # Fixed bytes (a seeded generator): test ids must be the same in every run and worker.
        (
            random.Random(64).randbytes(64).replace(b"\x00", b"\x01") + b"\x00\xff",
            "unknown binary data",
        ),
    ],
    ids=["ogg", "pdf", "binary"],
)
def test_refusal_says_what_the_file_looks_like(data: bytes, looks_like: str) -> None:
    assert describe(data) == looks_like
    with pytest.raises(InvalidMedia, match="looks like"):
        decode(data, declared="wav", max_seconds=5)


def test_other_suffixes_are_refused() -> None:
    with pytest.raises(InvalidMedia, match=r"\.mp3, \.m4a or \.wav, not \.ogg"):
        decode(b"OggS", declared="ogg", max_seconds=5)


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_file_is_refused(fmt: str) -> None:
    with pytest.raises(InvalidMedia, match="empty"):
        decode(b"", declared=fmt, max_seconds=5)


@pytest.mark.parametrize(
    ("fmt", "data", "reason"),
    [
        ("wav", b"RIFF\xff\x00\x00\x00WAVEjunk" + bytes(100), "does not decode"),
        ("wav", wav_file(1.0)[:44], "no audio"),  # the header alone
        (
            "mp3",
            b"ID3\x04\x00\x00\x00\x00\x00\x00",
            "does not decode",
        ),  # an empty tag, nothing else
        ("mp3", b"\xff\xfb\x90\x64", "does not decode"),  # one frame header, no frame
        ("m4a", b"\x00\x00\x00\x10ftypM4A \x00\x00\x00\x00" + b"\x07" * 200, "does not decode"),
        ("m4a", ONE_SECOND["m4a"][:300], "does not decode"),  # cut before the moov box
    ],
)
def test_garbage_after_valid_magic_is_refused(fmt: str, data: bytes, reason: str) -> None:
    assert sniff(data) == fmt
    with pytest.raises(InvalidMedia, match=reason):
        decode(data, declared=fmt, max_seconds=5)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_files_decode_shorter_or_are_refused(fmt: str, keep: float) -> None:
    data = ONE_SECOND[fmt]
    try:
        audio = decode(data[: int(len(data) * keep)], declared=fmt, max_seconds=5)
    except InvalidMedia:
        return
    assert 0 < audio.duration_ms <= 1050


@pytest.mark.parametrize("fmt", FORMATS)
def test_audio_longer_than_the_limit_is_refused(fmt: str) -> None:
    data = MAKERS[fmt](3.0)
    with pytest.raises(InvalidMedia, match="longer than the limit of 2 s"):
        decode(data, declared=fmt, max_seconds=2)
    assert abs(decode(data, declared=fmt, max_seconds=4).duration_ms - 3000) <= 50


def test_audio_exactly_at_the_limit_is_accepted() -> None:
    audio = decode(wav_file(2.0, 8000), declared="wav", max_seconds=2)
    assert audio.duration_ms == 2000


@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_a_long_compressed_file_stops_decoding_at_the_limit(fmt: str) -> None:
    # Two minutes in a few kilobytes: decoded in full it would be ~1.9 MB of call audio;
    # refused after about one second of it.
    data = mp3_file(120.0, 8000, 1) if fmt == "mp3" else m4a_file(120.0, 8000, 1)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidMedia, match="longer than the limit of 1 s"):
            decode(data, declared=fmt, max_seconds=1)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < 400_000


ARBITRARY = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@ARBITRARY
@given(data=st.binary(max_size=4096), declared=st.sampled_from(FORMATS))
def test_arbitrary_bytes_decode_or_raise_invalid_media(data: bytes, declared: str) -> None:
    try:
        audio = decode(data, declared=declared, max_seconds=5)
    except InvalidMedia:
        return
    assert len(audio.pcm) % 2 == 0


MAGIC = {
    "wav": b"RIFF\x24\x08\x00\x00WAVE",
    "mp3": b"\xff\xfb\x90\x64",
    "m4a": b"\x00\x00\x00\x14ftypM4A \x00\x00\x00\x00isom",
}


@ARBITRARY
@given(fmt=st.sampled_from(FORMATS), tail=st.binary(max_size=4096))
def test_arbitrary_bytes_after_magic_decode_or_raise_invalid_media(fmt: str, tail: bytes) -> None:
    try:
        audio = decode(MAGIC[fmt] + tail, declared=fmt, max_seconds=5)
    except InvalidMedia:
        return
    assert audio.duration_ms <= 5000


@ARBITRARY
@given(
    fmt=st.sampled_from(FORMATS),
    at=st.integers(min_value=0, max_value=10_000),
    junk=st.binary(min_size=1, max_size=64),
)
def test_damaged_real_files_decode_or_raise_invalid_media(fmt: str, at: int, junk: bytes) -> None:
    data = ONE_SECOND[fmt]
    at %= len(data)
    damaged = data[:at] + junk + data[at + len(junk) :]
    try:
        audio = decode(damaged, declared=fmt, max_seconds=5)
    except InvalidMedia:
        return
    assert audio.duration_ms <= 5000
