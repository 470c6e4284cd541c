"""Propagation's second thread: frames loaded (decoded + encoded) ahead of the matching, and the
matching's independent pieces shared with that thread whenever it has nothing to load.

Torch-only; no Qt. :class:`LoadAhead` owns the thread; :class:`SharedWork` is one frame's pieces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar, cast

import torch

T = TypeVar("T")
R = TypeVar("R")


class SharedWork(Generic[R]):
    """Items ``0..n-1`` computed by ``compute(i)`` on the owning thread and on helpers that join
    in when they are free, each taking the next unclaimed item.

    ``run()`` (the owner, once) computes items until none is left, waits for the items helpers
    are still computing and returns all results in order, raising a helper's error; ``help()``
    (any thread, at any time, also after ``run`` returned) computes unclaimed items and returns
    when none is left. The owner never waits for a helper that has not started: with the
    helper busy elsewhere it computes every item itself.
    """

    def __init__(self, n: int, compute: Callable[[int], R]) -> None:
        self._n = n
        self._compute = compute
        self._results: list[R | None] = [None] * n
        self._next = 0
        self._busy = 0  # items claimed by helpers and not yet finished
        self._error: BaseException | None = None
        self._cond = threading.Condition()

    @property
    def unclaimed(self) -> bool:
        with self._cond:
            return self._next < self._n and self._error is None

    def _claim(self, helper: bool) -> int | None:
        with self._cond:
            if self._next >= self._n or self._error is not None:
                return None
            self._next += 1
            self._busy += helper
            return self._next - 1

    def help(self) -> None:
        while (i := self._claim(True)) is not None:
            try:
                self._results[i] = self._compute(i)
            except BaseException as exc:  # handed to the owner, which raises it
                with self._cond:
                    self._error = exc
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def run(self) -> list[R]:
        while (i := self._claim(False)) is not None:
            try:
                self._results[i] = self._compute(i)
            except BaseException as exc:
                with self._cond:  # the helpers stop claiming
                    self._error = exc
                raise
        with self._cond:
            self._cond.wait_for(lambda: self._busy == 0)
            if self._error is not None:
                raise self._error
        return cast("list[R]", self._results)


class LoadAhead(Generic[T]):
    """Loads the next frames (``load(index)``: decode + encode) on a worker thread while the
    caller matches, for ``order``'s indices in turn, up to ``depth`` frames ahead of the one
    last asked for. The worker loads the frame the caller asks for next first, then helps with
    the caller's :class:`SharedWork` (:meth:`share`), then loads further ahead.

    The first frame is loaded inline with all of torch's threads (time to first frame is
    unchanged); from then on the caller and the worker each get half of them (at least one;
    with fewer than two threads, or ``enabled`` False, everything runs inline and ``share``
    only runs the work). ``close`` stops the worker (after the load it is in) and restores
    torch's thread count. ``get(i)`` returns what ``load(i)`` returns and raises what it
    raises, in the caller's thread.
    """

    def __init__(
        self,
        load: Callable[[int], T],
        order: Sequence[int],
        enabled: bool = True,
        depth: int = 2,
    ) -> None:
        self._load = load
        self._order = list(order)
        self._position = {idx: i for i, idx in enumerate(self._order)}
        self._threads = torch.get_num_threads()
        self._enabled = enabled and self._threads >= 2
        self._depth = max(1, depth)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        self._next = 0  # position of the next load the worker may start
        self._limit = 0  # the worker loads positions below this
        self._needed = 0  # the position the caller asks for next
        self._done: dict[int, tuple[bool, object]] = {}  # position -> (ok, value or error)
        self._loading: int | None = None
        self._work: SharedWork | None = None

    def get(self, idx: int) -> T:
        pos = self._position.get(idx)
        if pos is None or not self._enabled:
            return self._load(idx)
        with self._cond:
            ahead = pos in self._done or self._loading == pos or self._next <= pos < self._limit
            if self._thread is None or not ahead:
                # first frame, or asked out of order: load it here, restart the worker after it
                self._done.clear()
                self._next = self._limit = pos + 1
                item: tuple[bool, object] | None = None
            else:  # loaded, being loaded, or next in the worker's queue (``_ahead`` put it first)
                self._cond.wait_for(lambda: pos in self._done)
                item = self._done.pop(pos)
                for stale in [p for p in self._done if p < pos]:
                    del self._done[stale]
        if item is None:
            item = (True, self._load(idx))
        self._ahead(pos)
        ok, value = item
        if not ok:
            raise cast(BaseException, value)
        return cast(T, value)

    def share(self, work: SharedWork[R]) -> list[R]:
        """``work.run()`` with the worker helping whenever it is between loads."""
        with self._cond:
            if self._thread is not None:
                self._work = work
                self._cond.notify_all()
        try:
            return work.run()
        finally:
            with self._cond:
                if self._work is work:
                    self._work = None

    def _ahead(self, pos: int) -> None:
        """Let the worker load up to ``depth`` positions after ``pos``."""
        if pos + 1 >= len(self._order):
            return
        with self._cond:
            self._needed = pos + 1
            self._limit = min(len(self._order), pos + 1 + self._depth)
            self._next = max(self._next, pos + 1)
            if self._thread is None:
                torch.set_num_threads(max(1, self._threads // 2))
                self._thread = threading.Thread(
                    target=self._worker, name="trackpaint-load", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _open_work(self) -> SharedWork | None:
        """The caller's shared work while it has unclaimed items (call holding the lock)."""
        return self._work if self._work is not None and self._work.unclaimed else None

    def _worker(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stop or self._open_work() is not None or self._next < self._limit
                )
                if self._stop:
                    return
                # the frame asked for next comes first, then the caller's work, then the rest
                urgent = self._next < self._limit and self._next <= self._needed
                work = self._open_work()
                pos = None
                if urgent or work is None:
                    work = None
                    pos, self._next = self._next, self._next + 1
                    self._loading = pos
            if work is not None:
                work.help()
                continue
            assert pos is not None
            try:
                result: tuple[bool, object] = (True, self._load(self._order[pos]))
            except BaseException as exc:  # raised by get() in the caller's thread
                result = (False, exc)
            with self._cond:
                self._loading = None
                if not self._stop:
                    self._done[pos] = result
                self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
            torch.set_num_threads(self._threads)
        self._done.clear()
        self._stop = False
