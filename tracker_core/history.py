"""Undo/redo history: bounded stacks of sparse steps, owned by a session.

A :class:`Step` stores, for what a command touched, only the side it replaced: the previous
encoded content of frames (:class:`~tracker_core.project.StoredFrame`, PNG-compressed), the
previous per-object states when only provenance changed, and the previous object list when
objects changed. :class:`History` keeps the undo and redo stacks within :class:`HistoryLimits`
(steps and bytes, oldest dropped first) and knows nothing about projects: undoing hands the top
step to a caller-supplied ``apply`` function, which restores it and returns the inverse step
(the side it replaced), and that becomes the redo step.

A propagation run is an *open* step: it goes on the stack with its first frame
(:meth:`History.record_frame`), grows while the run writes frames, cannot be undone or trimmed
while open, and is closed with :meth:`History.close`. A run whose undo data outgrows
``max_bytes`` clears the whole history instead (it cannot be undone).

Not thread-safe by itself: the session calls it under its lock. Nothing here imports Qt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tracker_core.labels import ObjectSpec
from tracker_core.project import FrameState, StoredFrame


@dataclass(frozen=True)
class HistoryLimits:
    """Bounds of the undo stack: at most ``max_steps`` steps holding ``max_bytes`` in all.
    The oldest steps are dropped first; a single step bigger than ``max_bytes`` is not kept, so
    it cannot be undone; a propagation run whose undo data outgrows ``max_bytes`` while running
    (re-propagating over many propagated frames) clears the whole history and is not undoable."""

    max_steps: int = 100
    max_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.max_bytes < 1:
            raise ValueError("history limits must be positive")


@dataclass(eq=False)
class Step:
    """One undo (or redo) step: previous content of the frames/states/objects it touched.

    ``frames``: frame -> its previous stored content; ``states``: (frame, object) -> previous
    state (provenance-only changes); ``objects``: the previous object list, or None when objects
    did not change. ``open``: a running propagation job still adds frames to it; ``pushed``:
    (jobs) already on the undo stack; ``dropped``: (jobs) outgrew ``HistoryLimits.max_bytes``,
    the history was cleared and the step is no longer recorded."""

    label: str
    frames: dict[int, StoredFrame] = field(default_factory=dict)
    states: dict[tuple[int, int], FrameState] = field(default_factory=dict)
    objects: tuple[ObjectSpec, ...] | None = None
    open: bool = False
    pushed: bool = False
    dropped: bool = False
    _frame_bytes: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._frame_bytes = sum(f.nbytes for f in self.frames.values())

    @property
    def nbytes(self) -> int:
        """Approximate memory held: the stored frames plus a small fixed cost per entry. Kept
        as a running count (frames are added with :meth:`add_frame`), so a long propagation run
        costs O(1) per frame to account for, not a re-sum of everything it stored."""
        return 128 + self._frame_bytes + 16 * len(self.states)

    def add_frame(self, frame: int, stored: StoredFrame) -> None:
        """Keep ``stored`` as ``frame``'s previous content (replacing any earlier entry)."""
        old = self.frames.get(frame)
        if old is not None:
            self._frame_bytes -= old.nbytes
        self.frames[frame] = stored
        self._frame_bytes += stored.nbytes

    def drop_frames(self) -> None:
        """Forget every stored frame."""
        self.frames.clear()
        self._frame_bytes = 0


class History:
    """Bounded undo and redo stacks of :class:`Step` (see the module doc)."""

    def __init__(self, limits: HistoryLimits | None = None) -> None:
        self._limits = limits or HistoryLimits()
        self._undo: list[Step] = []
        self._redo: list[Step] = []

    @property
    def limits(self) -> HistoryLimits:
        return self._limits

    @property
    def can_undo(self) -> bool:
        """A step is there to undo and it is not a run still open."""
        return bool(self._undo) and not self._undo[-1].open

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_label(self) -> str | None:
        """Label of the step :meth:`undo` would revert, or None."""
        return self._undo[-1].label if self.can_undo else None

    @property
    def redo_label(self) -> str | None:
        return self._redo[-1].label if self._redo else None

    @property
    def nbytes(self) -> int:
        """Bytes held by the undo and redo stacks."""
        return sum(s.nbytes for s in (*self._undo, *self._redo))

    @property
    def undo_labels(self) -> tuple[str, ...]:
        """Labels of the undo stack, oldest first."""
        return tuple(s.label for s in self._undo)

    @property
    def redo_labels(self) -> tuple[str, ...]:
        """Labels of the redo stack, the next redo last."""
        return tuple(s.label for s in self._redo)

    def push(self, step: Step) -> None:
        """Record a new step (clears redo) and enforce the bounds."""
        self._undo.append(step)
        self._redo.clear()
        self._trim()

    def undo(self, apply: Callable[[Step], Step]) -> Step | None:
        """Pop the last step, ``apply`` it (it returns the inverse step, which goes on the redo
        stack) and return it; None (nothing applied) when :attr:`can_undo` is False."""
        if not self.can_undo:
            return None
        step = self._undo.pop()
        self._redo.append(apply(step))
        return step

    def redo(self, apply: Callable[[Step], Step]) -> Step | None:
        """Pop the last undone step, ``apply`` it (its inverse goes back on the undo stack) and
        return it; None when there is nothing to redo."""
        if not self._redo:
            return None
        step = self._redo.pop()
        self._undo.append(apply(step))
        self._trim()
        return step

    def clear(self) -> None:
        """Forget every step (open steps are not closed; they just stop being on the stack)."""
        self._undo.clear()
        self._redo.clear()

    # ---- open steps (propagation runs) -----------------------------------------------------

    @staticmethod
    def open_step(label: str) -> Step:
        """A new open step; it goes on the stack with its first :meth:`record_frame`."""
        return Step(label, open=True)

    def record_frame(self, step: Step, frame: int, stored: Callable[[], StoredFrame]) -> None:
        """Keep ``frame``'s previous content (``stored()``, called only when needed) in the open
        ``step``, pushing the step on its first frame; a step whose data outgrows ``max_bytes``
        is dropped and clears the whole history instead. A frame already recorded keeps its
        first (oldest) content."""
        if step.dropped or frame in step.frames:
            return
        if not step.pushed:
            step.pushed = True
            self.push(step)
        step.add_frame(frame, stored())
        if step.nbytes > self._limits.max_bytes:
            step.dropped = True
            step.drop_frames()
            self.clear()
        self._trim()

    def close(self, step: Step) -> None:
        """The run of an open ``step`` has finished: it becomes undoable (bounds enforced)."""
        step.open = False
        self._trim()

    def _trim(self) -> None:
        """Drop oldest steps beyond the count/byte bounds (a step still open is kept)."""
        limits = self._limits
        total = sum(s.nbytes for s in self._undo)
        while self._undo and (len(self._undo) > limits.max_steps or total > limits.max_bytes):
            if self._undo[0].open:
                break
            total -= self._undo.pop(0).nbytes
