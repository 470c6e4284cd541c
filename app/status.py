"""Status bar widgets: hint, frame index/count with provenance and confidence, propagation speed,
model in use, and the progress bar with its Cancel button for background jobs."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette, QResizeEvent
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QSizePolicy, QStatusBar, QWidget

from app.timeline import STATE_NAMES
from tracker_core.project import FrameState


class HintLabel(QLabel):
    """The workflow hint: drawn in the palette's tooltip colours (readable on light and dark
    themes), elided with "…" when the bar is too narrow, the whole text in its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setAutoFillBackground(True)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, palette.color(QPalette.ColorRole.ToolTipBase))
        palette.setColor(
            QPalette.ColorRole.WindowText, palette.color(QPalette.ColorRole.ToolTipText)
        )
        self.setPalette(palette)
        self.setContentsMargins(6, 1, 6, 1)

    @property
    def full_text(self) -> str:
        return self._full

    def set_hint(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        margins = self.contentsMargins()
        room = max(0, self.width() - margins.left() - margins.right())
        text = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room)
        super().setText(text)


class StatusPanel:
    """Owns the permanent widgets of a QStatusBar; the window calls the setters."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.hint = HintLabel()
        self.frame = QLabel("no video")
        self.speed = QLabel("– ms/frame")
        self.model = QLabel("model: –")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%v / %m")
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop the propagation; frames done so far are kept (Esc)")
        self.resume_follow = QPushButton("Resume following")
        self.resume_follow.setToolTip(
            "You moved away during the run, so the view stopped jumping to each new frame; "
            "click to follow it again (the next run follows anyway)"
        )
        self.resume_follow.setStyleSheet("color: #f0d060;")
        bar.addWidget(self.hint, 1)
        widgets: tuple[QWidget, ...] = (
            self.resume_follow,
            self.progress,
            self.cancel,
            self.frame,
            self.speed,
            self.model,
        )
        for widget in widgets:
            bar.addPermanentWidget(widget)
        self.set_busy(False)
        self.set_follow_paused(False)

    def set_follow_paused(self, paused: bool) -> None:
        """Show the Resume following button while following is paused during a run."""
        self.resume_follow.setVisible(paused)

    def set_hint(self, text: str) -> None:
        self.hint.set_hint(text)

    def set_frame(
        self,
        index: int,
        count: int,
        state: FrameState,
        confidence: float,
        object_name: str | None = None,
    ) -> None:
        """Frame index, and the state / confidence of ``object_name`` (the active object) or
        of the frame when None."""
        conf = "" if math.isnan(confidence) else f", conf {confidence:.2f}"
        who = "" if object_name is None else f"{object_name}: "
        self.frame.setText(f"frame {index} / {count - 1} ({who}{STATE_NAMES[state]}{conf})")

    def set_speed(self, ms_per_frame: float | None) -> None:
        """Propagation compute time per frame (warm-up excluded), or a dash."""
        self.speed.setText("– ms/frame" if ms_per_frame is None else f"{ms_per_frame:.0f} ms/frame")

    def set_warmup(self, text: str) -> None:
        """What the propagation does before its first frame, e.g. "encoding keyframes 2/3"."""
        self.speed.setText(text)

    def set_model(self, name: str, preset: str = "") -> None:
        self.model.setText(f"model: {name}" + (f" ({preset})" if preset else ""))

    def set_busy(self, busy: bool, total: int = 0) -> None:
        self.progress.setVisible(busy)
        self.cancel.setVisible(busy)
        if busy:
            self.progress.setRange(0, max(1, total))
            self.progress.setValue(0)

    def set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
