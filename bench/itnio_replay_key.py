"""What an itniotech replay record's key costs SQLite per record (issue 15, migration 0016).

    PYTHONPATH=src:. python -m bench.itnio_replay_key [--records 40000] [--batch 8]

Raw ``sqlite3`` on simgate's ``itnio_replays`` table (WAL, synchronous=NORMAL so the fsync,
the same whatever the key, is left out), already holding ``--records`` records; then
batches of ``--batch`` records, one transaction each, as the group commit writes them.
Keys: the bare sha256 (random: before 0016); the request's Timestamp in milliseconds then
the digest (0016) with 4 requests per millisecond (13-digit Timestamps), and with 4,000
requests sharing each second (10-digit Timestamps at 4,000 req/s). CPU per record of the
INSERTs and their COMMIT.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine

from simgate.store.tables import itnio_replays

T0 = 1_700_000_000_000
RESPONSE = (
    '{"status":"0","reason":"success","success":"1","fail":"0","array":[{"msgId":'
    '"2512050335001234567","number":"8613800138000","orderId":""}]}'
)
INSERT = (
    "INSERT INTO itnio_replays (fingerprint, expires_ms, response, created_ms) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING"
)


def _digest(i: int) -> str:
    return hashlib.sha256(i.to_bytes(8, "big")).hexdigest()


KEYS: dict[str, Callable[[int], str]] = {
    "sha256 alone (before 0016)": _digest,
    "Timestamp ms + sha256, 4 per ms": lambda i: f"{T0 + i // 4:013d}{_digest(i)}",
    "Timestamp s + sha256, 4,000 per s": lambda i: f"{T0 + i // 4000 * 1000:013d}{_digest(i)}",
}


def _measure(path: Path, key: Callable[[int], str], records: int, batch: int) -> float:
    engine = create_engine(f"sqlite:///{path}")
    itnio_replays.create(engine)
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")

    def rows(start: int, n: int) -> list[tuple[str, int, str, int]]:
        return [
            (key(i), T0 + i // 4 + 300_000, RESPONSE, T0 + i // 4) for i in range(start, start + n)
        ]

    conn.execute("BEGIN")
    conn.executemany(INSERT, rows(0, records))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    measured = 20 * batch * max(1, 400 // batch)
    batches = [rows(records + n, batch) for n in range(0, measured, batch)]
    cpu = time.process_time()
    for b in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(INSERT, b)
        conn.execute("COMMIT")
    cpu = time.process_time() - cpu
    conn.close()
    return cpu / measured * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="simgate-replay-key-") as tmp:
        for r in range(args.rounds):
            for k, (name, key) in enumerate(KEYS.items()):
                us = _measure(Path(tmp) / f"{r}-{k}.db", key, args.records, args.batch)
                best[name] = min(best.get(name, us), us)
    print(f"| key ({args.records:,} records, {args.batch} per commit) | CPU us per record (best) |")
    print("|---|---|")
    for name, us in best.items():
        print(f"| {name} | {us:.1f} |")


if __name__ == "__main__":
    main()
