"""Small real audio files made at test time: a sine tone as WAV (stdlib), MP3 and M4A (PyAV's
libmp3lame and AAC encoders), and measurements of decoded call audio."""

from __future__ import annotations

import array
import io
import itertools
import math
import sys
import wave

import av

TONE_HZ = 440


def tone(seconds: float, rate: int, channels: int = 1, hz: int = TONE_HZ) -> bytes:
    """A sine tone as little-endian s16 PCM, channels interleaved."""
    frames = round(seconds * rate)
    samples = array.array(
        "h",
        (
            round(12000 * math.sin(2 * math.pi * hz * i / rate))
            for i in range(frames)
            for _ in range(channels)
        ),
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def wav_file(seconds: float, rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    pcm = tone(seconds, rate, channels)
    if width == 1:  # 8-bit WAV is unsigned
        pcm = bytes(
            (int.from_bytes(pcm[i : i + 2], "little", signed=True) >> 8) + 128
            for i in range(0, len(pcm), 2)
        )
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


def encoded(container: str, codec: str, seconds: float, rate: int, channels: int) -> bytes:
    """A tone encoded with PyAV: ("mp3", "libmp3lame") or ("ipod", "aac") for .m4a."""
    layout = "stereo" if channels == 2 else "mono"
    pcm = tone(seconds, rate, channels)
    out = io.BytesIO()
    with av.open(out, "w", format=container) as box:
        stream = box.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        total = len(pcm) // (2 * channels)
        for start in range(0, total, 1024):
            count = min(1024, total - start)
            frame = av.AudioFrame(format="s16", layout=layout, samples=count)
            frame.planes[0].update(pcm[start * 2 * channels : (start + count) * 2 * channels])
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return out.getvalue()


def mp3_file(seconds: float, rate: int = 44100, channels: int = 2) -> bytes:
    return encoded("mp3", "libmp3lame", seconds, rate, channels)


def m4a_file(seconds: float, rate: int = 44100, channels: int = 2) -> bytes:
    return encoded("ipod", "aac", seconds, rate, channels)


def samples_of(pcm: bytes) -> array.array[int]:
    """Little-endian s16 bytes as numbers."""
    out = array.array("h", pcm)
    if sys.byteorder == "big":
        out.byteswap()
    return out


def sign_changes(pcm: bytes) -> int:
    """Zero crossings: a tone of f Hz crosses 2f times a second."""
    values = samples_of(pcm)
    return sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))


def peak(pcm: bytes) -> int:
    return max((abs(v) for v in samples_of(pcm)), default=0)
