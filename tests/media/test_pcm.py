"""PCM helpers: conversion to 8 kHz mono call audio."""

from __future__ import annotations

import pytest

from simgate.media.pcm import max_samples, to_call_rate
from tests.media.samples import TONE_HZ, sign_changes, tone


def test_call_rate_mono_passes_through_unchanged() -> None:
    pcm = tone(0.25, 8000)
    assert to_call_rate(pcm, rate=8000) == pcm


@pytest.mark.parametrize(("rate", "channels"), [(22050, 1), (44100, 2), (16000, 1), (11025, 2)])
def test_other_shapes_become_one_second_of_8khz_mono(rate: int, channels: int) -> None:
    out = to_call_rate(tone(1.0, rate, channels), rate=rate, channels=channels)
    assert abs(len(out) // 2 - 8000) <= 8
    assert abs(sign_changes(out) - 2 * TONE_HZ) <= 2 * TONE_HZ * 0.05


def test_a_partial_frame_at_the_end_is_dropped() -> None:
    assert to_call_rate(b"\x01\x00\x02\x00\x03", rate=8000) == b"\x01\x00\x02\x00"
    assert to_call_rate(b"\x01\x00\x02", rate=22050, channels=2) == b""


def test_bad_shapes_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="bad PCM shape"):
        to_call_rate(b"\x00\x00", rate=0)


def test_max_samples_is_seconds_at_8khz() -> None:
    assert max_samples(600) == 4_800_000
