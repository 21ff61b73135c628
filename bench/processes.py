"""Process benchmarks: a long crash run and the multi-process scale run (placeholder)."""

from __future__ import annotations

from pathlib import Path

from bench.common import Table

ONLY_ON = {"crash": ("sqlite",), "scale": ("pg",)}


async def crash(backend: str, workdir: Path, kills: int) -> Table:
    raise NotImplementedError


async def scale(backend: str, workdir: Path, total: int) -> Table:
    raise NotImplementedError
