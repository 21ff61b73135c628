"""Text to speech for sendCode (spec §1.11): the real espeak-ng, and named fake programs for
what espeak-ng cannot be made to do on demand (hang, fail, be missing)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
import shutil
import stat
import subprocess
import wave
from pathlib import Path

import pytest

from simgate.errors import InvalidInput
from simgate.media.tts import (
    REFUSED,
    VOICES,
    Tts,
    TtsFailed,
    TtsUnavailable,
    UnsupportedLanguage,
    speakable,
    supported_languages,
)
from simgate.testing.clock import FakeClock
from tests.conftest import need_peer
from tests.media.samples import peak, wav_file

# One sentence per supported code, in its own script (an OTP-style message).
SENTENCES = {
    "VN": "Xin chào, mã của bạn là 1234",
    "EN": "Your code is 1234",
    "JP": "こんにちは、コードは 1234 です",
    "ARB": "رمز التحقق الخاص بك هو 1234",
    "DE": "Ihr Code lautet 1234",
    "IN": "आपका कोड 1234 है",
    "IT": "Il tuo codice è 1234",
    "KR": "귀하의 코드는 1234입니다",
    "RU": "Ваш код 1234",
    "ES": "Su código es 1234",
    "PT": "O seu código é 1234",
    "IDN": "Kode Anda adalah 1234",
    "BD": "আপনার কোড 1234",
    "FR": "Votre code est 1234",
    "TR": "Kodunuz 1234",
    "NL": "Uw code is 1234",
    "PL": "Twój kod to 1234",
}


@pytest.fixture
def espeak() -> str:
    need_peer("espeak-ng", shutil.which("espeak-ng") is not None)
    return "espeak-ng"


def write_program(path: Path, script: str) -> str:
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


class FakeEspeak:
    """A stand-in program that records its arguments, stdin and runs, and prints a WAV."""

    def __init__(self, folder: Path, wav: bytes) -> None:
        self.folder = folder
        (folder / "out.wav").write_bytes(wav)
        self.program = write_program(
            folder / "fake-espeak",
            "#!/bin/sh\n"
            f'cd "{folder}"\n'
            'printf "%s\\n" "$@" > args\n'
            "cat > stdin\n"
            "echo run >> runs\n"
            "cat out.wav\n",
        )

    @property
    def args(self) -> list[str]:
        return (self.folder / "args").read_text().splitlines()

    @property
    def stdin(self) -> str:
        return (self.folder / "stdin").read_text()

    @property
    def runs(self) -> int:
        runs = self.folder / "runs"
        return len(runs.read_text().splitlines()) if runs.exists() else 0


@pytest.fixture
def fake(tmp_path: Path) -> FakeEspeak:
    return FakeEspeak(tmp_path, wav_file(0.5, 22050))


def test_every_vendor_code_is_mapped_or_refused() -> None:
    vendor = {"VN", "EN", "JP", "ARB", "DE", "IN", "IT", "KR", "RU", "ES", "PT", "IDN", "BD", "TH"}
    assert vendor <= set(VOICES) | set(REFUSED)
    assert not set(VOICES) & set(REFUSED)
    assert set(SENTENCES) == set(VOICES)


def test_every_mapped_voice_exists_in_espeak(espeak: str) -> None:
    listing = subprocess.run(
        [espeak, "--voices"], capture_output=True, text=True, check=True
    ).stdout
    installed = {line.split()[1] for line in listing.splitlines()[1:] if line.split()}
    assert set(VOICES.values()) <= installed


@pytest.mark.parametrize("code", sorted(VOICES))
async def test_every_supported_code_speaks(espeak: str, code: str) -> None:
    audio = await Tts(program=espeak).render(language=code, text=SENTENCES[code])
    assert audio.RATE == 8000
    assert audio.duration_ms > 500
    assert peak(audio.pcm) > 1000  # speech, not silence


async def test_resampling_keeps_the_length_espeak_produced(espeak: str) -> None:
    text = "Your verification code is 5 8 2 9 1"
    proc = await asyncio.create_subprocess_exec(
        espeak,
        *("-v", "en-us+f3", "--stdin", "--stdout"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    raw, _ = await proc.communicate(text.encode())
    assert proc.returncode == 0
    native = len(raw) - 44  # after the canonical header; the stated sizes are placeholders
    with wave.open(io.BytesIO(raw)) as w:
        native_ms = native // 2 * 1000 // w.getframerate()
    audio = await Tts(program=espeak).render(language="EN", text=text)
    assert abs(audio.duration_ms - native_ms) <= 5


async def test_codes_are_case_insensitive(espeak: str) -> None:
    tts = Tts(program=espeak)
    assert tts.check("vn") == tts.check("VN") == "vi"
    assert tts.check("Idn") == "id"
    audio = await tts.render(language="en", text="hello")
    assert audio.duration_ms > 0


async def test_faster_rate_gives_shorter_audio(espeak: str) -> None:
    tts = Tts(program=espeak)
    text = "Your verification code is 5 8 2 9 1"
    fast = await tts.render(language="EN", text=text, speaking_rate=2.0)
    slow = await tts.render(language="EN", text=text, speaking_rate=0.5)
    assert fast.duration_ms * 2 < slow.duration_ms


async def test_gender_changes_the_voice(espeak: str) -> None:
    tts = Tts(program=espeak)
    male = await tts.render(language="EN", text="Your code is 1234", gender=1)
    female = await tts.render(language="EN", text="Your code is 1234", gender=2)
    assert male.pcm != female.pcm


async def test_gender_and_rate_reach_espeak_as_voice_variant_and_speed(fake: FakeEspeak) -> None:
    tts = Tts(program=fake.program)
    await tts.render(language="de", text="Hallo", speaking_rate=2.0, gender=1)
    assert fake.args[fake.args.index("-v") + 1] == "de+m3"
    assert fake.args[fake.args.index("-s") + 1] == "350"
    await tts.render(language="de", text="Hallo", speaking_rate=0.25, gender=2)
    assert fake.args[fake.args.index("-v") + 1] == "de+f3"
    assert fake.args[fake.args.index("-s") + 1] == "80"  # espeak-ng's slowest


async def test_text_with_shell_metacharacters_is_spoken_not_run(
    espeak: str, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    text = (
        f"code 12; touch {marker} && touch {marker} | touch {marker}\n"
        f"$(touch {marker}) `touch {marker}` > {marker}\n-v --stdout 'quoted' \"double\""
    )
    audio = await Tts(program=espeak).render(language="EN", text=text)
    assert audio.duration_ms > 1000
    assert not marker.exists()


async def test_text_goes_on_stdin_never_in_arguments(fake: FakeEspeak) -> None:
    text = "first line; $(rm -rf /)\n-second line `x`"
    audio = await Tts(program=fake.program).render(language="EN", text=text)
    assert abs(audio.duration_ms - 500) <= 5  # the fake's 0.5 s WAV, resampled to 8 kHz
    assert fake.stdin == text
    assert not any("line" in arg for arg in fake.args)


@pytest.mark.parametrize("code", ["TH", "th", "ZH", "CN"])
def test_languages_espeak_cannot_speak_are_refused_with_the_list(code: str) -> None:
    with pytest.raises(UnsupportedLanguage) as caught:
        Tts().check(code)
    message = str(caught.value)
    assert code.upper() in message
    assert ", ".join(supported_languages()) in message


async def test_unknown_codes_are_refused_with_the_list(fake: FakeEspeak) -> None:
    with pytest.raises(UnsupportedLanguage, match=r"unknown language 'XX'.*supported: ARB, BD"):
        await Tts(program=fake.program).render(language="XX", text="hello")
    assert fake.runs == 0


def test_unsupported_language_is_invalid_input() -> None:
    assert issubclass(UnsupportedLanguage, InvalidInput)


async def test_japanese_kana_speaks_but_kanji_is_refused(espeak: str) -> None:
    tts = Tts(program=espeak)
    kana = await tts.render(language="JP", text="あなたの コードは 1234 です")
    assert kana.duration_ms > 500
    with pytest.raises(InvalidInput, match="kanji"):
        await tts.render(language="JP", text="認証コードは1234です")


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
async def test_empty_text_is_refused(fake: FakeEspeak, text: str) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        await Tts(program=fake.program).render(language="EN", text=text)
    assert fake.runs == 0


@pytest.mark.parametrize("rate", [0.1, 4.5, math.nan, -1.0])
async def test_speaking_rate_outside_the_spec_range_is_refused(
    fake: FakeEspeak, rate: float
) -> None:
    with pytest.raises(InvalidInput, match="speakingRate"):
        await Tts(program=fake.program).render(language="EN", text="hi", speaking_rate=rate)


@pytest.mark.parametrize("gender", [0, 3])
async def test_gender_other_than_1_or_2_is_refused(fake: FakeEspeak, gender: int) -> None:
    with pytest.raises(InvalidInput, match="ssmlGender"):
        await Tts(program=fake.program).render(language="EN", text="hi", gender=gender)


async def test_missing_program_is_tts_unavailable(tmp_path: Path) -> None:
    tts = Tts(program=str(tmp_path / "no-such-espeak"))
    with pytest.raises(TtsUnavailable, match="no-such-espeak"):
        await tts.render(language="EN", text="hello")


async def test_failing_program_is_tts_failed_with_its_message(tmp_path: Path) -> None:
    program = write_program(
        tmp_path / "broken", "#!/bin/sh\ncat > /dev/null\necho 'voice data missing' >&2\nexit 3\n"
    )
    with pytest.raises(TtsFailed, match=r"exit 3\): voice data missing"):
        await Tts(program=program).render(language="EN", text="hello")


async def test_output_that_is_not_a_wav_is_tts_failed(tmp_path: Path) -> None:
    program = write_program(tmp_path / "chatty", "#!/bin/sh\ncat > /dev/null\necho hello\n")
    with pytest.raises(TtsFailed, match="not a WAV"):
        await Tts(program=program).render(language="EN", text="hello")


async def test_a_hung_program_is_killed_at_the_timeout(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    program = write_program(
        tmp_path / "hang",
        f'#!/bin/sh\necho $$ > "{pid_file}.tmp"\nmv "{pid_file}.tmp" '
        f'"{pid_file}"\nexec sleep 600\n',
    )
    clock = FakeClock()
    render = asyncio.ensure_future(
        Tts(program=program, timeout_s=20.0, clock=clock).render(language="EN", text="hello")
    )
    # Wait (without sleeping) until the program runs and the timeout is armed.
    for _ in range(1_000_000):
        if pid_file.exists() and clock.sleepers == 1:
            break
        await asyncio.sleep(0)
    assert not render.done()
    await clock.advance(19.0)
    assert not render.done()
    await clock.advance(1.0)
    with pytest.raises(TtsFailed, match="longer than 20 s"):
        await render
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_cancelling_a_render_kills_the_program(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    program = write_program(
        tmp_path / "hang",
        f'#!/bin/sh\necho $$ > "{pid_file}.tmp"\nmv "{pid_file}.tmp" '
        f'"{pid_file}"\nexec sleep 600\n',
    )
    clock = FakeClock()
    render = asyncio.ensure_future(
        Tts(program=program, clock=clock).render(language="EN", text="hello")
    )
    for _ in range(1_000_000):
        if pid_file.exists() and clock.sleepers == 1:
            break
        await asyncio.sleep(0)
    render.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await render
    assert render.cancelled()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


async def test_repeated_renders_come_from_the_cache(fake: FakeEspeak) -> None:
    tts = Tts(program=fake.program)
    first = await tts.render(language="EN", text="campaign text")
    again = await tts.render(language="en", text="campaign text")
    assert again is first
    assert fake.runs == 1
    await tts.render(language="EN", text="campaign text", gender=1)
    await tts.render(language="EN", text="other text")
    assert fake.runs == 3


async def test_the_cache_forgets_the_least_recently_used(fake: FakeEspeak) -> None:
    tts = Tts(program=fake.program)
    await tts.render(language="EN", text="text 0")
    for i in range(1, 64):
        await tts.render(language="EN", text=f"text {i}")
    await tts.render(language="EN", text="text 0")  # still cached: now the most recent
    assert fake.runs == 64
    await tts.render(language="EN", text="text 64")  # evicts "text 1"
    await tts.render(language="EN", text="text 0")
    assert fake.runs == 65
    await tts.render(language="EN", text="text 1")
    assert fake.runs == 66


def test_phoneme_brackets_are_read_as_written() -> None:
    """espeak-ng reads ``[[...]]`` as phoneme codes; a message must not be able to do that."""
    assert speakable("code [[h@'loU]] 1234") == "code [ [h@'loU] ] 1234"
    assert speakable("[[[x]]]") == "[ [ [x] ] ]"
    assert speakable("[[[[") == "[ [ [ ["
    assert speakable("plain text") == "plain text"
