"""+CMS ERROR classes (TS 27.005 §3.2.5): permanent refuses the message, else the port's."""

from __future__ import annotations

import pytest

from simgate.lines.modem.errors import is_permanent


@pytest.mark.parametrize("code", [1, 10, 21, 30, 0x80, 0x90, 0xBF, 0xC3, 0xC4, 304])
def test_permanent(code: int) -> None:
    assert is_permanent(code)


@pytest.mark.parametrize("code", [None, 38, 41, 42, 47, 0xC0, 0xC2, 0xD4, 300, 314, 331, 332, 500])
def test_retryable(code: int | None) -> None:
    assert not is_permanent(code)
