"""The dialect registration object: typed sections validated at start (api/dialect.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from simgate.api.dialects import dinstar, itnio, openvox
from simgate.api.dialects.dinstar.settings import DinstarSettings
from simgate.api.dialects.itnio.settings import ItnioSettings
from simgate.api.dialects.openvox.settings import OpenVoxSettings
from simgate.errors import ConfigError
from simgate.runtime import DIALECTS, Runtime
from simgate.settings import Settings, load_settings
from simgate.testing.clock import FakeClock
from tests.conftest import make_settings


def test_every_dialect_registers_under_its_section_name() -> None:
    assert [d.name for d in DIALECTS] == ["itnio", "openvox", "dinstar"]
    assert (itnio.DIALECT.settings, openvox.DIALECT.settings, dinstar.DIALECT.settings) == (
        ItnioSettings,
        OpenVoxSettings,
        DinstarSettings,
    )
    assert all(d.name in Settings.model_fields for d in DIALECTS)


def test_defaults_load() -> None:
    settings = load_settings()
    assert [type(d.load(settings)) for d in DIALECTS] == [
        ItnioSettings,
        OpenVoxSettings,
        DinstarSettings,
    ]


@pytest.mark.parametrize(
    ("section", "value", "line"),
    [
        ("itnio", {"page_rows": 0}, "invalid setting itnio.page_rows: "),
        ("itnio", {"templates": ["("]}, "invalid setting itnio.templates: "),
        ("itnio", {"bogus": 1}, "invalid setting itnio.bogus: Extra inputs are not permitted"),
        ("dinstar", {"sn": "1234"}, "invalid setting dinstar.sn: "),
        ("dinstar", {"lines": ["nope"]}, "dinstar.lines names unknown line(s): nope"),
        ("openvox", {"line": "nope"}, "invalid setting openvox.line: no line named 'nope'"),
        ("openvox", {"page_size": 0}, "invalid setting openvox.page_size: "),
    ],
)
def test_a_bad_section_is_one_line_naming_the_key(
    section: str, value: dict[str, object], line: str
) -> None:
    settings = load_settings(overrides={section: value})
    (dialect,) = [d for d in DIALECTS if d.name == section]
    with pytest.raises(ConfigError) as info:
        dialect.load(settings)
    assert str(info.value).startswith(line)
    assert "\n" not in str(info.value)


def test_install_refuses_settings_of_another_dialect() -> None:
    class Other(BaseModel):
        pass

    with pytest.raises(TypeError, match="itnio"):
        itnio.DIALECT.install(FastAPI(), None, Other())  # type: ignore[arg-type]


@pytest.mark.parametrize("role", ["run", "serve", "worker", "admin"])
async def test_open_validates_every_section_in_every_role(
    tmp_path: Path, clock: FakeClock, role: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cfg.db'}"
    for section, key in (("itnio", "page_rows"), ("dinstar", "sn"), ("openvox", "colour")):
        settings = make_settings(tmp_path, url, **{section: {key: "?"}})
        rt = Runtime(settings, role=role, clock=clock)  # type: ignore[arg-type]
        try:
            with pytest.raises(ConfigError, match=rf"{section}\.{key}"):
                await rt.open()
            assert rt.services is None  # nothing was opened
        finally:
            await rt.close()


async def test_open_keeps_the_typed_sections(tmp_path: Path, clock: FakeClock) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cfg.db'}"
    settings = make_settings(tmp_path, url, itnio={"page_rows": 7}, dinstar={"max_numbers": 3})
    rt = Runtime(settings, role="worker", clock=clock)
    await rt.open()
    try:
        got = rt.dialect_settings
        assert isinstance(got["itnio"], ItnioSettings)
        assert got["itnio"].page_rows == 7
        assert isinstance(got["dinstar"], DinstarSettings)
        assert got["dinstar"].max_numbers == 3
        assert got["openvox"] == OpenVoxSettings()
    finally:
        await rt.close()
