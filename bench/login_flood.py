"""Failed logins with fresh usernames or keys against each dialect (issue 14, "Done when").

Each dialect's real authentication path runs in-process (the ASGI app through
``httpx.ASGITransport``, as the tests drive it) with the default settings, on the real
clock. Every attempt uses a name never seen before (an itniotech Api-Key, a Dinstar Digest
username, an OpenVox username) and fails. The attacker moves to a new address every few
attempts, as a botnet would, so the per-address limits do not simply refuse the rest:

- itniotech and Dinstar: 20 attempts per address (below the per-address limit of 30), so
  every attempt runs the whole check and leaves a record in the failure tables;
- OpenVox: 500 per address. Each attempt that is checked costs one scrypt (~40 ms of CPU,
  by design: unknown users cost what known ones do, item 6); an address gets 30 of those per
  window and then answers 401 without one. (20 per address would be 30,000 scrypts: 20 min.)

Printed per dialect: CPU per failure (process time, the scrypt threads included) over the
first and the last thousand, RSS after them, their ratios (flat is 1.00, the goal within
10 %), the largest size each login table reached and its size at the end, and whether a
legitimate login from a fresh address still gets in afterwards. 500 attempts warm the
path up first (first-request costs, compiled statements) and are not counted.
"""

from __future__ import annotations

import gc
import hashlib
import os
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.common import Table, bench_settings, opened, scratch_url
from simgate.api.dialects.dinstar.auth import Authenticator as DinstarAuth
from simgate.api.dialects.itnio.auth import Authenticator as ItnioAuth
from simgate.api.dialects.itnio.auth import sign
from simgate.api.dialects.openvox.auth import Authenticator as OpenVoxAuth
from simgate.services.accounts import DIGEST_REALM

WARMUP = 500
USER, PASSWORD = "bench-user", "bench-password-1"
DINSTAR_PATH = "/api/query_sms_in_queue"
OPENVOX_URI = "/sms/get_valid_spans"
_NONCE = re.compile(r'nonce="([^"]+)"')


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _address(group: int) -> str:
    return f"10.{group >> 16 & 255}.{group >> 8 & 255}.{group & 255}"


@dataclass
class Flood:
    """One dialect's attempt function and where its login tables are."""

    name: str
    per_address: int
    attempt: Callable[[httpx.AsyncClient, int], Awaitable[bool]]  # True when it failed
    legit: Callable[[httpx.AsyncClient], Awaitable[bool]]  # True when it got in
    auth_type: type[Any]
    peak: dict[str, int] = field(default_factory=dict)


def _table_sizes(auth_type: type[Any]) -> Callable[[], dict[str, int]]:
    """The ``table_sizes`` of the app's authenticator of that dialect (looked up once, before
    the flood: the app holds it and nothing else exposes it; the bench builds one app)."""
    found = [o for o in gc.get_objects() if isinstance(o, auth_type)]
    assert len(found) == 1, f"{len(found)} {auth_type.__module__} authenticators"
    sizes = getattr(found[0], "table_sizes", None)
    return sizes if callable(sizes) else dict  # a tree from before table_sizes: no sizes


# ---- the three attempts ---------------------------------------------------------------------
async def _itnio(client: httpx.AsyncClient, i: int) -> bool:
    headers = {"Api-Key": f"flood{i:09d}", "Timestamp": str(int(time.time())), "Sign": "0" * 32}
    r = await client.get("/sms/getBalance", headers=headers)
    return r.status_code == 200 and r.json()["status"] in ("-1", "-15")


def _digest(nonce: str, user: str, password: str) -> str:
    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()  # RFC 7616 MD5: the client's side

    ha1 = md5(f"{user}:{DIGEST_REALM}:{password}")
    ha2 = md5(f"GET:{DINSTAR_PATH}")
    cnonce = os.urandom(4).hex()
    resp = md5(f"{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{user}", realm="{DIGEST_REALM}", nonce="{nonce}", '
        f'uri="{DINSTAR_PATH}", algorithm=MD5, qop=auth, nc=00000001, cnonce="{cnonce}", '
        f'response="{resp}"'
    )


class _Nonces:
    """A server nonce, fetched again every 2,000 uses (they live 300 s)."""

    def __init__(self) -> None:
        self.nonce = ""
        self.uses = 0

    async def get(self, client: httpx.AsyncClient) -> str:
        if not self.nonce or self.uses >= 2000:
            r = await client.get(DINSTAR_PATH)
            found = _NONCE.search(r.headers.get("www-authenticate", ""))
            assert r.status_code == 401, r.text
            assert found, r.headers
            self.nonce, self.uses = found.group(1), 0
        self.uses += 1
        return self.nonce


def _dinstar(nonces: _Nonces) -> Callable[[httpx.AsyncClient, int], Awaitable[bool]]:
    async def attempt(client: httpx.AsyncClient, i: int) -> bool:
        header = _digest(await nonces.get(client), f"flood{i:09d}", "guess")
        r = await client.get(DINSTAR_PATH, headers={"Authorization": header})
        return r.status_code == 401

    return attempt


async def _openvox(client: httpx.AsyncClient, i: int) -> bool:
    r = await client.post(OPENVOX_URI, json={"username": f"flood{i:09d}", "password": "guess"})
    return r.status_code == 200 and r.json()["code"] == 401


# ---- the measurement ------------------------------------------------------------------------
async def _run(flood: Flood, transport: httpx.ASGITransport, count: int) -> Sequence[Any]:
    tables = _table_sizes(flood.auth_type)
    first, last = WARMUP, WARMUP + count - 1000  # where each measured thousand starts
    cpu: dict[int, float] = {}
    rss: dict[int, int] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for n in range(WARMUP + count):
            transport.client = (_address(n // flood.per_address), 4000)
            if n in (first, last):
                cpu[n] = time.process_time()
            assert await flood.attempt(client, n), f"{flood.name}: attempt {n} did not fail"
            if n + 1 - 1000 in (first, last):
                cpu[n + 1 - 1000] = time.process_time() - cpu[n + 1 - 1000]
                rss[n + 1 - 1000] = _rss_bytes()
            if (n + 1) % 1000 == 0:
                for k, v in tables().items():
                    flood.peak[k] = max(flood.peak.get(k, 0), v)
        end = tables()
        transport.client = ("192.0.2.200", 4000)  # a legitimate client, from its own address
        got_in = await flood.legit(client)
    cpu_first, cpu_last = cpu[first], cpu[last]  # seconds per thousand = ms per failure
    sizes = ", ".join(f"{k} {flood.peak.get(k, v):,}/{v:,}" for k, v in end.items()) or "n/a"
    return [
        flood.name,
        cpu_first,
        cpu_last,
        cpu_last / cpu_first,
        rss[first] / 2**20,
        rss[last] / 2**20,
        rss[last] / rss[first],
        sizes,
        "yes" if got_in else "NO",
    ]


async def measure(backend: str, workdir: Path, count: int) -> Table:
    async with scratch_url(backend, workdir) as url, opened(bench_settings(workdir, url)) as rt:
        sv = rt.services
        assert sv is not None
        account = await sv.accounts.create_account(name="bench", balance="100")
        await sv.accounts.create_user(account.id, username=USER, password=PASSWORD)
        key = await sv.accounts.create_key(account.id)
        nonces = _Nonces()

        async def itnio_legit(client: httpx.AsyncClient) -> bool:
            ts = str(int(time.time()))
            headers = {"Api-Key": key.key, "Timestamp": ts, "Sign": sign(key.key, key.secret, ts)}
            r = await client.get("/sms/getBalance", headers=headers)
            return bool(r.json()["status"] == "0")

        async def dinstar_legit(client: httpx.AsyncClient) -> bool:
            nonces.nonce = ""  # a fresh one, as a new client would fetch
            header = _digest(await nonces.get(client), USER, PASSWORD)
            r = await client.get(DINSTAR_PATH, headers={"Authorization": header})
            return r.status_code == 200

        async def openvox_legit(client: httpx.AsyncClient) -> bool:
            r = await client.post(OPENVOX_URI, json={"username": USER, "password": PASSWORD})
            return bool(r.json()["code"] == 200)

        floods = [
            Flood("itnio (Api-Key)", 20, _itnio, itnio_legit, ItnioAuth),
            Flood("dinstar (Digest)", 20, _dinstar(nonces), dinstar_legit, DinstarAuth),
            Flood("openvox (body)", 500, _openvox, openvox_legit, OpenVoxAuth),
        ]
        # One app, as one API process serves all three dialects: one authenticator each.
        transport = httpx.ASGITransport(app=rt.app())
        rows = [await _run(flood, transport, count) for flood in floods]
    return Table(
        f"login flood: {count:,} failed logins with fresh names per dialect [{backend}]",
        [
            "dialect",
            "CPU ms/fail first 1k",
            "last 1k",
            "ratio",
            "RSS MiB first 1k",
            "last 1k",
            "ratio",
            "tables (peak/end)",
            "legit login after",
        ],
        rows,
        note=(
            "Per address: 20 attempts (itnio, dinstar), 500 (openvox: 30 checked with a scrypt, "
            "then refused without one). Flat = ratio 1.00; the goal is within 10 %."
        ),
    )
