"""The master key of the API secrets at start-up (secretbox.py, runtime.Runtime.open).

A database restored without its ``master.key`` (or opened with another ``master_key``) is
refused with one line saying what to restore: before, a new key was made that opened none of
the stored secrets, and every itniotech request of those keys failed with -18, unexplained.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from simgate.errors import ConfigError
from simgate.runtime import Runtime
from simgate.services.accounts import AccountService
from simgate.settings import Settings
from tests.conftest import make_settings, opened
from tests.support.pg import truncate_pg


async def _fresh(backend: str) -> None:
    if backend.startswith("postgresql"):
        await truncate_pg(backend)  # the session database: no secrets of other tests


def _accounts(rt: Runtime) -> AccountService:
    assert rt.services is not None
    return rt.services.accounts


def _settings(tmp_path: Path, backend: str, master_key: str | None) -> Settings:
    return make_settings(tmp_path, backend, master_key=master_key)


async def test_a_database_without_secrets_gets_a_new_key_kept_for_the_next_start(
    backend: str, tmp_path: Path
) -> None:
    await _fresh(backend)
    settings = _settings(tmp_path, backend, None)
    key_file = settings.data_dir / "master.key"
    async with opened(settings) as rt:
        account = await _accounts(rt).create_account(name="a")
        key = await _accounts(rt).create_key(account.id)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first = key_file.read_text()
    async with opened(settings) as rt:  # the same key opens the secret it sealed
        (again,) = await _accounts(rt).list_keys()
        assert again.secret == key.secret
    assert key_file.read_text() == first


async def test_a_restored_database_without_its_master_key_is_refused(
    backend: str, tmp_path: Path
) -> None:
    await _fresh(backend)
    settings = _settings(tmp_path, backend, None)
    async with opened(settings) as rt:
        account = await _accounts(rt).create_account(name="a")
        await _accounts(rt).create_key(account.id)
    key_file = settings.data_dir / "master.key"
    key_file.unlink()  # the backup was taken without it
    with pytest.raises(ConfigError, match=r"master\.key is missing .* restore the master\.key"):
        async with opened(settings):
            pass
    assert not key_file.exists()  # no key made that opens nothing


async def test_another_master_key_than_the_secrets_were_sealed_with_is_refused(
    backend: str, tmp_path: Path
) -> None:
    await _fresh(backend)
    async with opened(_settings(tmp_path, backend, "the-first-master-key-0123")) as rt:
        account = await _accounts(rt).create_account(name="a")
        await _accounts(rt).create_key(account.id)
    with pytest.raises(ConfigError, match=r"master key \(master_key\) does not open"):
        async with opened(_settings(tmp_path, backend, "another-master-key-45678")):
            pass
    async with opened(_settings(tmp_path, backend, "the-first-master-key-0123")):
        pass  # the right key still opens it: the refusal changed nothing
