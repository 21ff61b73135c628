"""Login bookkeeping every dialect shares: failure limiters, a TTL cache, Digest nonce counts,
the password hashes credentials were verified against.

Rules every table here keeps (issue 14: a flood of fresh usernames, keys or addresses must
not grow memory or cost per request):

- **Bounded**: each table holds at most a fixed number of keys.
- **O(1) per event**: no scan or rebuild of a table on any request. Each table is an
  ``OrderedDict`` kept in the order its entries expire (or close to it), so expired entries
  are taken off the front, a few per event, amortised O(1).
- **Expiry with the window, on the injected clock**: every event sweeps what its window left
  behind, so a table that was flooded shrinks back once the window has passed, whether or not
  those keys are ever seen again. Time comes from :class:`~simgate.clock.Clock` (tests move
  it; nothing here sleeps). :class:`VerifiedHashes` alone has no window: only a right
  password enters it, so nobody without credentials can fill it.
- **A flood never frees a lock** (:class:`FailureLimiter`): keys that reached their limit are
  kept apart from those still counting, and fresh keys only ever push out counting ones.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, Protocol, TypeVar

from simgate.clock import Clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger(__name__)

DEFAULT_MAX_KEYS = 10_000


def address_key(ip: str) -> str:
    """What a per-address limit counts: the IPv4 address, or the IPv6 /64 it lies in.

    One IPv6 subscriber usually holds a whole /64 (RFC 6177): counting single IPv6 addresses
    would give one attacker 2^64 fresh "addresses". An IPv4-mapped IPv6 address is its IPv4
    address. Anything else (no peer, a unix socket) is counted as given.
    """
    if ":" not in ip:  # IPv4 (the peer's, as the socket wrote it) or no address: as given
        return ip
    try:
        addr = ipaddress.IPv6Address(ip)
    except ValueError:
        return ip
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((addr, 64), strict=False))


class FailureLimiter(Generic[K]):
    """At most ``limit`` failures per key in any ``window_s`` seconds (a sliding window).

    Only the newest ``limit`` failure times of a key are kept: whether the limit is reached
    depends on the oldest of those alone, so older ones can never matter.

    Keys still below the limit ("counting") and keys at it ("locked") live in two tables of
    ``max_keys`` each. A fresh key that finds the counting table full pushes out the counting
    key that failed longest ago: at worst that gives one attacker ``limit - 1`` more tries on
    a key it flooded out, never a lock lifted early (the lock of an attacked user or address
    is what keeps it out). The locked table can only be overflowed by locking ``max_keys``
    other keys inside one window; then the oldest lock goes and a warning says so (a lock
    ends with its window anyway).

    ``alert``, when given, names the kind of key in a warning logged each time a key locks:
    for limits whose lock hurts the key's owner (a key-wide limit), an operator must hear.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        limit: int,
        window_s: float,
        max_keys: int = DEFAULT_MAX_KEYS,
        alert: str | None = None,
    ) -> None:
        if limit < 1 or max_keys < 1 or window_s <= 0:
            raise ValueError("limit and max_keys must be at least 1, window_s positive")
        self._clock = clock
        self._limit = limit
        self._window_ms = int(window_s * 1000)
        self._max_keys = max_keys
        self._alert = alert
        # Least recently failed first. Times ascending, fewer than ``limit``, all live after
        # a sweep (the front is swept while its newest time is out of the window).
        self._counting: OrderedDict[K, list[int]] = OrderedDict()
        # In the order they locked; exactly ``limit`` times each.
        self._locked: OrderedDict[K, list[int]] = OrderedDict()
        self._warned_full_ms: int | None = None

    def __len__(self) -> int:
        return len(self._counting) + len(self._locked)

    @property
    def locked_count(self) -> int:
        return len(self._locked)

    def _sweep(self, now: int) -> None:
        """Drop what the window left behind, from the fronts: amortised O(1) per event.

        A counting key at the front whose newest failure is out of the window is gone. A
        locked key at the front whose oldest kept failure is out of the window is no longer
        locked: it goes back to counting with its live times (or goes, when none are live).
        Locked keys behind a still-locked front wait for it; each is gone at most one window
        after it locked (every key ahead of it locked earlier), so none outlives that.
        """
        horizon = now - self._window_ms
        counting = self._counting
        while counting:
            key, times = next(iter(counting.items()))
            if times[-1] > horizon:
                break
            counting.popitem(last=False)
        locked = self._locked
        while locked:
            key, times = next(iter(locked.items()))
            if times[0] > horizon:
                break
            locked.popitem(last=False)
            live = [t for t in times if t > horizon]
            if live:
                self._count(key, live)

    def _count(self, key: K, times: list[int]) -> None:
        self._counting[key] = times
        self._counting.move_to_end(key)
        while len(self._counting) > self._max_keys:
            self._counting.popitem(last=False)

    def blocked(self, key: K) -> bool:
        if not self._locked:
            # Nothing locked (the usual case: every request asks, one lock is rare): no
            # clock read and no look-up, only the sweep of what is still counting.
            if self._counting:
                self._sweep(self._clock.now_ms())
            return False
        now = self._clock.now_ms()
        self._sweep(now)
        times = self._locked.get(key)
        if times is None:
            return False
        if times[0] > now - self._window_ms:
            return True
        # Unlocked but not yet swept (a lock behind it is older): count from here on.
        del self._locked[key]
        live = [t for t in times if t > now - self._window_ms]
        if live:
            self._count(key, live)
        return False

    def fail(self, key: K) -> None:
        now = self._clock.now_ms()
        self._sweep(now)
        horizon = now - self._window_ms
        was_locked = key in self._locked
        times = self._locked.pop(key, None) or self._counting.pop(key, None) or []
        live = [t for t in times if t > horizon]
        live.append(now)
        del live[: -self._limit]  # the newest ``limit`` alone decide (class docstring)
        if len(live) < self._limit:
            self._count(key, live)
            return
        self._locked[key] = live
        if self._alert is not None and not was_locked:
            log.warning(
                "%s %r reached %d failed authentications in %g s: refused until the window "
                "moves on (an attack on it, or its owner's client misconfigured)",
                self._alert,
                key,
                self._limit,
                self._window_ms / 1000,
            )
        while len(self._locked) > self._max_keys:
            self._locked.popitem(last=False)
            if self._warned_full_ms is None or self._warned_full_ms <= horizon:
                self._warned_full_ms = now  # once per window: a flood would repeat it
                log.warning(
                    "more than %d keys locked for failed logins within %g s: the oldest locks "
                    "are dropped early (a distributed attack?)",
                    self._max_keys,
                    self._window_ms / 1000,
                )

    def forget(self, key: K) -> None:
        self._counting.pop(key, None)
        self._locked.pop(key, None)


class Epoch(Protocol):
    """A number that moves whenever what a cache holds may have changed
    (:class:`simgate.services.cache_epoch.CacheEpoch`)."""

    @property
    def value(self) -> int: ...

    async def look_if_due(self) -> None:
        """Learn of changes made elsewhere (cheap when not due)."""


class TtlCache(Generic[K, V]):
    """Values remembered for ``ttl_s`` seconds after they were stored; ``ttl_s`` 0 = never.

    A stored value may be ``None`` (e.g. "no such key"): :meth:`get_or_load` caches that too.
    Every entry lives the same ``ttl_s`` and a store moves its key to the end, so the table is
    in expiry order: expired entries are swept off the front on every call, O(1) amortised.

    With an ``epoch``, every entry goes as soon as the epoch moves (an account, app, key or
    user changed): a change is seen at once in the process that made it, and within the
    epoch's poll interval in the others, however long ``ttl_s`` is.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        ttl_s: float,
        max_entries: int = DEFAULT_MAX_KEYS,
        epoch: Epoch | None = None,
    ) -> None:
        if ttl_s < 0 or max_entries < 1:
            raise ValueError("ttl_s must not be negative, max_entries at least 1")
        self._clock = clock
        self._ttl_ms = int(ttl_s * 1000)
        self._max = max_entries
        self._entries: OrderedDict[K, tuple[int, V]] = OrderedDict()
        self._epoch = epoch
        self._epoch_seen = 0 if epoch is None else epoch.value
        # Loads in flight (get_or_load): the epoch each started under, and its answer.
        self._loading: dict[K, tuple[int, asyncio.Future[V]]] = {}

    def _current_epoch(self) -> int:
        """The epoch now; everything stored under an older one is dropped (O(1): a clear)."""
        if self._epoch is None:
            return 0
        value = self._epoch.value
        if value != self._epoch_seen:
            self._entries.clear()
            self._epoch_seen = value
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def _sweep(self, now: int) -> None:
        entries = self._entries
        while entries:
            expires, _ = next(iter(entries.values()))
            if expires > now:
                break
            entries.popitem(last=False)

    def _hit(self, key: K) -> tuple[int, V] | None:
        self._current_epoch()
        now = self._clock.now_ms()
        self._sweep(now)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= now:  # only when the clock stepped back (an expired one is swept)
            del self._entries[key]
            return None
        return entry

    def get(self, key: K) -> V | None:
        """The live value, or None when absent or expired."""
        entry = self._hit(key)
        return None if entry is None else entry[1]

    def mark(self) -> int:
        """The epoch now: give it to :meth:`put` for a value read after this call."""
        return self._current_epoch()

    def put(self, key: K, value: V, *, read_at: int | None = None) -> None:
        """Store ``value``; with ``read_at`` (a :meth:`mark` taken before reading it) only
        if the epoch has not moved since: a value read before a change is not kept."""
        if self._ttl_ms <= 0:
            return
        current = self._current_epoch()
        if read_at is not None and read_at != current:
            return
        now = self._clock.now_ms()
        self._sweep(now)
        self._entries[key] = (now + self._ttl_ms, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The live value, else ``await load()`` stored and returned (errors are not cached).

        One load per key at a time: requests that miss while it runs under the same epoch
        wait for its answer (issue 15: when an account's entry expired under load, each of
        the requests in flight read it again, a tenth of a PostgreSQL send's CPU). After a
        change (the epoch moved) a miss loads afresh rather than join a read from before it.
        """
        if self._epoch is not None:
            await self._epoch.look_if_due()
        entry = self._hit(key)
        if entry is not None:
            return entry[1]
        before = self._epoch_seen
        running = self._loading.get(key)
        if running is not None and running[0] == before:
            return await asyncio.shield(running[1])
        loading: asyncio.Future[V] = asyncio.ensure_future(load())
        loading.add_done_callback(_heard)
        self._loading[key] = (before, loading)
        try:
            value = await asyncio.shield(loading)
        finally:
            current = self._loading.get(key)
            if current is not None and current[1] is loading:
                del self._loading[key]
        self.put(key, value, read_at=before)  # not kept if read before a change
        return value


def _heard(done: asyncio.Future[Any]) -> None:
    """A shared load's failure counts as heard even when every request that waited for it
    went away (no "exception was never retrieved")."""
    if not done.cancelled():
        done.exception()


# How far below the highest nonce-count seen a count may still arrive (concurrent requests
# on one nonce finish out of order). One bit each, like IPsec's anti-replay window (RFC 4303
# §3.4.3): a fixed few bytes per nonce, whatever counts a client sends.
NC_WINDOW = 64


class NonceCounts:
    """The Digest nonce-counts seen per nonce (RFC 7616 §3.4: a repeated nc is a replay).

    Per nonce: its issue time, the highest count seen and a bitmap of the ``NC_WINDOW``
    counts below it. A count above the highest is new; one inside the window is new unless
    its bit is set; one further below is refused (the client gets a fresh nonce).

    At most ``max_nonces`` nonces, in the order of first use; nonces issued more than
    ``ttl_s`` ago are swept off the front (they are refused as stale anyway). When the table
    is full the oldest entry is pushed out and its issue time becomes a floor: a nonce issued
    at or before the floor that is not in the table may have been pushed out, so it is
    refused (stale) rather than trusted with forgotten counts.
    """

    def __init__(self, clock: Clock, *, ttl_s: float, max_nonces: int = DEFAULT_MAX_KEYS) -> None:
        if ttl_s <= 0 or max_nonces < 1:
            raise ValueError("ttl_s must be positive, max_nonces at least 1")
        self._clock = clock
        self._ttl_ms = int(ttl_s * 1000)
        self._max = max_nonces
        self._seen: OrderedDict[str, tuple[int, int, int]] = OrderedDict()  # issued, top, bits
        self._floor = -1

    def __len__(self) -> int:
        return len(self._seen)

    def _sweep(self, now: int) -> None:
        # First use is after issue, so the front may hold a nonce issued later than one
        # behind it; each still goes within ttl of its first use (every one ahead of it was
        # first used earlier, and so expires earlier).
        horizon = now - self._ttl_ms
        seen = self._seen
        while seen:
            issued = next(iter(seen.values()))[0]
            if issued >= horizon:
                break
            seen.popitem(last=False)

    def first_use(self, nonce: str, issued: int, nc: int) -> bool:
        """Whether ``nc`` is new for ``nonce`` (issued at ``issued`` ms); records it if so."""
        self._sweep(self._clock.now_ms())
        entry = self._seen.get(nonce)
        if entry is None:
            if issued <= self._floor:
                return False
            self._seen[nonce] = (issued, nc, 1)
            while len(self._seen) > self._max:
                _, (dropped, _, _) = self._seen.popitem(last=False)
                self._floor = max(self._floor, dropped)
            return True
        _, top, bits = entry
        if nc > top:
            shift = nc - top
            bits = ((bits << shift) | 1) & ((1 << NC_WINDOW) - 1) if shift < NC_WINDOW else 1
            self._seen[nonce] = (issued, nc, bits)
            return True
        back = top - nc
        if back >= NC_WINDOW or bits >> back & 1:
            return False
        self._seen[nonce] = (issued, top, bits | 1 << back)
        return True


class VerifiedHashes(Generic[K]):
    """Which stored password hash each credential last matched (issue 15: idle submit p99).

    A credential cache entry expires so that a locked user or a changed password takes
    effect; that needs the user read again, not the password hashed again (~50 ms of CPU,
    far more on a loaded box: one send in twenty paid it when the cache ran out). "Password P
    matches stored hash H" stays true for ever, so after a re-read the caller asks
    :meth:`matches` with the hash it read: the same string means the same salt and digest,
    which P matched before. A changed password is stored with a fresh salt, so its hash
    differs and the next check hashes again (and refuses the old password).

    Only successes go in (:meth:`remember`). A wrong password's key was never stored with
    that user's hash, nor any key with the unknown-user dummy hash: both still pay the hash,
    so neither guessing nor user enumeration gets cheaper. Keys are the dialect's credential
    keys (a keyed hash, never the password). At most ``max_entries`` keys, the least recently
    used go first; a key found with another hash is dropped (its password changed).
    """

    def __init__(self, *, max_entries: int = DEFAULT_MAX_KEYS) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._hashes: OrderedDict[K, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hashes)

    def matches(self, key: K, stored: str) -> bool:
        """Whether the credential ``key`` was verified against exactly ``stored``."""
        known = self._hashes.get(key)
        if known is None:
            return False
        if known != stored:
            del self._hashes[key]
            return False
        self._hashes.move_to_end(key)
        return True

    async def verify(
        self, key: K, password: str, stored: str | None, check: Callable[[str, str], bool]
    ) -> bool:
        """Whether ``password`` (credential ``key``) matches ``stored``, the user's hash
        (None: no such user, checked against :data:`DUMMY_PASSWORD_HASH` at the same cost):
        at once when ``key`` matched this very hash before, else by ``check`` (the scrypt) in
        a thread, remembering a match."""
        if stored is not None and self.matches(key, stored):
            return True
        against = stored if stored is not None else DUMMY_PASSWORD_HASH
        if not await asyncio.to_thread(check, password, against) or stored is None:
            return False
        self.remember(key, stored)
        return True

    def remember(self, key: K, stored: str) -> None:
        """Record that ``key``'s password was just verified against ``stored``."""
        self._hashes[key] = stored
        self._hashes.move_to_end(key)
        while len(self._hashes) > self._max:
            self._hashes.popitem(last=False)


# A well-formed scrypt hash no password matches: checking against it costs what checking a
# real user's hash costs, so an unknown username answers no faster (no user enumeration).
DUMMY_PASSWORD_HASH = "scrypt$" + "00" * 16 + "$" + "00" * 64


class LoginLimiter:
    """Failed password logins per (username, address) and per address (issue 14 item 6).

    The pair limit (``per_user``, low) stops guessing one user's password from one address
    without locking that address's other users. The address limit (``per_address``, higher)
    caps everything one address may try in a window, whatever usernames it makes up: a
    spray of fresh names is stopped there, and so is a flood meant to push the pair counters
    out of their table. Together, one address gets at most ``per_address`` guesses per window
    at any user, and a lock (pair or address) is never pushed out by fresh names (see
    :class:`FailureLimiter`). Addresses count per :func:`address_key` (IPv6 by /64).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        per_user: int,
        per_address: int,
        window_s: float,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._pairs: FailureLimiter[tuple[str, str]] = FailureLimiter(
            clock, limit=per_user, window_s=window_s, max_keys=max_keys
        )
        self._addresses: FailureLimiter[str] = FailureLimiter(
            clock, limit=per_address, window_s=window_s, max_keys=max_keys
        )

    def blocked(self, username: str, ip: str) -> bool:
        where = address_key(ip)
        return self._addresses.blocked(where) or self._pairs.blocked((username, where))

    def fail(self, username: str, ip: str) -> None:
        where = address_key(ip)
        self._addresses.fail(where)
        self._pairs.fail((username, where))

    def sizes(self) -> dict[str, int]:
        return {"login_pairs": len(self._pairs), "login_addresses": len(self._addresses)}
