"""Basic and Digest (RFC 7617, RFC 7616): challenges, algorithms, nonces, replays, limits,
and the Basic cache's expiry (issue 15: a right password is let in again without a scrypt
while its stored hash is unchanged)."""

from __future__ import annotations

import base64

import httpx

from simgate.api.dialects.dinstar import DIALECT
from simgate.api.dialects.dinstar.auth import Authenticator, Denied
from simgate.api.dialects.dinstar.context import build_gateway
from simgate.domain.accounts import GatewayUser
from simgate.services.accounts import DIGEST_REALM
from tests.api.dinstar.conftest import PASSWORD, SN, USER, Gw, digest_header, parse_challenges
from tests.support.passwords import CountingPasswordCheck, change_password, lock_account

PATH = "/api/query_sms_in_queue"


async def challenge(gw: Gw, path: str = PATH) -> list[dict[str, str]]:
    async with gw.anon() as anon:
        r = await anon.get(path)
    assert r.status_code == 401
    assert r.json() == {"error_code": 401, "sn": SN, "error_msg": "authentication required"}
    return parse_challenges(r.headers.get_list("www-authenticate"))


async def with_header(gw: Gw, value: str, path: str = PATH, method: str = "GET") -> httpx.Response:
    async with gw.anon() as anon:
        return await anon.request(method, path, headers={"Authorization": value})


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_unauthenticated_gets_digest_and_basic_challenges(gw: Gw) -> None:
    ch = await challenge(gw)
    # MD5 first: clients that read only the first challenge know no SHA-256 (spec Amendments).
    assert [(c["scheme"], c.get("algorithm")) for c in ch] == [
        ("Digest", "MD5"),
        ("Digest", "SHA-256"),
        ("Basic", None),
    ]
    assert all(c["realm"] == DIGEST_REALM for c in ch)
    assert ch[0]["qop"] == "auth"
    assert ch[0]["nonce"] == ch[1]["nonce"]
    assert ch[0]["stale"] == "false"


async def test_basic_right_and_wrong(gw: Gw) -> None:
    ok = await with_header(gw, basic(USER, PASSWORD))
    assert ok.status_code == 200
    assert ok.json()["error_code"] == 200
    again = await with_header(gw, basic(USER, PASSWORD))  # served from the cache
    assert again.status_code == 200
    for bad in (
        basic(USER, "nope"),
        basic("ghost", PASSWORD),
        "Basic %%%",
        "Basic " + "QQ==",
        "Bearer x",
    ):
        r = await with_header(gw, bad)
        assert r.status_code == 401, bad
        assert r.json()["error_code"] == 401


async def test_a_role_changed_in_this_process_is_seen_by_the_next_request(gw: Gw) -> None:
    """The Basic cache drops what it holds on a change (services/cache_epoch.py): no wait
    for ``basic_cache_seconds``."""
    await gw.sv.accounts.create_user(gw.account.id, username="alice", password="alice-pass-1")
    alice = basic("alice", "alice-pass-1")
    lock = "/api/set_port_info?port=0&action=lock"
    refused = (await with_header(gw, alice, lock)).json()  # an account user: cached as one now
    assert "operator" in refused["error_msg"]
    await gw.sv.accounts.set_user_role("alice", "operator")
    assert (await with_header(gw, alice, lock)).json()["error_code"] == 200


async def test_digest_md5_and_sha256(gw: Gw) -> None:
    for which in (0, 1):
        c = (await challenge(gw))[which]
        r = await with_header(gw, digest_header(c, method="GET", uri=PATH))
        assert r.status_code == 200, (c["algorithm"], r.text)
        assert r.json() == {"error_code": 200, "sn": SN, "in_queue": 0}
    # POST with a query string: the uri covers the request target (RFC 7616 §3.4)
    c = (await challenge(gw))[0]
    uri = "/api/query_sms_result?x=1"
    r = await with_header(gw, digest_header(c, method="POST", uri=uri), path=uri, method="POST")
    assert r.status_code == 200
    assert r.json()["error_code"] == 200


async def test_httpx_digest_client(gw: Gw) -> None:
    async with httpx.AsyncClient(
        transport=gw.client._transport, base_url="http://t", auth=httpx.DigestAuth(USER, PASSWORD)
    ) as c:
        r = await c.post("/api/query_sms_result", json={"user_id": [1]})
    assert r.status_code == 200
    assert r.json() == {"error_code": 200, "sn": SN, "result": []}


async def test_digest_failures(gw: Gw) -> None:
    c = (await challenge(gw))[0]
    cases = {
        "wrong password": digest_header(c, method="GET", uri=PATH, password="nope"),
        "wrong realm": digest_header(c, method="GET", uri=PATH, realm="gateway"),
        "other uri": digest_header(c, method="GET", uri="/api/stop_sms"),
        "other method": digest_header(c, method="POST", uri=PATH),
        "unknown user": digest_header(c, method="GET", uri=PATH, user="ghost"),
        "forged nonce": digest_header(
            {**c, "nonce": c["nonce"][:-4] + "0000"}, method="GET", uri=PATH
        ),
        "garbage nonce": digest_header({**c, "nonce": "abc"}, method="GET", uri=PATH),
        "sess algorithm": digest_header({**c, "algorithm": "MD5-sess"}, method="GET", uri=PATH),
        "no qop": digest_header(c, method="GET", uri=PATH).replace("qop=auth, ", ""),
        "bad nc": digest_header(c, method="GET", uri=PATH).replace("nc=00000001", "nc=zz"),
    }
    for name, header in cases.items():
        r = await with_header(gw, header)
        assert r.status_code == 401, name
        assert r.json()["error_code"] == 401, name


async def test_stale_nonce_is_flagged_and_not_a_failure(gw: Gw) -> None:
    c = (await challenge(gw))[0]
    await gw.clock.advance(301)  # nonce_ttl_seconds = 300
    r = await with_header(gw, digest_header(c, method="GET", uri=PATH))
    assert r.status_code == 401
    fresh = parse_challenges(r.headers.get_list("www-authenticate"))
    assert fresh[0]["stale"] == "true"
    assert fresh[0]["nonce"] != c["nonce"]
    ok = await with_header(gw, digest_header(fresh[0], method="GET", uri=PATH))
    assert ok.status_code == 200


async def test_nonce_count_replay_is_refused(gw: Gw) -> None:
    c = (await challenge(gw))[1]
    first = digest_header(c, method="GET", uri=PATH, nc=1, cnonce="abc")
    assert (await with_header(gw, first)).status_code == 200
    assert (await with_header(gw, first)).status_code == 401  # the same nc again
    second = digest_header(c, method="GET", uri=PATH, nc=2, cnonce="abc")
    assert (await with_header(gw, second)).status_code == 200


async def test_nonce_from_another_process_is_accepted(gw: Gw) -> None:
    """Stateless nonces: a second authenticator on the same database accepts the first's."""
    c = (await challenge(gw))[0]
    other = build_gateway(
        gw.sv, DIALECT.load(gw.sv.settings)
    ).auth  # a fresh process: no memory of issued nonces
    user = await other.authenticate(
        method="GET", uri=PATH, header=digest_header(c, method="GET", uri=PATH), ip="10.0.0.1"
    )
    assert isinstance(user, GatewayUser)
    assert user.username == USER


async def test_failed_logins_are_limited_per_user_and_ip(gw: Gw) -> None:
    for _ in range(10):  # login_failures = 10
        assert (await with_header(gw, basic(USER, "guess"))).status_code == 401
    locked = await with_header(gw, basic(USER, PASSWORD))
    assert locked.status_code == 401  # even the right password, from this address
    c = (await challenge(gw))[0]
    assert (await with_header(gw, digest_header(c, method="GET", uri=PATH))).status_code == 401
    # The limit is per (user, address): the same user from elsewhere still gets in.
    auth = gw.rt.services and build_gateway(gw.sv, DIALECT.load(gw.sv.settings)).auth
    assert auth
    for _ in range(10):
        await auth.authenticate(method="GET", uri=PATH, header=basic(USER, "guess"), ip="10.0.0.9")
    elsewhere = await auth.authenticate(
        method="GET", uri=PATH, header=basic(USER, PASSWORD), ip="10.0.0.8"
    )
    assert isinstance(elsewhere, GatewayUser)
    blocked = await auth.authenticate(
        method="GET", uri=PATH, header=basic(USER, PASSWORD), ip="10.0.0.9"
    )
    assert isinstance(blocked, Denied)
    assert blocked.limited
    await gw.clock.advance(301)  # login_window_seconds = 300
    assert (await with_header(gw, basic(USER, PASSWORD))).status_code == 200


# ---- issue 14 items 2 and 6: tables an attacker cannot flood ----------------------------------
def _junk_digest(c: dict[str, str], user: str) -> str:
    # A wrong realm fails before any database read: the cheapest failure there is.
    return digest_header(c, method="GET", uri=PATH, user=user, realm="elsewhere")


async def test_junk_usernames_do_not_evict_a_locked_user(gw: Gw) -> None:
    auth = build_gateway(gw.sv, DIALECT.load(gw.sv.settings)).auth
    c = (await challenge(gw))[0]
    for _ in range(10):  # login_failures = 10
        await auth.authenticate(method="GET", uri=PATH, header=basic(USER, "guess"), ip="10.0.0.1")
    # More junk names than the table holds (10,000), from addresses below their own limit.
    for i in range(10_050):
        got = await auth.authenticate(
            method="GET", uri=PATH, header=_junk_digest(c, f"junk{i}"), ip=f"10.1.{i // 25}.1"
        )
        assert isinstance(got, Denied)
    still = await auth.authenticate(
        method="GET", uri=PATH, header=basic(USER, PASSWORD), ip="10.0.0.1"
    )
    assert isinstance(still, Denied)
    assert still.limited
    sizes = auth.table_sizes()
    assert max(sizes.values()) <= 10_000 + 10  # bounded (locks kept beside the counting ones)
    # the tables expire with their window on the injected clock
    await gw.clock.advance(301)
    await auth.authenticate(method="GET", uri=PATH, header=_junk_digest(c, "late"), ip="10.2.0.1")
    assert sum(auth.table_sizes().values()) <= 5


async def test_one_address_spraying_usernames_is_locked(gw: Gw) -> None:
    auth = build_gateway(gw.sv, DIALECT.load(gw.sv.settings)).auth
    c = (await challenge(gw))[0]
    for i in range(30):  # login_failures_per_address = 30
        await auth.authenticate(
            method="GET", uri=PATH, header=_junk_digest(c, f"u{i}"), ip="10.0.0.7"
        )
    refused = await auth.authenticate(
        method="GET", uri=PATH, header=basic(USER, PASSWORD), ip="10.0.0.7"
    )
    assert isinstance(refused, Denied)
    assert refused.limited
    elsewhere = await auth.authenticate(
        method="GET", uri=PATH, header=basic(USER, PASSWORD), ip="10.0.0.8"
    )
    assert isinstance(elsewhere, GatewayUser)


async def test_nonce_counts_stay_bounded(gw: Gw) -> None:
    """Every Digest nonce used once: the replay table holds at most its bound, with no
    rebuild per request, and a nonce pushed out of it cannot be replayed."""
    auth = build_gateway(gw.sv, DIALECT.load(gw.sv.settings)).auth
    first = ""
    for i in range(10_100):
        gw.clock.set(gw.clock.now_ms() + 1)  # one nonce per millisecond, as a busy client
        c = parse_challenges(await auth.challenges())[0]
        header = digest_header(c, method="GET", uri=PATH, nc=1, cnonce="c")
        first = first or header
        got = await auth.authenticate(method="GET", uri=PATH, header=header, ip="10.0.0.1")
        assert isinstance(got, GatewayUser), i
    assert auth.table_sizes()["nonce_counts"] <= 10_000
    replay = await auth.authenticate(method="GET", uri=PATH, header=first, ip="10.0.0.1")
    assert isinstance(replay, Denied)


# ---- issue 15: the Basic cache's expiry costs a look-up, not a scrypt -----------------------
TTL_S = 60.0  # basic_cache_seconds' default


def _counted(gw: Gw) -> tuple[Authenticator, CountingPasswordCheck]:
    scrypts = CountingPasswordCheck()
    auth = Authenticator(
        accounts=gw.sv.accounts,
        clock=gw.clock,
        cfg=DIALECT.load(gw.sv.settings),
        secret=gw.sv.dinstar.nonce_secret,
        check_password=scrypts,
    )
    return auth, scrypts


async def _basic(auth: Authenticator, user: str, password: str) -> GatewayUser | Denied:
    header = basic(user, password)
    return await auth.authenticate(method="GET", uri=PATH, header=header, ip="10.0.0.1")


async def test_after_expiry_the_right_password_needs_no_scrypt(gw: Gw) -> None:
    auth, scrypts = _counted(gw)
    assert isinstance(await _basic(auth, USER, PASSWORD), GatewayUser)
    for _ in range(3):
        await gw.clock.advance(TTL_S + 1)  # the cached user and the Basic entry are gone
        got = await _basic(auth, USER, PASSWORD)
        assert isinstance(got, GatewayUser)
        assert got.username == USER
    assert scrypts.calls == 1
    assert auth.table_sizes()["verified_hashes"] == 1


async def test_a_changed_password_refuses_the_old_one_at_the_first_request_after_expiry(
    gw: Gw,
) -> None:
    auth, scrypts = _counted(gw)
    await _basic(auth, USER, PASSWORD)
    await change_password(gw.rt.store, USER, "a-new-pass")
    await gw.clock.advance(TTL_S + 1)
    assert isinstance(await _basic(auth, USER, PASSWORD), Denied)
    assert scrypts.calls == 2  # the new hash differs: checked, and refused
    assert isinstance(await _basic(auth, USER, "a-new-pass"), GatewayUser)
    assert scrypts.calls == 3


async def test_wrong_passwords_and_unknown_users_still_pay_a_scrypt(gw: Gw) -> None:
    auth, scrypts = _counted(gw)
    await _basic(auth, USER, PASSWORD)
    for expired in (False, True):
        if expired:
            await gw.clock.advance(TTL_S + 1)
        before = scrypts.calls
        assert isinstance(await _basic(auth, USER, "wrong"), Denied)
        assert isinstance(await _basic(auth, "ghost", PASSWORD), Denied)
        assert scrypts.calls == before + 2
    assert auth.table_sizes()["verified_hashes"] == 1  # failures never enter


async def test_a_locked_account_is_refused_after_the_cache_time(gw: Gw) -> None:
    assert (await with_header(gw, basic(USER, PASSWORD))).json()["error_code"] == 200
    await lock_account(gw.rt.store, gw.account.id)
    await gw.clock.advance(TTL_S + 1)
    refused = (await with_header(gw, basic(USER, PASSWORD))).json()
    assert refused["error_code"] != 200
    assert "locked" in refused["error_msg"]
