"""Status bar widgets: hint, frame index/count with provenance and confidence, propagation speed,
model in use, and the progress bar with its Cancel button for background jobs."""

from __future__ import annotations

import math

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from app.timeline import STATE_NAMES
from tracker_core.project import FrameState


class StatusPanel:
    """Owns the permanent widgets of a QStatusBar; the window calls the setters."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.hint = QLabel("")
        self.hint.setStyleSheet("color: #f0d060;")
        self.frame = QLabel("no video")
        self.speed = QLabel("– ms/frame")
        self.model = QLabel("model: –")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%v / %m")
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop the propagation; frames done so far are kept (Esc)")
        bar.addWidget(self.hint, 1)
        widgets: tuple[QWidget, ...] = (
            self.progress,
            self.cancel,
            self.frame,
            self.speed,
            self.model,
        )
        for widget in widgets:
            bar.addPermanentWidget(widget)
        self.set_busy(False)

    def set_hint(self, text: str) -> None:
        self.hint.setText(text)

    def set_frame(self, index: int, count: int, state: FrameState, confidence: float) -> None:
        conf = "" if math.isnan(confidence) else f", conf {confidence:.2f}"
        self.frame.setText(f"frame {index} / {count - 1} ({STATE_NAMES[state]}{conf})")

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
