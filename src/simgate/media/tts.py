"""Text to speech for itnio ``sendCode`` (spec §1.11) with Debian's espeak-ng.

espeak-ng runs as a child process: the text goes in on stdin (never on the command line, and
never through a shell), a WAV comes out on stdout (22050 Hz mono s16) and is resampled to call
audio. Renders are deterministic, so recent ones are cached (the same campaign text is spoken
to many callees).

Languages are the vendor's codes (spec §1.11 lists VN, EN, JP, ARB, DE, IN (Hindi), IT, KR,
RU, ES, PT, IDN, BD (Bengali), TH) plus a few common extras. Each maps to an espeak-ng voice
checked against ``espeak-ng --voices`` (espeak-ng 1.51, Debian 12). Codes espeak-ng cannot
speak acceptably are refused with :class:`UnsupportedLanguage` rather than read out as noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import re
import wave
from collections import OrderedDict
from dataclasses import dataclass

from simgate.clock import Clock, SystemClock
from simgate.domain.calls import Audio
from simgate.errors import InvalidInput, ServiceError
from simgate.media.pcm import to_call_rate


class UnsupportedLanguage(InvalidInput):
    """A language code this gateway cannot speak (itnio answers -22: a bad parameter)."""


class TtsError(ServiceError):
    """Speech could not be produced; the request itself was fine."""


class TtsUnavailable(TtsError):
    """The text-to-speech program is missing or cannot be started."""


class TtsFailed(TtsError):
    """The text-to-speech program ran but failed, or took longer than allowed."""


# Vendor code -> espeak-ng voice (the "Language" column of `espeak-ng --voices`).
VOICES: dict[str, str] = {
    "VN": "vi",  # Vietnamese (Northern)
    "EN": "en-us",
    "JP": "ja",  # kana and digits only: see _UNSPEAKABLE
    "ARB": "ar",
    "DE": "de",
    "IN": "hi",  # the vendor's IN is Hindi, not the old ISO code for Indonesian
    "IT": "it",
    "KR": "ko",
    "RU": "ru",
    "ES": "es",
    "PT": "pt",  # Portugal; Brazilian callers may prefer pt-br, the vendor has one code
    "IDN": "id",
    "BD": "bn",  # Bengali
    # Extras outside the vendor's list, common and well covered by espeak-ng.
    "FR": "fr-fr",
    "TR": "tr",
    "NL": "nl",
    "PL": "pl",
}

# Codes espeak-ng 1.51 has a voice for but cannot speak well enough for a phone call.
REFUSED: dict[str, str] = {
    # No Thai word segmentation: unspaced Thai text comes out as run-together noise.
    "TH": "espeak-ng cannot split Thai text into words",
    # Debian's Mandarin dictionary is the small one: most characters are read as pinyin with
    # English tone numbers ("ni three").
    "ZH": "espeak-ng reads most Chinese characters as pinyin letters",
    "CN": "espeak-ng reads most Chinese characters as pinyin letters",
}

# Characters a supported voice cannot read: espeak-ng's Japanese voice says "Japanese
# letter" (in English) for every kanji, so Japanese text must be kana (and digits).
_UNSPEAKABLE: dict[str, tuple[re.Pattern[str], str]] = {
    "JP": (
        re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"),
        "Japanese text can only be spoken in kana: espeak-ng cannot read kanji",
    ),
}

# speakingRate 1.0 = espeak-ng's default 175 words per minute; spec range 0.25-4.
_BASE_WPM = 175
# espeak-ng's slowest is 80 wpm (rates under ~0.46 all sound alike); 4.0 = 700 wpm needs its
# libsonic speed-up, which Debian's build links (a build without it stops at 450 by itself).
_MIN_WPM, _MAX_WPM = 80, 700
_MIN_RATE, _MAX_RATE = 0.25, 4.0
# ssmlGender (spec §1.11): 1 male, 2 female -> espeak-ng voice variants.
_VARIANTS = {1: "m3", 2: "f3"}

_CACHE_ENTRIES = 64
_CACHE_BYTES = 32 * 1024 * 1024  # about 17 minutes of call audio in all


@dataclass(frozen=True, slots=True)
class _Render:
    voice: str
    text: str
    wpm: int
    variant: str


def supported_languages() -> list[str]:
    """The vendor codes :class:`Tts` speaks, sorted."""
    return sorted(VOICES)


class Tts:
    """espeak-ng behind the ``sendCode`` parameters (language, text, speakingRate, ssmlGender)."""

    def __init__(
        self,
        *,
        program: str = "espeak-ng",
        timeout_s: float = 20.0,
        clock: Clock | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        self._program = program
        self._timeout_s = timeout_s
        self._clock: Clock = clock or SystemClock()
        self._cache: OrderedDict[_Render, Audio] = OrderedDict()
        self._cache_bytes = 0

    def check(self, language: str, text: str | None = None) -> str:
        """The espeak-ng voice for ``language`` (case-insensitive); with ``text``, also check
        the text can be spoken. Raises :class:`UnsupportedLanguage` or :class:`InvalidInput`.
        """
        code = language.strip().upper()
        voice = VOICES.get(code)
        if voice is None:
            why = REFUSED.get(code)
            supported = ", ".join(supported_languages())
            if why is not None:
                raise UnsupportedLanguage(
                    f"language {code} is not supported ({why}); supported: {supported}"
                )
            raise UnsupportedLanguage(f"unknown language {language!r}; supported: {supported}")
        if text is not None:
            if not text.strip():
                raise InvalidInput("the text to speak is empty")
            unspeakable = _UNSPEAKABLE.get(code)
            if unspeakable is not None and unspeakable[0].search(text):
                raise InvalidInput(unspeakable[1])
        return voice

    async def render(
        self, *, language: str, text: str, speaking_rate: float = 1.0, gender: int = 2
    ) -> Audio:
        """Speak ``text`` as call audio (8 kHz mono s16).

        Raises :class:`UnsupportedLanguage` / :class:`InvalidInput` for bad parameters,
        :class:`TtsUnavailable` when espeak-ng is missing, :class:`TtsFailed` when it fails or
        runs past the timeout (it is killed then).
        """
        voice = self.check(language, text)
        if not (_MIN_RATE <= speaking_rate <= _MAX_RATE):  # also refuses NaN
            raise InvalidInput(
                f"speakingRate must be between {_MIN_RATE} and {_MAX_RATE}, not {speaking_rate}"
            )
        variant = _VARIANTS.get(gender)
        if variant is None:
            raise InvalidInput(f"ssmlGender must be 1 (male) or 2 (female), not {gender}")
        key = _Render(voice, text, _words_per_minute(speaking_rate), variant)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        audio = _parse_wav(await self._run(key))
        if not audio.pcm:
            raise TtsFailed(f"{self._program} produced no audio")
        self._remember(key, audio)
        return audio

    async def _run(self, job: _Render) -> bytes:
        args = [
            "-v",
            f"{job.voice}+{job.variant}",
            "-s",
            str(job.wpm),
            "-b",
            "1",  # the input is UTF-8
            "--stdin",
            "--stdout",
        ]
        try:
            proc = await asyncio.create_subprocess_exec(
                self._program,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
            raise TtsUnavailable(
                f"text to speech is unavailable: cannot run {self._program!r} ({exc.strerror}); "
                "install espeak-ng (apt-get install espeak-ng)"
            ) from exc
        talk = asyncio.ensure_future(proc.communicate(speakable(job.text).encode("utf-8")))
        try:
            timer = asyncio.ensure_future(self._clock.sleep(self._timeout_s))
            try:
                await asyncio.wait((talk, timer), return_when=asyncio.FIRST_COMPLETED)
            finally:
                timer.cancel()
            if not talk.done():
                raise TtsFailed(
                    f"{self._program} took longer than {self._timeout_s:g} s to speak the text"
                )
            stdout, stderr = talk.result()
        finally:
            # On timeout, on error, or when the caller is cancelled: never leave it running.
            if not talk.done():
                talk.cancel()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip().splitlines()
            raise TtsFailed(
                f"{self._program} failed (exit {proc.returncode})"
                + (f": {detail[0]}" if detail else "")
            )
        return stdout

    def _remember(self, key: _Render, audio: Audio) -> None:
        if len(audio.pcm) > _CACHE_BYTES:
            return
        self._cache[key] = audio
        self._cache_bytes += len(audio.pcm)
        while len(self._cache) > _CACHE_ENTRIES or self._cache_bytes > _CACHE_BYTES:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= len(old.pcm)


def speakable(text: str) -> str:
    """The text as espeak-ng should read it: ``[[...]]`` would be taken as phoneme codes
    (espeak-ng's own input syntax), so brackets are kept apart and read as written."""
    while "[[" in text:
        text = text.replace("[[", "[ [")
    while "]]" in text:
        text = text.replace("]]", "] ]")
    return text


def _words_per_minute(speaking_rate: float) -> int:
    return max(_MIN_WPM, min(_MAX_WPM, math.floor(_BASE_WPM * speaking_rate + 0.5)))


def _parse_wav(data: bytes) -> Audio:
    """espeak-ng's --stdout WAV (mono s16) as call audio.

    Written to a pipe, the header's sizes are placeholders (0x7ffff000), so the data chunk is
    read to the end of what arrived rather than to its stated size.
    """
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise TtsFailed(f"text to speech gave audio that is not a WAV ({exc})") from exc
    if width != 2:
        raise TtsFailed(f"text to speech gave {8 * width}-bit audio, expected 16-bit")
    return Audio(pcm=to_call_rate(pcm, rate=rate, channels=channels))
