"""A bank of FakeModems to try a modem line without hardware.

    python -m simgate.testing.modem_bank [--pty 2] [--tcp 2] [--latency 1.0]

prints a ``[lines.gsm]`` block to paste into simgate.toml (``scripts/run --config FILE``) and
serves until interrupted. Messages get a delivery report right after their +CMGS answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from simgate.testing.fake_modem import FakeModem

__all__ = ["open_bank", "toml_block"]


async def open_bank(
    *, pty: int, tcp: int, latency: float = 0.0
) -> tuple[list[FakeModem], list[str]]:
    """``pty`` modems on pseudo-terminals and ``tcp`` on 127.0.0.1, with their port names."""
    modems = [
        FakeModem(imsi=f"46000111000{i:04d}", imei=f"3569380356{i:05d}") for i in range(pty + tcp)
    ]
    urls = [await m.open_pty() for m in modems[:pty]]
    urls += [await m.serve_tcp() for m in modems[pty:]]
    for m in modems:
        m.slow(latency)
    return modems, urls


def toml_block(urls: list[str], *, name: str = "gsm") -> str:
    return "\n".join(
        [
            f"[lines.{name}]",
            'driver = "modem"',
            f"ports = {json.dumps(urls)}",
            "",
            "[[routes]]",
            'prefix = ""',
            f'lines = ["{name}"]',
        ]
    )


async def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--pty", type=int, default=2)
    ap.add_argument("--tcp", type=int, default=2)
    ap.add_argument("--latency", type=float, default=1.0, help="seconds before +CMGS answers")
    args = ap.parse_args()
    modems, urls = await open_bank(pty=args.pty, tcp=args.tcp, latency=args.latency)
    print(toml_block(urls), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        for m in modems:
            await m.close()


if __name__ == "__main__":
    asyncio.run(_main())
