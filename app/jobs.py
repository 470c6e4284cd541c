"""Long work on a worker QThread: progress, cancel and errors come back as queued signals.

A :class:`Job` wraps a plain function ``work(report, cancelled) -> result`` that runs on its own
QThread; ``report(value)`` forwards a progress value to the GUI thread and ``cancelled()`` polls
the cancel flag. The GUI thread never iterates, never calls ``processEvents`` and never blocks,
except in :meth:`JobRunner.shutdown`, which cancels and joins every thread when the window closes.

:func:`propagation_work` adapts a :class:`~tracker_core.session.PropagationJob` (a generator the
worker iterates; ``job.close()`` is called on that same thread, ``job.cancel()`` from the GUI);
:func:`adapt_work` runs test-time adaptation of a learned encoder on the open video.
"""

from __future__ import annotations

import contextlib
import threading
import traceback
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from tracker_core.encoder import LearnedEncoder
from tracker_core.errors import FrameDamaged, TrackpaintError
from tracker_core.session import PropagationJob
from tracker_core.video import VideoSource

if TYPE_CHECKING:
    from tracker_core.train.adapt import AdaptConfig

Report = Callable[[object], None]
Cancelled = Callable[[], bool]
WorkFn = Callable[[Report, Cancelled], Any]
_THREADS: weakref.WeakSet[QThread] = weakref.WeakSet()


def running_threads() -> list[QThread]:
    """Worker threads that are still running (tests assert none is left at teardown)."""
    return [t for t in list(_THREADS) if t.isRunning()]


class _Thread(QThread):
    """Runs one work function; its signals are emitted on the worker thread (queued to the GUI)."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str, str)  # one-line message, traceback (empty for TrackpaintError)

    def __init__(self, work: WorkFn, cancel_event: threading.Event) -> None:
        super().__init__()
        self._work = work
        self._cancel = cancel_event
        _THREADS.add(self)

    def run(self) -> None:
        try:
            result = self._work(self.progressed.emit, self._cancel.is_set)
        except TrackpaintError as exc:
            self.failed.emit(str(exc), "")
        except Exception as exc:  # surfaced to the user as a dialog; the app keeps running
            self.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        else:
            self.succeeded.emit(result)


class Job(QObject):
    """One background task. Signals arrive on the GUI thread; exactly one of ``succeeded`` /
    ``failed`` is emitted, then ``finished`` once the thread has ended.

    ``on_cancel`` runs on the GUI thread when :meth:`cancel` is called (e.g. ``job.cancel`` of a
    propagation job, which is thread-safe)."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str, str)
    finished = Signal()

    def __init__(
        self,
        name: str,
        work: WorkFn,
        on_cancel: Callable[[], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self._cancel_event = threading.Event()
        self._on_cancel = on_cancel
        self._thread = _Thread(work, self._cancel_event)
        self._thread.progressed.connect(self.progressed)
        self._thread.succeeded.connect(self.succeeded)
        self._thread.failed.connect(self.failed)
        self._thread.finished.connect(self.finished)

    @property
    def cancelled(self) -> bool:
        return self._cancel_event.is_set()

    @property
    def running(self) -> bool:
        return self._thread.isRunning()

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        """Ask the work to stop (it keeps what is done); returns at once."""
        self._cancel_event.set()
        if self._on_cancel is not None:
            self._on_cancel()

    def wait(self, timeout_ms: int = -1) -> bool:
        """Join the worker thread (only at shutdown or in tests)."""
        if timeout_ms < 0:
            return self._thread.wait()
        return self._thread.wait(timeout_ms)


class JobRunner(QObject):
    """Owns the running jobs: at most one *exclusive* job (propagation, adaptation) at a time;
    other jobs (export) may run beside it. ``busy_changed`` tells views to enable actions."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._exclusive: Job | None = None

    @property
    def exclusive(self) -> Job | None:
        """The running propagation/adaptation job, if any."""
        return self._exclusive

    @property
    def busy(self) -> bool:
        return self._exclusive is not None

    def start(self, job: Job, exclusive: bool = True) -> Job:
        """Start ``job``; RuntimeError when an exclusive job is asked for while one runs."""
        if exclusive and self._exclusive is not None:
            raise RuntimeError(f"{self._exclusive.name} is still running; cancel it first")
        job.setParent(self)
        self._jobs.append(job)
        if exclusive:
            self._exclusive = job
        job.finished.connect(lambda: self._finished(job))
        job.start()
        if exclusive:
            self.busy_changed.emit(True)
        return job

    def cancel(self) -> None:
        """Cancel the exclusive job (no-op when none)."""
        if self._exclusive is not None:
            self._exclusive.cancel()

    def shutdown(self) -> None:
        """Cancel every job and join its thread (used when the window closes)."""
        for job in list(self._jobs):
            job.cancel()
        for job in list(self._jobs):
            job.wait()

    def _finished(self, job: Job) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        if job is self._exclusive:
            self._exclusive = None
            self.busy_changed.emit(False)
        job.deleteLater()


def propagation_work(job: PropagationJob) -> WorkFn:
    """Work function iterating a propagation job on the worker thread; reports the warm-up
    (:class:`~tracker_core.propagate.WarmupProgress`, keyframes being encoded) and each
    :class:`~tracker_core.session.PropagationProgress`; returns the frames written."""

    def work(report: Report, cancelled: Cancelled) -> int:
        job.on_warmup = report
        try:
            for progress in job:
                report(progress)
                if cancelled():
                    break
        finally:
            job.close()  # on the iterating thread, as the session requires
        return job.done

    return work


@dataclass(frozen=True)
class AdaptProgress:
    """One optimisation step of test-time adaptation."""

    step: int
    steps: int
    loss: float


def adapt_work(
    encoder: LearnedEncoder, video_path: Path, steps: int, config: AdaptConfig
) -> WorkFn:
    """Work function fine-tuning a copy of ``encoder``'s network on the video (self-supervised,
    :func:`tracker_core.train.adapt.adapt`). Returns the adapted encoder, or None when cancelled
    (the model is then unchanged). Frames are read through a private VideoSource, at most
    ``config.max_frames`` of them spread evenly over the video."""

    def work(report: Report, cancelled: Cancelled) -> LearnedEncoder | None:
        from tracker_core.train.adapt import adapt

        with VideoSource.open(video_path) as video:
            n = len(video)
            picks = np.unique(np.linspace(0, n - 1, min(n, config.max_frames)).round())
            frames = []
            for i in picks:
                with contextlib.suppress(FrameDamaged):  # damaged frames teach nothing
                    frames.append(video.frame(int(i)))
        tuned = adapt(
            encoder.net,
            frames,
            steps,
            config=config,
            device=encoder.device,
            progress=lambda step, total, loss: report(AdaptProgress(step, total, float(loss))),
            should_cancel=cancelled,
        )
        if tuned is encoder.net or cancelled():
            return None
        return LearnedEncoder(
            tuned,
            name=f"{encoder.name}+adapted",
            lab_weight=encoder.lab_weight,
            device=encoder.device,
        )

    return work
