"""What the wrk benchmarks with a Lua script share (dinstar_send.py, openvox_send.py): the
Lua that numbers the threads and tallies the answers a script's ``response`` found wrong,
and the reading of wrk's report."""

from __future__ import annotations

import re
import sys

# Before a script's ``request`` and ``response``: each thread's ``id`` (1, 2...), and its
# ``n`` (requests made), ``bad`` (wrong answers) and ``sample`` (the last wrong body), which
# ``response`` keeps up to date. No ``%`` in it: the scripts are %-formatted after.
LUA_THREADS = """
local threads = {}
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  n = 0
  bad = 0
  sample = ""
end
"""

# After them: the threads' wrong answers, as "BAD <total>" and "SAMPLE <body>" lines.
LUA_DONE = """
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("bad")
    if t:get("bad") > 0 then io.write("SAMPLE " .. t:get("sample") .. "\\n") end
  end
  io.write("BAD " .. total .. "\\n")
end
"""

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk_report(out: str, path: str) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, wrong answers) from the output of ``wrk --latency`` with
    a :data:`LUA_DONE` script; a sampled wrong answer goes to stderr."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def latency(p: str) -> float:
        m = re.search(p + r"%\s+([\d.]+)(us|ms|s)", out)
        return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else float("nan")

    bad = re.search(r"BAD (\d+)", out)
    sample = re.search(r"SAMPLE (.*)", out)
    if sample:
        print(f"  unexpected answer on {path}: {sample.group(1)[:200]}", file=sys.stderr)
    return rps, latency("50"), latency("99"), int(bad.group(1)) if bad else 0
