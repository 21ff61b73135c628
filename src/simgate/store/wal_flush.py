"""The fsync of the SQLite WAL after a COMMIT, done by the kernel while the event loop runs.

Why (issue 15). With ``synchronous=FULL`` SQLite fsyncs the WAL inside COMMIT, so the writer
ran its COMMIT in a thread (store/sqlite_writer.py). Counted under a send load on 2 cores,
that hand-off took 1.25-1.5 ms per commit of which the fsync was 0.25-0.5: the thread waited
0.8-0.9 ms for the GIL to start its call (the event loop's thread runs Python without pause
under load) and again to return after the fsync. A thread needs the GIL; the kernel does not.

How. The writer runs as with ``commit = "os"`` (``synchronous=NORMAL``: a COMMIT writes its
WAL frames into the page cache and fsyncs nothing, so it runs on the loop; checkpoints beside
it, store/sqlite_checkpoint.py), and before the commit counts (its callers answered, the
writer's turn dropped) :meth:`WalFlush.start` has the kernel ``fdatasync`` the WAL file: a
Linux native AIO request (``io_submit`` with ``IOCB_CMD_FDSYNC``, kernel 4.18 and later) whose
completion the kernel signals on an ``eventfd`` that the loop watches beside its sockets. The
loop spends ~6 µs on the request and a read on the completion, and never waits for another
thread. The system calls go through :mod:`ctypes` (the standard library has no AIO); on a
machine where they are missing (another OS, another architecture, a kernel without AIO fsync,
``aio-max-nr`` reached) :meth:`WalFlush.open` answers None and the writer keeps
``synchronous=FULL`` with its COMMIT in the thread, as before.

Durable as FULL. FULL syncs every frame written up to the commit frame before COMMIT returns;
here the same frames are synced by ``fdatasync`` of the same file after it returns, before
anyone hears of the commit. Checkpoints fsync the WAL before they copy it, as with FULL
(https://www.sqlite.org/pragma.html#pragma_synchronous). The directory is synced once the WAL
file is first opened here (SQLite syncs it with the WAL's first fsync, which with NORMAL
comes only at a checkpoint), and the file is opened again whenever the path names another
file than the one held (one ``stat`` per flush), so the flush is always of the file SQLite
writes.

What differs from FULL is *when other connections see* a commit: with FULL SQLite publishes it
after the fsync, here before. The writer keeps its turn (store/sqlite_turn.py) until the flush
is done, so no simgate writer, in this process or another, writes on top of a commit that is
not on the disk yet (a lease, a report, a replay claim are all writes); only a plain read may
see it early, e.g. a listing showing a message whose sender has not been answered yet. A kill
-9 in that window loses nothing (the page cache outlives the process); a power cut loses the
commit as it would with FULL, its callers never having heard of it.

Off by default (``flush_by_kernel`` of store/database.py and store/sqlite_writer.py), because
of what it measured (issue 15, 2026-12-05, ``scripts/bench --against main``, 3 rounds by
turns, 8 s cells, OpenVox one-number sends): at 32 connections it took 12-17 % less CPU per
send (``simgate serve`` SQLite 119 -> 99 µs, ``run`` 171 -> 151) and ``run`` answered 8 % more
(6,545 -> 7,055 req/s, 0.36 -> 0.41 of the ceiling; ``serve`` 8,929 -> 9,123, both ~0.5),
but at one connection its p50 was 0.1-0.15 ms worse (``serve`` 0.56 -> 0.70 ms in 5 rounds
by turns) although a bare commit loop in one process times both the same (~0.33 ms): the
issue asks that latency at low load not get worse. Where that comes from (the kernel's
worker that runs AIO fsyncs being woken on an idle machine is the first guess) and whether
to flush by the kernel only under load, FULL in the thread when idle, is the next step.

When the flush fails (an I/O error: the disk refused the data), the commit is in the WAL and
visible, and cannot be taken back. As PostgreSQL does on a failed fsync
(https://wiki.postgresql.org/wiki/Fsync_Errors), simgate does not try again and carry on: the
batch's callers hear :class:`~simgate.errors.FlushFailed`, the writer keeps the turn so no
other process writes on top, and every later write is refused until a restart (which recovers
from the WAL what reached the disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import functools
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass

from simgate.errors import FlushFailed

log = logging.getLogger(__name__)

# Linux system call numbers of native AIO (arch/x86/entry/syscalls/syscall_64.tbl;
# include/uapi/asm-generic/unistd.h for arm64). Elsewhere: no AIO, FULL in a thread.
_SYSCALLS: dict[str, tuple[int, int, int, int]] = {
    # machine: (io_setup, io_destroy, io_getevents, io_submit)
    "x86_64": (206, 207, 208, 209),
    "aarch64": (0, 1, 4, 2),
}
# include/uapi/linux/aio_abi.h
IOCB_CMD_FDSYNC = 3
IOCB_FLAG_RESFD = 1  # signal completion on aio_resfd (an eventfd)
# Requests in flight at once: a flush is one or two (the WAL, its directory on a new file),
# and a writer connection runs one commit at a time.
_QUEUE = 8
# O_NONBLOCK: whatever the path names, the open never waits (a FIFO would wait for a writer);
# it changes nothing for a regular file. Read-only: fdatasync needs no write access.
_WAL_OPEN = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


class _Iocb(ctypes.Structure):
    """``struct iocb`` of aio_abi.h, little-endian layout (both machines above)."""

    _fields_ = (
        ("aio_data", ctypes.c_uint64),
        ("aio_key", ctypes.c_uint32),
        ("aio_rw_flags", ctypes.c_int32),
        ("aio_lio_opcode", ctypes.c_uint16),
        ("aio_reqprio", ctypes.c_int16),
        ("aio_fildes", ctypes.c_uint32),
        ("aio_buf", ctypes.c_uint64),
        ("aio_nbytes", ctypes.c_uint64),
        ("aio_offset", ctypes.c_int64),
        ("aio_reserved2", ctypes.c_uint64),
        ("aio_flags", ctypes.c_uint32),
        ("aio_resfd", ctypes.c_uint32),
    )


class _IoEvent(ctypes.Structure):
    """``struct io_event`` of aio_abi.h."""

    _fields_ = (
        ("data", ctypes.c_uint64),
        ("obj", ctypes.c_uint64),
        ("res", ctypes.c_int64),
        ("res2", ctypes.c_int64),
    )


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class Aio:
    """One kernel AIO context with an eventfd for its completions: fdatasync requests only."""

    def __init__(self, numbers: tuple[int, int, int, int], syscall: Callable[..., int]) -> None:
        self._setup, self._destroy, self._getevents, self._submit = numbers
        self._syscall = syscall
        ctx = ctypes.c_ulong(0)
        if self._syscall(self._setup, _QUEUE, ctypes.byref(ctx)) != 0:
            raise _os_error()
        self._ctx = ctx
        self.eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._events = (_IoEvent * _QUEUE)()
        self._zero = _Timespec(0, 0)

    @classmethod
    def open(cls) -> Aio | None:
        """A context, or None where this machine has no native AIO (module docstring)."""
        numbers = _SYSCALLS.get(platform.machine())
        syscall = _syscall()
        if numbers is None or syscall is None or not hasattr(os, "eventfd"):
            return None
        try:
            return cls(numbers, syscall)
        except OSError as exc:  # ENOSYS, EAGAIN (aio-max-nr reached)
            log.debug("no native AIO: %s", exc)
            return None

    def submit(self, requests: list[tuple[int, int]]) -> None:
        """Ask for ``fdatasync`` of each ``(fd, tag)``; the tags come back with the results.
        Raises OSError when the kernel takes none of them."""
        iocbs = [
            _Iocb(
                aio_data=tag,
                aio_lio_opcode=IOCB_CMD_FDSYNC,
                aio_fildes=fd,
                aio_flags=IOCB_FLAG_RESFD,
                aio_resfd=self.eventfd,
            )
            for fd, tag in requests
        ]
        pointers = (ctypes.POINTER(_Iocb) * len(iocbs))(*(ctypes.pointer(i) for i in iocbs))
        taken = self._syscall(self._submit, self._ctx, len(iocbs), pointers)
        if taken < 0:
            raise _os_error()
        if taken != len(iocbs):  # not with a queue this deep; said if it ever happens
            raise OSError(errno.EAGAIN, f"the kernel took {taken} of {len(iocbs)} fsyncs")

    def completed(self) -> list[tuple[int, int]]:
        """The ``(tag, result)`` of the requests done since the last call, without waiting:
        result 0, or a negative errno."""
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self.eventfd)
        done: list[tuple[int, int]] = []
        while True:  # the counter was read: take every event now, not the first _QUEUE
            got = self._syscall(
                self._getevents, self._ctx, 0, _QUEUE, self._events, ctypes.byref(self._zero)
            )
            if got < 0:
                raise _os_error()
            done += [(self._events[i].data, self._events[i].res) for i in range(got)]
            if got < _QUEUE:
                return done

    def wait(self, count: int) -> list[tuple[int, int]]:
        """Block until ``count`` requests are done, and return them as :meth:`completed`
        does (the probe at open and the hard close, off the loop or holding it)."""
        events = (_IoEvent * count)()
        done: list[tuple[int, int]] = []
        while len(done) < count:
            left = count - len(done)
            got = self._syscall(self._getevents, self._ctx, left, left, events, None)
            if got < 0:
                error = _os_error()
                if error.errno != errno.EINTR:
                    raise error
                continue
            done += [(events[i].data, events[i].res) for i in range(got)]
        return done

    def close(self) -> None:
        """Destroy the context: the kernel waits for requests still running (an fsync cannot
        be cancelled)."""
        if self.eventfd < 0:
            return
        self._syscall(self._destroy, self._ctx)
        os.close(self.eventfd)
        self.eventfd = -1


@functools.cache
def _syscall() -> Callable[..., int] | None:
    """libc's ``syscall(2)``, from the symbols the process already has (no library search)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_long
    return function


def _os_error() -> OSError:
    code = ctypes.get_errno()
    return OSError(code, os.strerror(code))


Settled = Callable[[FlushFailed | None], None]


@dataclass
class _Pending:
    """A flush under way: who hears of it, and how many of its requests are not done."""

    fut: asyncio.Future[None]
    then: Settled
    left: int
    in_kernel: bool  # asked of the kernel (else of a thread: _in_thread)
    error: int = 0  # the first errno of its requests


@dataclass
class _Held:
    """The WAL file as opened here: its descriptor and identity."""

    fd: int
    dev: int
    ino: int


class WalFlush:
    """``fdatasync`` of the WAL of the SQLite file at ``path``, by the kernel, awaited on the
    event loop (module docstring). One per writer connection; flushes may overlap."""

    def __init__(self, path: str, aio: Aio, dir_fd: int) -> None:
        self.wal_path = path + "-wal"
        self._aio = aio
        self._dir_fd = dir_fd  # the database's directory, synced with a WAL file new here
        self._wal: _Held | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[int, _Pending] = {}  # by tag
        self._drained: asyncio.Future[None] | None = None  # aclose waits on it
        self._next_tag = 1
        self.flushes = 0  # flushes done (tests)

    @classmethod
    def open(cls, path: str) -> WalFlush | None:
        """The flush of ``path``'s WAL, or None where the kernel cannot do it for us. Blocking
        (it tries one request, an fsync of the database's directory): call it off the loop."""
        aio = Aio.open()
        if aio is None:
            return None
        directory = os.path.dirname(os.path.abspath(path))
        try:
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            aio.close()
            return None
        try:
            aio.submit([(dir_fd, 0)])
            ((_tag, result),) = aio.wait(1)
            if result < 0:  # EINVAL: a kernel before 4.18 has no AIO fsync
                raise OSError(-result, os.strerror(-result))
        except OSError as exc:
            log.debug("native AIO fsync refused: %s", exc)
            aio.close()
            os.close(dir_fd)
            return None
        return cls(path, aio, dir_fd)

    def start(self, then: Settled) -> asyncio.Future[None]:
        """Have every WAL frame written before this call reach the disk. ``then`` hears the
        outcome first (None, or the :class:`FlushFailed`), on the loop the moment the kernel
        says so, even when the returned future was cancelled; the future resolves after it
        (or raises the :class:`FlushFailed`)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            loop.add_reader(self._aio.eventfd, self._on_completed)
        tag, self._next_tag = self._next_tag, self._next_tag + 1
        fut: asyncio.Future[None] = loop.create_future()
        try:
            requests = [(fd, tag) for fd in self._fds()]
            self._aio.submit(requests)
        except OSError as exc:
            # The kernel took no request (a full queue, a file it cannot fsync this way), or
            # the WAL could not be opened: the fsync in a thread says what the disk says.
            log.debug("AIO fsync not taken (%s): fdatasync in a thread", exc)
            self._pending[tag] = _Pending(fut, then, 1, in_kernel=False)
            self._in_thread(tag)
            return fut
        self._pending[tag] = _Pending(fut, then, len(requests), in_kernel=True)
        return fut

    def _fds(self) -> list[int]:
        """What to sync: the WAL, and the directory too when the WAL file is new here (the
        path names another file than the one held, or none was held yet)."""
        st = os.stat(self.wal_path)
        held = self._wal
        if held is not None and (held.dev, held.ino) == (st.st_dev, st.st_ino):
            return [held.fd]
        if held is not None:
            self._wal = None
            os.close(held.fd)
        fd = os.open(self.wal_path, _WAL_OPEN)
        st = os.fstat(fd)
        self._wal = _Held(fd, st.st_dev, st.st_ino)
        return [fd, self._dir_fd]

    def _in_thread(self, tag: int) -> None:
        """``fdatasync`` of the WAL (and a ``fsync`` of its directory) in a thread, settled
        as the kernel's requests are (:meth:`_settle`)."""

        def sync() -> None:
            fd = os.open(self.wal_path, _WAL_OPEN)
            try:
                os.fdatasync(fd)
                os.fsync(self._dir_fd)
            finally:
                os.close(fd)

        def done(result: asyncio.Future[None]) -> None:
            exc = result.exception()
            error = (exc.errno or errno.EIO) if isinstance(exc, OSError) else 0
            if exc is not None and not isinstance(exc, OSError):
                log.error("flush of %s failed", self.wal_path, exc_info=exc)
                error = errno.EIO
            self._settle(tag, -error)

        assert self._loop is not None  # start() set it
        running = self._loop.run_in_executor(None, sync)
        running.add_done_callback(done)

    def _on_completed(self) -> None:
        """The eventfd is readable: settle the flushes whose requests are all done."""
        try:
            done = self._aio.completed()
        except OSError as exc:  # the context is gone: no flush pending can be trusted
            self._fail_pending(exc)
            return
        for tag, result in done:
            self._settle(tag, result)

    def _settle(self, tag: int, result: int) -> None:
        """One request of flush ``tag`` is done with ``result`` (0 or a negative errno); once
        all of its requests are, tell its ``then`` and its future."""
        entry = self._pending.get(tag)
        if entry is None:
            return
        entry.left -= 1
        if result < 0 and not entry.error:
            entry.error = -result
        if entry.left:
            return
        del self._pending[tag]
        if not self._pending and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        failure = None
        if entry.error:
            failure = FlushFailed(self.wal_path, OSError(entry.error, os.strerror(entry.error)))
        else:
            self.flushes += 1
        entry.then(failure)
        if entry.fut.done() or entry.fut.get_loop().is_closed():  # its caller went away
            return
        if failure is not None:
            entry.fut.set_exception(failure)
        else:
            entry.fut.set_result(None)

    def _fail_pending(self, exc: OSError) -> None:
        for tag in list(self._pending):
            entry = self._pending[tag]
            entry.left = 1
            self._settle(tag, -(exc.errno or errno.EIO))

    async def aclose(self) -> None:
        """Stop once the flushes in flight are done (their callers may have gone)."""
        if self._pending and self._loop is not None:  # their futures may be cancelled
            self._drained = self._loop.create_future()
            await self._drained
        self.close()

    def close(self) -> None:
        """Stop now, from any thread: on the loop that watches the completions when it runs
        elsewhere (its selector is not thread-safe); the kernel finishes the fsyncs in
        flight first (``io_destroy``)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop and loop.is_running():
                loop.call_soon_threadsafe(self._close_here)
                return
        self._close_here()

    def _close_here(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._aio.eventfd)
        # The kernel's requests still in flight (a hard stop: aclose waited for them) are
        # waited for and settled as they come out, before the context goes.
        in_kernel = sum(e.left for e in self._pending.values() if e.in_kernel)
        try:
            done = self._aio.wait(in_kernel) if in_kernel else []
        except OSError as exc:
            self._fail_pending(exc)
        else:
            for tag, result in done:
                self._settle(tag, result)
        self._aio.close()
        held, self._wal = self._wal, None
        for fd in (held.fd if held is not None else -1, self._dir_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._dir_fd = -1
