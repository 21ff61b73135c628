"""SMPP submit_sm encode cost: this tree against another revision (default ``main``), same run.

    .venv/bin/python bench/smpp_encode.py [--count 20000] [--rounds 5] [--baseline main]

Two measures per tree, best of ``--rounds`` (the machine is shared: the best round is the
closest to what the code costs), in microseconds per message:

* ``encode``: ``codec.encode`` of a numbered submit_sm (one part, GSM 7, report requested);
* ``session``: what the line's session does per message: ``send`` (numbering, window,
  encode), then ``receive_data`` of its submit_sm_resp (decode, window), 64 at a time as a
  window of 64 runs.

The baseline revision's ``src/`` is taken with ``git archive`` into a temporary directory
and measured in a child process with the same interpreter, interleaved with this tree.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# In the child, PYTHONPATH picks which tree's simgate this is (see _child).
from bench.common import Table
from simgate.codecs.smpp import (
    BindTransceiver,
    BindTransceiverResp,
    Role,
    SessionConfig,
    SmppSession,
    SubmitSm,
    SubmitSmResp,
    encode,
)

ROOT = Path(__file__).resolve().parent.parent


def _pdus(count: int) -> list[SubmitSm]:
    return [
        SubmitSm(
            source_addr_ton=5,
            source_addr="Bench",
            dest_addr_ton=1,
            dest_addr_npi=1,
            destination_addr=str(8613800000000 + i),
            registered_delivery=1,
            short_message=b"benchmark message %d" % i,
        )
        for i in range(count)
    ]


def _bound_session() -> SmppSession:
    session = SmppSession(SessionConfig(role=Role.ESME, window_size=64))
    session.send(BindTransceiver(system_id="bench", password="pw"), 0.0)
    session.receive_data(encode(BindTransceiverResp(sequence_number=1, system_id="s")), 0.0)
    return session


def measure(count: int) -> dict[str, float]:
    """Microseconds per message in this interpreter's ``simgate`` (one round)."""
    count -= count % 64
    pdus = _pdus(count)
    numbered = [dataclasses.replace(p, sequence_number=i + 1) for i, p in enumerate(pdus)]
    start = time.perf_counter()
    for pdu in numbered:
        encode(pdu)
    encode_us = (time.perf_counter() - start) / count * 1e6
    session = _bound_session()
    send, receive = session.send, session.receive_data
    answers = [
        b"".join(
            encode(SubmitSmResp(sequence_number=seq, message_id=f"{seq:x}"))
            for seq in range(first + 2, first + 2 + 64)  # the bind took number 1
        )
        for first in range(0, count, 64)
    ]
    start = time.perf_counter()
    for i in range(0, count, 64):
        for pdu in pdus[i : i + 64]:
            send(pdu, 1.0)
        receive(answers[i // 64], 1.0)
    session_us = (time.perf_counter() - start) / count * 1e6
    return {"encode": encode_us, "session": session_us}


def _baseline_src(ref: str, tmp: Path) -> Path:
    archive = tmp / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "src"


def _child(src: Path, count: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--count", str(count)],
        env={"PYTHONPATH": f"{src}:{ROOT}", "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default="main", help="git revision to compare with")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.count)))
        return
    with tempfile.TemporaryDirectory(prefix="smpp-encode-") as tmp:
        base_src = _baseline_src(args.baseline, Path(tmp))
        ours_src = ROOT / "src"
        best: dict[str, dict[str, float]] = {"ours": {}, "base": {}}
        for _ in range(args.rounds):  # interleaved, so both see the same load
            for who, src in (("ours", ours_src), ("base", base_src)):
                for key, value in _child(src, args.count).items():
                    best[who][key] = min(best[who].get(key, value), value)
    rows: list[Sequence[Any]] = [
        [key, f"{best['base'][key]:.2f}", f"{best['ours'][key]:.2f}",
         f"{best['base'][key] / best['ours'][key]:.2f}"]
        for key in best["ours"]
    ]  # fmt: skip
    print(
        Table(
            f"SMPP submit_sm encode, us per message (best of {args.rounds} x {args.count:,})",
            ["path", args.baseline, "this tree", "speed-up"],
            rows,
        ).render()
    )


if __name__ == "__main__":
    main()
