"""Data-parallel training over MPI: the process group and its collectives (PyTorch's ``torch.distributed``).

    # mpiexec -n 2 python train.py        (each process runs the same script)
    import dlbasics.distributed as dist
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    dist.all_reduce(metrics)              # in place, summed over the ranks: metrics (K,) ndarray
    dist.destroy_process_group()

The MPI backend is mpi4py over the Open MPI wheel (``pip install 'dlbasics[mpi]'`` brings both and
``mpiexec``). A script started without ``mpiexec`` gets a world of one process and never imports mpi4py,
so the same code runs on one process unchanged. Collectives must be called by every rank in the same order
(MPI's rule); each one is counted, which is what makes the failure handling below exact.

**A rank that fails ends the job within about a second instead of leaving the others blocked forever in a
collective.** What Open MPI does by itself (measured with the 5.0 wheel): a rank killed by a signal or leaving
with ``os._exit(code != 0)`` makes ``mpiexec`` kill the job; but a rank that raises or calls ``sys.exit``
runs ``MPI_Finalize`` at exit, which waits for the others, who wait in their collective for it: a hang. So
a rank that leaves (any exit, or ``destroy_process_group``) tells the others how many collectives it
completed, and a watchdog thread in each rank (woken every 0.1 s, only ever polling) aborts the job as soon
as its rank waits in a collective beyond that count, one that can never complete. The same thread aborts
a collective that waits longer than ``timeout`` (a rank that hangs while alive). Either way it prints one
line saying why and calls ``MPI_Abort``, and ``mpiexec`` exits non-zero.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import warnings
from datetime import timedelta
from typing import Any

import numpy as np

from dlbasics.errors import ConfigError, MissingDependencyError
from dlbasics.tensor import Tensor


class ReduceOp:
    """The reductions of ``all_reduce``, as ``torch.distributed.ReduceOp`` (plain strings: ``op="sum"`` works too)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"


_OPS = ("sum", "avg", "product", "min", "max")
_BACKENDS = ("mpi",)
# PyTorch's default for its CPU backends; only time spent inside one collective counts toward it
DEFAULT_TIMEOUT = timedelta(minutes=30)
# variables that MPI launchers set in the processes they start (Open MPI, PMIx, MPICH's Hydra, Slurm's PMI)
_LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK")
_POLL = 0.1  # seconds between the watchdog's looks: how fast a failed rank ends the job
_LEAVE_TAG = 7


class _Group:
    """The process group: this process's rank in a world of ``size``; ``comm`` is None in a world of one
    without MPI, where every collective is the identity."""

    def __init__(self, rank: int, size: int, comm: Any = None, mpi: Any = None, timeout: float = 0.0) -> None:
        self.rank, self.size, self.comm, self.mpi, self.timeout = rank, size, comm, mpi, timeout
        self.completed = 0  # collectives this rank has finished: the same count on every rank between calls
        self._current: tuple[int, str, float] | None = None  # (number, name, start) of the collective under way
        # rank -> the collectives it completed before it left; replaced, never mutated, as two threads read it
        self._left: dict[int, int] = {}
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._notices: Any = None  # a duplicate of the communicator: leave notices never match a collective
        if comm is not None and size > 1:
            self._notices = comm.Dup()
            if mpi.Query_thread() >= mpi.THREAD_MULTIPLE:
                self._watchdog = threading.Thread(target=self._watch, name="dlbasics-distributed-watchdog",
                                                  daemon=True)
                self._watchdog.start()
            else:
                warnings.warn("dlbasics.distributed: MPI gives no MPI_THREAD_MULTIPLE, so a failed or hung rank "
                              "cannot be detected while this rank waits in a collective", RuntimeWarning,
                              stacklevel=3)

    # ---- one collective -------------------------------------------------------------------------
    def run(self, name: str, call: Any, *args: Any, **kwargs: Any) -> None:
        """Run one MPI collective under the watchdog's eye: ``call(*args, **kwargs)``."""
        number = self.completed + 1
        if self._watchdog is None and self._notices is not None:
            self._receive_notices()  # no thread to do it: look before blocking
        self._check_left(number, name)
        self._current = (number, name, time.monotonic())
        try:
            call(*args, **kwargs)  # mpi4py releases the GIL while it blocks, so the watchdog runs meanwhile
        finally:
            self._current = None
        self.completed = number

    def _check_left(self, number: int, name: str) -> None:
        gone = {r: n for r, n in self._left.items() if n < number}
        if gone:
            r, n = min(gone.items())
            self._abort(f"rank {r} exited (or left the process group) after {n} collectives, so {name} "
                        f"(collective {number}) can never complete")

    def _abort(self, why: str) -> None:
        sys.stderr.write(f"dlbasics.distributed: rank {self.rank} of {self.size}: {why}; aborting the job\n")
        sys.stderr.flush()
        self.mpi.COMM_WORLD.Abort(1)

    # ---- the watchdog thread --------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stop.wait(_POLL):
            self._receive_notices()
            current = self._current
            if current is None:
                continue
            number, name, start = current
            self._check_left(number, name)
            if time.monotonic() - start > self.timeout:
                self._abort(f"{name} (collective {number}) waited more than {self.timeout:g} s for the other "
                            "ranks: one of them hung or died (init_process_group(timeout=...) sets the limit)")

    def _receive_notices(self) -> None:
        mpi = self.mpi
        status = mpi.Status()
        while self._notices.Iprobe(source=mpi.ANY_SOURCE, tag=_LEAVE_TAG, status=status):
            count = np.empty(1, dtype=np.int64)
            self._notices.Recv(count, source=status.Get_source(), tag=_LEAVE_TAG)
            self._left = {**self._left, status.Get_source(): int(count[0])}

    # ---- leaving --------------------------------------------------------------------------------
    def leave(self) -> None:
        """Stop the watchdog and tell every other rank how many collectives this one completed."""
        if self._watchdog is not None:
            self._stop.set()
            self._watchdog.join()  # before MPI_Finalize: the thread must not call MPI after it
            self._watchdog = None
        if self._notices is not None and not self.mpi.Is_finalized():
            count = np.array([self.completed], dtype=np.int64)
            # 8 bytes go eagerly: the sends complete at once, whatever the receivers are doing
            requests = [self._notices.Isend(count, dest=r, tag=_LEAVE_TAG) for r in range(self.size) if r != self.rank]
            self.mpi.Request.Waitall(requests)
            self._notices = None


_group: _Group | None = None  # the default process group, as in torch.distributed: one per process


def _launched_by_mpi() -> bool:
    return any(v in os.environ for v in _LAUNCHER_VARS)


def launched_world_size() -> int:
    """How many processes ``mpiexec`` started alongside this one (read from the launcher's environment, before
    any MPI call); 1 for a process started without it."""
    for var in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 1


def _import_mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError:
        raise MissingDependencyError("this process was started by mpiexec, but data-parallel training needs mpi4py: "
                                     "pip install 'dlbasics[mpi]'") from None
    return MPI


def _seconds(timeout: timedelta | float | None) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if not seconds > 0:
        raise ConfigError(f"init_process_group: timeout must be positive (a timedelta or seconds), got {timeout!r}")
    return seconds


def init_process_group(backend: str | None = "mpi", timeout: timedelta | float | None = None) -> None:
    """Join the default process group: every process started by ``mpiexec -n N`` becomes one rank of N.

    Started without ``mpiexec`` the world is this one process (rank 0 of 1) and mpi4py is not imported.
    ``backend``: ``"mpi"`` (None means the same). ``timeout`` (a ``timedelta`` or seconds, default 30 min):
    how long one collective may wait for the other ranks before the job is aborted.
    """
    global _group
    if backend is None:
        backend = "mpi"
    if backend not in _BACKENDS:
        raise ConfigError(f"init_process_group: unknown backend {backend!r}; choose from {', '.join(_BACKENDS)}")
    if _group is not None:
        raise ConfigError("init_process_group: the default process group is already initialized "
                          "(call destroy_process_group() first)")
    seconds = _seconds(timeout)
    if not _launched_by_mpi():
        _group = _Group(0, 1)
        return
    MPI = _import_mpi()
    world = MPI.COMM_WORLD
    expected = os.environ.get("OMPI_COMM_WORLD_SIZE") or os.environ.get("PMI_SIZE")
    if expected is not None and int(expected) != world.Get_size():
        raise ConfigError(f"init_process_group: mpiexec started {expected} processes but MPI sees a world of "
                          f"{world.Get_size()}: mpiexec and mpi4py come from different MPI libraries "
                          "(use the mpiexec that pip install 'dlbasics[mpi]' puts beside python)")
    _group = _Group(world.Get_rank(), world.Get_size(), world.Dup(), MPI, seconds)  # our own communicator
    _register_exit()


_exit_registered = False


def _register_exit() -> None:
    # registered after mpi4py is imported, so it runs before mpi4py's MPI_Finalize (atexit is last in, first out)
    global _exit_registered
    if not _exit_registered:
        atexit.register(_leave_at_exit)
        _exit_registered = True


def _leave_at_exit() -> None:
    if _group is not None:
        _group.leave()


def destroy_process_group() -> None:
    """Leave the default process group. The other ranks may not call any further collective."""
    global _group
    group = _require("destroy_process_group")
    group.leave()
    _group = None


def is_initialized() -> bool:
    """Whether ``init_process_group`` has been called (and not undone by ``destroy_process_group``)."""
    return _group is not None


def _require(caller: str) -> _Group:
    if _group is None:
        raise ConfigError(f"{caller}: the default process group has not been initialized; "
                          "call dlbasics.distributed.init_process_group() first")
    return _group


def get_rank() -> int:
    """This process's rank, 0 .. world_size - 1; rank 0 is the one that writes files and prints."""
    return _require("get_rank").rank


def get_world_size() -> int:
    """The number of processes in the default process group."""
    return _require("get_world_size").size


def _buffer(array: np.ndarray | Tensor, caller: str) -> np.ndarray:
    arr = array.data if isinstance(array, Tensor) else array
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{caller}: expected a NumPy array or a Tensor (changed in place), got {type(array).__name__}")
    if not arr.flags.writeable:
        raise ValueError(f"{caller}: the array is read-only; it is changed in place")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"{caller}: cannot reduce or send arrays of dtype {arr.dtype}; use a float, int or uint array")
    return arr


def _in_place(arr: np.ndarray, collective: Any) -> None:
    """Run ``collective(buf)`` on a contiguous buffer holding ``arr``'s values and leave the result in ``arr``."""
    if arr.flags.c_contiguous:
        collective(arr)
    else:
        buf = np.ascontiguousarray(arr)  # MPI reads and writes a flat block of memory
        collective(buf)
        arr[...] = buf


def all_reduce(array: np.ndarray | Tensor, op: str = ReduceOp.SUM) -> None:
    """Reduce ``array`` over all ranks, in place, leaving the same result on every rank.

    ``array``: an ndarray (or a Tensor's data) of any shape, with the same shape and dtype on every rank.
    ``op``: ``"sum"``, ``"avg"`` (sum / world_size; float arrays only), ``"product"``, ``"min"``, ``"max"``.
    """
    if op not in _OPS:
        raise ConfigError(f"all_reduce: unknown op {op!r}; choose from {', '.join(_OPS)}")
    arr = _buffer(array, "all_reduce")
    if op == ReduceOp.AVG and arr.dtype.kind != "f":
        raise TypeError(f"all_reduce: op 'avg' needs a float array, got {arr.dtype}")
    group = _require("all_reduce")
    if group.size == 1:
        return
    MPI = group.mpi
    mpi_op = {"sum": MPI.SUM, "avg": MPI.SUM, "product": MPI.PROD, "min": MPI.MIN, "max": MPI.MAX}[op]
    _in_place(arr, lambda buf: group.run("all_reduce", group.comm.Allreduce, MPI.IN_PLACE, buf, op=mpi_op))
    if op == ReduceOp.AVG:
        arr /= group.size


def broadcast(array: np.ndarray | Tensor, src: int = 0) -> None:
    """Copy rank ``src``'s ``array`` into every other rank's ``array`` (in place; same shape and dtype everywhere)."""
    arr = _buffer(array, "broadcast")
    group = _require("broadcast")
    if isinstance(src, bool) or not isinstance(src, int | np.integer) or not 0 <= src < group.size:
        raise ConfigError(f"broadcast: src must be a rank in 0 .. {group.size - 1}, got {src!r}")
    if group.size == 1:
        return
    _in_place(arr, lambda buf: group.run("broadcast", group.comm.Bcast, buf, root=int(src)))


def same_on_every_rank(text: str) -> bool:
    """Whether every rank passed the same ``text`` (compared by a 56-bit digest, in one all-reduce of its largest
    and its negated smallest value: equal everywhere iff max == min)."""
    import hashlib  # not hash(): Python salts str hashes per process

    digest = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=7).digest(), "little")
    extremes = np.array([digest, -digest], dtype=np.int64)
    all_reduce(extremes, op=ReduceOp.MAX)
    return bool(extremes[0] == -extremes[1])


def broadcast_text(text: str | None, src: int = 0) -> str:
    """Rank ``src``'s ``text`` on every rank (UTF-8 bytes, no pickle); other ranks may pass None."""
    group = _require("broadcast_text")
    if group.size == 1:
        return "" if text is None else text
    data = (text or "").encode() if group.rank == src else b""
    size = np.array([len(data)], dtype=np.int64)
    broadcast(size, src)
    buf = np.frombuffer(data, dtype=np.uint8).copy() if group.rank == src else np.empty(int(size[0]), dtype=np.uint8)
    broadcast(buf, src)
    return buf.tobytes().decode()


def all_gather_text(text: str) -> list[str]:
    """Every rank's ``text``, in rank order, on every rank (JSON results of work shared out among the ranks)."""
    group = _require("all_gather_text")
    return [broadcast_text(text if group.rank == r else None, src=r) for r in range(group.size)]


def barrier() -> None:
    """Wait until every rank has called ``barrier()``."""
    group = _require("barrier")
    if group.size > 1:
        group.run("barrier", group.comm.Barrier)


__all__ = ["DEFAULT_TIMEOUT", "ReduceOp", "all_gather_text", "all_reduce", "barrier", "broadcast", "broadcast_text",
           "destroy_process_group", "get_rank", "get_world_size", "init_process_group", "is_initialized",
           "launched_world_size", "same_on_every_rank"]
