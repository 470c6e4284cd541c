"""Moving through the video: step, jump, keyframes, next uncertain frame, play/pause."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

from app.document import Document
from tracker_core.confidence import DEFAULT_UNCERTAIN_THRESHOLD


class Navigator(QObject):
    """Frame navigation for the current document (``doc()`` may return None).

    ``before_jump`` runs before every user-initiated move (the window stops following a running
    propagation); ``message`` carries status-bar text; ``playing_changed`` keeps the Play
    action's check state in sync."""

    message = Signal(str)
    playing_changed = Signal(bool)

    def __init__(
        self,
        doc: Callable[[], Document | None],
        before_jump: Callable[[], None] = lambda: None,
        parent: QObject | None = None,
        threshold: Callable[[], float] = lambda: DEFAULT_UNCERTAIN_THRESHOLD,
    ) -> None:
        super().__init__(parent)
        self._doc = doc
        self._before_jump = before_jump
        self._threshold = threshold
        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._tick)

    def go_to(self, index: int) -> None:
        doc = self._doc()
        if doc is not None:
            self._before_jump()
            doc.set_frame(index)

    def step(self, delta: int) -> None:
        doc = self._doc()
        if doc is not None:
            self.go_to(doc.frame + delta)

    def last(self) -> None:
        doc = self._doc()
        if doc is not None:
            self.go_to(doc.num_frames - 1)

    def keyframe(self, direction: int) -> None:
        """Jump to the nearest keyframe after (``+1``) or before (``-1``) the current frame."""
        doc = self._doc()
        if doc is None:
            return
        candidates = [k for k in doc.project.keyframes() if (k - doc.frame) * direction > 0]
        if not candidates:
            self.message.emit("No keyframe in that direction")
            return
        self.go_to(min(candidates) if direction > 0 else max(candidates))

    def next_uncertain(self) -> None:
        """The next uncertain frame (:func:`~tracker_core.confidence.uncertain_frames`, the
        timeline's marks) after the current one, wrapping to the start."""
        doc = self._doc()
        if doc is None:
            return
        threshold = self._threshold()
        target = doc.session.next_uncertain_frame(doc.frame, threshold)
        wrapped = target is None
        if target is None:
            target = doc.session.next_uncertain_frame(-1, threshold)
        if target is None:
            self.message.emit(
                f"No uncertain frame: every propagated frame is at or above {threshold:.2f} "
                "(View → Uncertainty threshold)"
            )
            return
        self.go_to(target)
        conf = doc.project.confidences()[target]
        note = " (wrapped to the start)" if wrapped else ""
        self.message.emit(f"Frame {target}: confidence {conf:.2f}{note}")

    @property
    def playing(self) -> bool:
        return self.play_timer.isActive()

    def set_playing(self, on: bool) -> None:
        """Play at the video's frame rate from the current frame (from 0 at the end)."""
        doc = self._doc()
        if doc is None or not on:
            self.stop()
            return
        if doc.frame >= doc.num_frames - 1:
            doc.set_frame(0)
        self.play_timer.setInterval(max(10, round(1000 / max(1.0, doc.display.fps))))
        self.play_timer.start()
        self.playing_changed.emit(True)

    def stop(self) -> None:
        was = self.play_timer.isActive()
        self.play_timer.stop()
        if was:
            self.playing_changed.emit(False)

    def _tick(self) -> None:
        doc = self._doc()
        if doc is None or doc.frame >= doc.num_frames - 1:
            self.stop()
            return
        doc.set_frame(doc.frame + 1)
