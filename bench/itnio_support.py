"""Shared pieces of the itniotech benchmarks: a bench database, a real server, signing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simgate.domain.accounts import AppKind
from simgate.runtime import Runtime
from simgate.settings import load_settings
from simgate.testing.procs import SimgateProcess, free_port, write_config

MASTER_KEY = "itnio-bench-master-key-0123456789"


@dataclass(frozen=True)
class Creds:
    account_id: int
    app_pk: int
    app_id: str
    api_key: str
    api_secret: str

    def headers(self) -> dict[str, str]:
        ts = str(int(time.time()))
        sign = hashlib.md5((self.api_key + self.api_secret + ts).encode()).hexdigest()
        return {
            "Content-Type": "application/json;charset=UTF-8",
            "Api-Key": self.api_key,
            "Timestamp": ts,
            "Sign": sign,
        }


def settings_data(workdir: Path, url: str, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "data_dir": str(workdir / "data"),
        "database_url": url,
        "master_key": MASTER_KEY,
        "log_level": "warning",
        "demo": {"create": False},
        "billing": {"default_sms_price": "0.001"},
    }
    data.update(extra)
    return data


async def create_tenant(
    workdir: Path, url: str, *, balance: str = "100000000", name: str = "bench"
) -> Creds:
    """Migrate the bench database and create an account, an SMS app and a key."""
    rt = Runtime(load_settings(None, overrides=settings_data(workdir, url)), role="admin")
    sv = await rt.open()
    try:
        account = await sv.accounts.create_account(name=name, balance=balance)
        app = await sv.accounts.create_app(account.id, kind=AppKind.SMS)
        key = await sv.accounts.create_key(account.id)
    finally:
        await rt.close()
    creds = Creds(account.id, app.id, app.app_id, key.key, key.secret)
    (workdir / "creds.json").write_text(json.dumps(creds.__dict__), encoding="utf-8")
    return creds


def load_creds(workdir: Path) -> Creds:
    return Creds(**json.loads((workdir / "creds.json").read_text(encoding="utf-8")))


def start_server(
    workdir: Path,
    url: str,
    role: str = "serve",
    env: dict[str, str] | None = None,
    **extra: Any,
) -> SimgateProcess:
    """``simgate <role>`` on ``url``; ``env`` adds to its environment (e.g. a ``PYTHONPATH``
    naming another tree's sources, to measure two trees on one database in one run)."""
    port = free_port()
    data = settings_data(workdir, url, **extra)
    data["http"] = {"port": port}
    cfg = write_config(workdir / "simgate.toml", data)
    proc = SimgateProcess([role], workdir=workdir, config=cfg, port=port, env=env)
    proc.start()
    proc.wait_healthy(60)
    return proc


def pct(samples: Sequence[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def run(coro: Any) -> Any:
    return asyncio.run(coro)
