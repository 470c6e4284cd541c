"""A cancellable propagation run over a session's project: :class:`PropagationJob`.

A job owns the loop only: it asks the propagator for frames and hands each result to the
:class:`JobHost` the session gave it, which decides what is written (per-object stops, merge
with other objects' labels, provenance, undo data) under the session's lock. The host is the
job's whole view of the session — the job touches no private session state, so a job can be
driven by any object with these methods (tests use a fake one).

:func:`propagation_stop`, :func:`restrict_labels` and the lazily read reference mappings are
the pure helpers both sides share; :mod:`tracker_core.session` re-exports them. Nothing here
imports Qt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from tracker_core.history import Step
from tracker_core.labels import FrameLabels
from tracker_core.project import Project
from tracker_core.propagate import FeatureCache, PropagatedFrame, WarmupProgress
from tracker_core.propagator import Propagator


@dataclass(frozen=True)
class PropagationProgress:
    """One propagated frame: ``done`` of ``total`` frames, the frame index written, its
    confidence, the mean compute time so far in ms per frame, and the run direction."""

    done: int
    total: int
    frame: int
    confidence: float
    ms_per_frame: float
    direction: Literal["forward", "backward"]


def propagation_stop(keyframes: Sequence[int], start: int, step: int, num_frames: int) -> int:
    """Exclusive stop index of a run from ``start`` in direction ``step`` (+1/-1): the nearest
    keyframe beyond ``start`` in that direction, else the video end (``num_frames`` or -1)."""
    if step > 0:
        later = [k for k in keyframes if k > start]
        return min(later) if later else num_frames
    earlier = [k for k in keyframes if k < start]
    return max(earlier) if earlier else -1


def restrict_labels(labels: FrameLabels, objects: Iterable[int]) -> FrameLabels:
    """The labels of ``objects`` only: other ids' mask pixels become background (0) and other
    keypoint objects are dropped. ``(H, W) uint8`` mask in, same shape out."""
    keep = set(objects)
    mask = labels.mask
    if mask is not None:
        lut = np.zeros(256, np.uint8)
        ids = [i for i in keep if 1 <= i <= 255]
        lut[ids] = ids
        mask = lut[mask]
    return FrameLabels(mask, {k: v for k, v in labels.keypoints.items() if k in keep})


class LazyReferences(Mapping[int, FrameLabels]):
    """Keyframe labels read from the project on access (keeps memory bounded), restricted to
    ``objects`` (:func:`restrict_labels`)."""

    def __init__(self, project: Project, keys: Iterable[int], objects: Iterable[int]) -> None:
        self._project = project
        self._keys = tuple(sorted(set(keys)))
        self._objects = tuple(objects)

    def __getitem__(self, key: int) -> FrameLabels:
        if key not in self._keys:
            raise KeyError(key)
        return restrict_labels(self._project.labels(key), self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class StartedReferences(LazyReferences):
    """Keyframes read lazily, plus the start frame's labels captured when the job began."""

    def __init__(
        self,
        project: Project,
        keys: Iterable[int],
        start: int,
        start_labels: FrameLabels,
        objects: Iterable[int],
    ) -> None:
        objects = tuple(objects)
        super().__init__(project, [*keys, start], objects)
        self._start = start
        self._start_labels = restrict_labels(start_labels, objects)

    def __getitem__(self, key: int) -> FrameLabels:
        if key == self._start:
            return self._start_labels
        return super().__getitem__(key)


class JobHost(Protocol):
    """What a :class:`PropagationJob` needs of the session that made it (all of it).

    ``running`` maps object id -> ``(exclusive stop, origin keyframe)``; ``direction`` is +1/-1.
    """

    @property
    def project(self) -> Project:
        """The document (read only; every write goes through :meth:`write_frame`)."""
        ...

    def frame(self, index: int) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB frame ``index`` of the video (called on the job's thread)."""
        ...

    def run_objects(self, start: int) -> tuple[int, ...]:
        """The objects a run from ``start`` propagates."""
        ...

    def run_origin(self, start: int, direction: int, object_id: int) -> int:
        """The keyframe of ``object_id`` a run from ``start`` in ``direction`` derives from."""
        ...

    def run_references(
        self, start: int, start_labels: FrameLabels, objects: Sequence[int]
    ) -> Mapping[int, FrameLabels]:
        """The run's long-term memory (must include ``start`` with ``start_labels``)."""
        ...

    def feature_cache(self, propagator: Propagator) -> FeatureCache | None:
        """The session's cache of encoded frames for ``propagator``, or None."""
        ...

    def open_run(self, label: str) -> Step:
        """A new open undo step for the run (see :meth:`tracker_core.history.History.open_step`)."""
        ...

    def write_frame(
        self,
        run: Step,
        start: int,
        direction: int,
        running: dict[int, tuple[int, int]],
        result: PropagatedFrame,
        prev: int,
    ) -> bool:
        """Store one propagated frame for the objects still running (dropping from ``running``
        the objects that stop here); False when none is left."""
        ...

    def finish_run(self, run: Step, ms_per_frame: float | None) -> None:
        """The run has ended (done, cancelled or failed): close its undo step."""
        ...


class PropagationJob:
    """A cancellable propagation run; iterate it (e.g. on a worker thread) to do the work.

    Iterating yields one :class:`PropagationProgress` per frame written. ``cancel()`` may be called
    from any thread and takes effect before the next frame is computed; ``close()`` cancels from
    the iterating side. Frames already written are kept; the run is a single undo step.
    ``objects`` are the objects it propagates; ``stops`` gives, per direction, each object's
    exclusive stop (its own next keyframe or the video end). ``total`` is an upper bound fixed at
    creation (the run can stop early when the user paints a frame ahead of it).

    Made by :meth:`tracker_core.session.Session.propagation_job`; ``host`` is the session side
    (:class:`JobHost`), ``steps`` the directions (+1 and/or -1) in order.
    """

    def __init__(
        self,
        host: JobHost,
        start: int,
        steps: Sequence[int],
        propagator: Propagator,
    ) -> None:
        project = host.project
        n = project.num_frames
        self._host = host
        self.start = start
        self.propagator = propagator
        self.on_warmup: Callable[[WarmupProgress], None] | None = None
        self.objects = host.run_objects(start)
        keys = {o: project.object_keyframes(o) for o in self.objects}
        self.stops: list[dict[int, int]] = [
            {o: propagation_stop(keys[o], start, s, n) for o in self.objects} for s in steps
        ]
        self._runs = [
            (s, (max if s > 0 else min)(stops.values(), default=start + s))
            for s, stops in zip(steps, self.stops)
        ]
        self.total = sum(abs(stop - start) - 1 for _, stop in self._runs)
        self._cancel = threading.Event()
        self._step = host.open_run(f"Propagate from frame {start}")
        self.done = 0
        self.finished = False
        self._iterator: Iterator[PropagationProgress] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """``(start, stop)`` pairs of the runs (stop exclusive: where the last object stops),
        in order."""
        return [(self.start, stop) for _, stop in self._runs]

    def cancel(self) -> None:
        """Ask the job to stop before the next frame (thread-safe)."""
        self._cancel.set()

    def __iter__(self) -> Iterator[PropagationProgress]:
        return self

    def __next__(self) -> PropagationProgress:
        if self._iterator is None:
            self._iterator = self._work()
        return next(self._iterator)

    def close(self) -> None:
        """Stop and finalise (keeps what is done). Safe to call more than once."""
        self.cancel()
        if self._iterator is not None:
            self._iterator.close()
        else:
            self.finished = True

    def run(self, on_progress: Callable[[PropagationProgress], None] | None = None) -> int:
        """Iterate to the end; returns the number of frames written."""
        for progress in self:
            if on_progress is not None:
                on_progress(progress)
        return self.done

    def _work(self) -> Iterator[PropagationProgress]:
        host, project = self._host, self._host.project
        labels_start = project.labels(self.start)
        objects = self.objects
        num_kp = {
            o.id: len(o.keypoint_names)
            for o in project.objects
            if o.kind == "keypoints" and o.id in objects
        }
        cache = host.feature_cache(self.propagator)
        seconds = 0.0  # per-frame compute time: warm-up (encoding the memory) is not counted
        try:
            for (step, stop), stops in zip(self._runs, self.stops):
                if abs(stop - self.start) <= 1:
                    continue
                running = {
                    o: (o_stop, host.run_origin(self.start, step, o)) for o, o_stop in stops.items()
                }
                refs = host.run_references(self.start, labels_start, objects)
                results = self.propagator.propagate(
                    host.frame,
                    self.start,
                    stop,
                    refs,
                    num_kp,
                    cache=cache,
                    on_warmup=self.on_warmup,
                )
                prev = self.start
                try:
                    while not self._cancel.is_set():
                        result = next(results, None)
                        if result is None:
                            break
                        seconds += result.seconds
                        if not host.write_frame(
                            self._step, self.start, step, running, result, prev
                        ):
                            break
                        prev = result.index
                        self.done += 1
                        yield PropagationProgress(
                            self.done,
                            self.total,
                            result.index,
                            result.confidence,
                            1000.0 * seconds / self.done,
                            "forward" if step > 0 else "backward",
                        )
                finally:
                    close = getattr(results, "close", None)
                    if close is not None:
                        close()
        finally:
            self.finished = True
            host.finish_run(self._step, 1000.0 * seconds / self.done if self.done else None)
