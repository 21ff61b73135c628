"""PCM helpers shared by the decoder and text to speech.

Call audio is :class:`simgate.domain.calls.Audio`: signed 16-bit little-endian mono at
8000 Hz (G.711's rate), so one second is 8000 samples, 16000 bytes.
"""

from __future__ import annotations

import array
import sys

import miniaudio

from simgate.domain.calls import Audio

RATE = Audio.RATE
SAMPLE_BYTES = 2  # signed 16-bit


def max_samples(max_seconds: int) -> int:
    """How many call-rate samples ``max_seconds`` of audio may hold."""
    return max_seconds * RATE


def native_to_le(pcm: bytes) -> bytes:
    """Native-order s16 samples (what decoders hand out) as little-endian bytes."""
    if sys.byteorder == "little":
        return pcm
    samples = array.array("h", pcm[: len(pcm) - len(pcm) % SAMPLE_BYTES])
    samples.byteswap()
    return samples.tobytes()


def to_call_rate(pcm: bytes, *, rate: int, channels: int = 1) -> bytes:
    """Convert signed 16-bit little-endian PCM (interleaved channels) to 8 kHz mono.

    miniaudio's converter mixes the channels down and resamples with a low-pass filter, so
    a 22.05 kHz or 44.1 kHz source does not alias into the telephone band.
    """
    if rate <= 0 or channels <= 0:
        raise ValueError(f"bad PCM shape: {rate} Hz, {channels} channel(s)")
    frame_bytes = SAMPLE_BYTES * channels
    whole = len(pcm) - len(pcm) % frame_bytes
    if whole == 0:
        return b""
    if rate == RATE and channels == 1:
        return bytes(pcm[:whole])
    s16 = miniaudio.SampleFormat.SIGNED16
    # miniaudio works in native order; the byte swap is its own inverse (no-op on x86/ARM).
    out = miniaudio.convert_frames(s16, channels, rate, native_to_le(pcm[:whole]), s16, 1, RATE)
    return native_to_le(bytes(out))
