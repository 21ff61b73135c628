"""Compare the benchmarks of this tree against another commit, in the same run.

    scripts/bench --against HEAD~1 --only accept,dispatch --backend sqlite --quick
    scripts/bench --against main --rounds 3 --only calls

The other commit is checked out into a temporary git worktree; ``bench.run`` then runs in both
trees by turns (base, head, head, base, ...: alternating cancels most of the drift of a busy
machine), each in a child process that imports only its own tree. Every number cell of every
table is matched by table title, row name and column, and the medians over the rounds are
printed side by side with their ratio. Whether more is better depends on the column: a column
whose header says "/s" is a rate (more is better); "ms", "p50", "p99", "max", "MB" and "s" are
costs (less is better); other columns are shown without a verdict.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A number cell as bench.common._fmt writes it: "1,234", "12.50", "24.9x", "-3".
_NUMBER = re.compile(r"\A(-?[0-9][0-9,]*(?:\.[0-9]+)?)x?\Z")


@dataclass(frozen=True, slots=True)
class Cell:
    table: str
    row: str
    column: str


def parse_tables(text: str) -> dict[Cell, float]:
    """Every number cell of the tables ``bench.run`` printed (see bench.common.Table.render)."""
    lines = text.splitlines()
    out: dict[Cell, float] = {}
    i = 0
    while i + 3 < len(lines):
        title, rule, header, rule2 = lines[i : i + 4]
        if not (rule.startswith("+-") and header.startswith("| ") and rule2.startswith("+-")):
            i += 1
            continue
        columns = [c.strip() for c in header.strip("|").split("|")]
        i += 4
        while i < len(lines) and lines[i].startswith("| "):
            cells = [c.strip() for c in lines[i].strip("|").split("|")]
            for column, cell in zip(columns[1:], cells[1:], strict=False):
                match = _NUMBER.match(cell)
                if match:
                    value = float(match.group(1).replace(",", ""))
                    out[Cell(title.strip(), cells[0], column)] = value
            i += 1
    return out


def direction(column: str) -> int:
    """+1 when more is better, -1 when less is better, 0 when the header does not say."""
    lowered = column.lower()
    if lowered.startswith("vs ") or "ratio" in lowered:  # a ratio to a same-run baseline
        return 0
    if "/s" in lowered:
        return 1
    if set(lowered.split()) & {"ms", "p50", "p99", "max", "mb", "s", "seconds"}:
        return -1
    return 0


def run_bench(tree: Path, args: Sequence[str]) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree / "src"), str(tree)])
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
        raise SystemExit(f"bench.run failed in {tree} (exit {done.returncode})")
    return done.stdout


def compare(
    base: list[dict[Cell, float]], head: list[dict[Cell, float]]
) -> list[tuple[Cell, float, float]]:
    cells = [c for c in head[0] if all(c in r for r in (*base, *head))]
    return [
        (c, statistics.median(r[c] for r in base), statistics.median(r[c] for r in head))
        for c in cells
    ]


def render(rows: list[tuple[Cell, float, float]], ref: str, rounds: int) -> str:
    out = [f"this tree (head) against {ref} (base), median of {rounds} round(s) each"]
    table = None
    for cell, b, h in rows:
        if cell.table != table:
            table = cell.table
            out.append("")
            out.append(table)
            out.append(
                f"| {'row':<44} | {'column':<18} | {'base':>11} | {'head':>11} | head/base |"
            )
        ratio = h / b if b else float("nan")
        sign = direction(cell.column)
        verdict = ""
        if sign and b:
            better = ratio > 1 if sign > 0 else ratio < 1
            verdict = " better" if better else " worse"
        out.append(
            f"| {cell.row[:44]:<44} | {cell.column[:18]:<18} | {b:>11,.2f} | {h:>11,.2f} |"
            f" {ratio:>8.2f}{verdict}"
        )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench --against", description=__doc__)
    parser.add_argument("--against", required=True, help="a commit, branch or tag")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--keep", type=Path, default=None, help="also write each run's output into this folder"
    )
    args, rest = parser.parse_known_args(argv)
    with tempfile.TemporaryDirectory(prefix="simgate-base-") as tmp:
        base_tree = Path(tmp) / "tree"
        subprocess.run(
            [
                "git",
                "-C",
                str(ROOT),
                "worktree",
                "add",
                "--detach",
                "-q",
                str(base_tree),
                args.against,
            ],
            check=True,
        )
        try:
            base: list[dict[Cell, float]] = []
            head: list[dict[Cell, float]] = []
            for n in range(args.rounds):
                order = [(base_tree, base), (ROOT, head)]
                if n % 2:
                    order.reverse()
                for tree, results in order:
                    print(
                        f"round {n + 1}: {'base' if tree is base_tree else 'head'}",
                        file=sys.stderr,
                        flush=True,
                    )
                    name = "base" if tree is base_tree else "head"
                    output = run_bench(tree, rest)
                    if args.keep is not None:  # what finished survives an interrupted run
                        args.keep.mkdir(parents=True, exist_ok=True)
                        (args.keep / f"round{n + 1}-{name}.txt").write_text(output)
                    results.append(parse_tables(output))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
                check=False,
            )
    print(render(compare(base, head), args.against, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
