"""The timeline: a frame slider, a per-frame provenance strip and the confidence curve.

The strip colours every frame by its :class:`~tracker_core.project.FrameState` (keyframe /
propagated / stale / empty), and damaged frames (corrupt, truncated, missing: see
:attr:`~tracker_core.video.VideoSource.damaged`) in their own colour, with the problem in the
cell's tooltip; the curve (pyqtgraph) plots ``project.confidences()`` with gaps where
a frame has none, and a dashed line at the "uncertain" threshold. Clicking or dragging on either
asks to jump there (``frame_requested``); the views never change the document themselves.
Repaints during a propagation run are coalesced (one refresh per ``REFRESH_MS``).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QHelpEvent, QMouseEvent, QPainter, QPaintEvent, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolTip, QVBoxLayout, QWidget

from app.document import Document
from tracker_core.project import FrameState
from tracker_core.session import DEFAULT_UNCERTAIN_THRESHOLD, ChangeEvent
from tracker_core.video import DamagedFrame

REFRESH_MS = 40
STATE_COLORS: dict[FrameState, QColor] = {
    FrameState.EMPTY: QColor(70, 70, 76),
    FrameState.PAINTED: QColor(60, 200, 110),
    FrameState.PROPAGATED: QColor(70, 140, 230),
    FrameState.STALE: QColor(235, 160, 40),
}
STATE_NAMES: dict[FrameState, str] = {
    FrameState.PAINTED: "keyframe",
    FrameState.PROPAGATED: "propagated",
    FrameState.STALE: "stale",
    FrameState.EMPTY: "empty",
}
DAMAGED_COLOR = QColor(205, 40, 110)


class StateStrip(QWidget):
    """One coloured cell per frame (damaged frames in DAMAGED_COLOR); a white marker at the
    current frame; the tooltip names the frame's state or what is wrong with it."""

    frame_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._states = np.zeros(0, np.uint8)
        self._damaged: dict[int, DamagedFrame] = {}
        self._current = 0
        self.setMinimumHeight(18)
        self.setMaximumHeight(22)
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def sizeHint(self) -> QSize:
        return QSize(400, 20)

    def set_states(self, states: np.ndarray) -> None:
        self._states = np.asarray(states, np.uint8).copy()
        self.update()

    def set_damaged(self, damaged: dict[int, DamagedFrame]) -> None:
        """Frames to mark damaged: index -> what is wrong."""
        if damaged != self._damaged:
            self._damaged = dict(damaged)
            self.update()

    def damaged_frames(self) -> list[int]:
        """The frames marked damaged."""
        return sorted(self._damaged)

    def damage(self, index: int) -> DamagedFrame | None:
        """What is wrong with frame ``index`` if it is marked damaged."""
        return self._damaged.get(index)

    def tooltip_for(self, index: int) -> str:
        """``"frame 7: damaged: <problem>"`` or ``"frame 7: propagated"``."""
        damage = self._damaged.get(index)
        if damage is not None:
            return f"frame {index}: damaged: {damage.problem}"
        if 0 <= index < len(self._states):
            return f"frame {index}: {STATE_NAMES[FrameState(int(self._states[index]))]}"
        return ""

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self.tooltip_for(self.frame_at(event.pos().x()))
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    def set_current(self, index: int) -> None:
        self._current = index
        self.update()

    def frame_at(self, x: float) -> int:
        n = len(self._states)
        if n == 0 or self.width() <= 0:
            return 0
        return int(np.clip(x / self.width() * n, 0, n - 1))

    def cell_center(self, index: int) -> float:
        """x of frame ``index``'s cell centre (used by tests to click a frame)."""
        n = max(1, len(self._states))
        return (index + 0.5) * self.width() / n

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        n = len(self._states)
        w, h = self.width(), self.height()
        painter.fillRect(self.rect(), STATE_COLORS[FrameState.EMPTY])
        if n == 0:
            return
        edges = np.round(np.arange(n + 1) * w / n).astype(int)
        # runs of equal state are drawn as one rectangle each
        change = np.flatnonzero(np.diff(self._states.astype(int))) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [n]])
        for s, e in zip(starts, ends):
            color = STATE_COLORS.get(FrameState(int(self._states[s])), QColor(0, 0, 0))
            painter.fillRect(int(edges[s]), 0, int(edges[e] - edges[s]), h, color)
        for k in self._damaged:
            if 0 <= k < n:
                painter.fillRect(
                    int(edges[k]), 0, max(1, int(edges[k + 1] - edges[k])), h, DAMAGED_COLOR
                )
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20))
        for k in np.flatnonzero(self._states == FrameState.PAINTED):  # keyframe ticks
            cx = (edges[k] + edges[k + 1]) / 2
            painter.drawPolygon(QPolygonF([QPointF(cx - 4, 0), QPointF(cx + 4, 0), QPointF(cx, 6)]))
        x0, x1 = edges[self._current], edges[self._current + 1]
        painter.setPen(QColor(255, 255, 255))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(x0, 0.5, max(2, x1 - x0) - 1, h - 1.5))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.frame_requested.emit(self.frame_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.frame_requested.emit(self.frame_at(event.position().x()))


class ConfidencePlot(pg.PlotWidget):
    """Per-frame propagation confidence in [0, 1] with the uncertain threshold."""

    frame_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background=(30, 30, 34))
        item = self.getPlotItem()
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=False, y=False)
        item.hideAxis("left")
        item.getAxis("bottom").setStyle(tickLength=-4)
        item.layout.setContentsMargins(0, 0, 0, 0)
        self.setContentsMargins(0, 0, 0, 0)
        item.setYRange(0.0, 1.05, padding=0)
        self._curve = item.plot(
            [], [], pen=pg.mkPen((120, 200, 255), width=2), connect="finite", name="confidence"
        )
        self._uncertain = pg.ScatterPlotItem(
            size=7, pen=pg.mkPen(None), brush=pg.mkBrush(240, 90, 60), name="uncertain"
        )
        item.addItem(self._uncertain)
        self._threshold = pg.InfiniteLine(
            pos=DEFAULT_UNCERTAIN_THRESHOLD,
            angle=0,
            pen=pg.mkPen((235, 120, 60), width=1, style=Qt.PenStyle.DashLine),
        )
        item.addItem(self._threshold)
        self._cursor = pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen((255, 255, 255), width=1))
        item.addItem(self._cursor)
        label = pg.TextItem("confidence", color=(170, 170, 180), anchor=(0, 0))
        label.setParentItem(item.vb)
        label.setPos(4, 0)
        self._num_frames = 0
        self.setMinimumHeight(70)
        self.setMaximumHeight(110)
        self.scene().sigMouseClicked.connect(self._on_click)

    def set_data(self, confidences: np.ndarray) -> None:
        conf = np.asarray(confidences, np.float64)
        n = len(conf)
        if n != self._num_frames:
            self._num_frames = n
            self.getPlotItem().setXRange(-0.5, max(0.5, n - 0.5), padding=0)
        x = np.arange(n, dtype=np.float64)
        self._curve.setData(x, conf, connect="finite")
        low = np.isfinite(conf) & (conf < DEFAULT_UNCERTAIN_THRESHOLD)
        self._uncertain.setData(x[low], conf[low])

    def uncertain_frames(self) -> np.ndarray:
        """Frames marked as uncertain on the plot."""
        x, _y = self._uncertain.getData()
        return np.asarray(x, int)

    def curve_data(self) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._curve.getData()
        return (np.zeros(0) if x is None else x), (np.zeros(0) if y is None else y)

    def set_current(self, index: int) -> None:
        self._cursor.setPos(index)

    def _on_click(self, event) -> None:
        vb = self.getPlotItem().vb
        if self._num_frames == 0 or not vb.sceneBoundingRect().contains(event.scenePos()):
            return
        x = vb.mapSceneToView(event.scenePos()).x()
        self.frame_requested.emit(int(np.clip(round(x), 0, self._num_frames - 1)))


class Timeline(QWidget):
    """Slider + provenance strip + confidence curve + legend for one document."""

    frame_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc: Document | None = None
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.frame_label = QLabel("–")
        self.frame_label.setMinimumWidth(110)
        self.strip = StateStrip()
        self.plot = ConfidencePlot()
        legend = QHBoxLayout()
        legend.setContentsMargins(0, 0, 0, 0)
        for state in (FrameState.PAINTED, FrameState.PROPAGATED, FrameState.STALE):
            swatch = QLabel()
            swatch.setFixedSize(12, 12)
            swatch.setStyleSheet(f"background: {STATE_COLORS[state].name()}; border-radius: 2px;")
            legend.addWidget(swatch)
            legend.addWidget(QLabel(STATE_NAMES[state]))
            legend.addSpacing(10)
        swatch = QLabel()
        swatch.setFixedSize(12, 12)
        swatch.setStyleSheet(f"background: {DAMAGED_COLOR.name()}; border-radius: 2px;")
        legend.addWidget(swatch)
        damaged_label = QLabel("damaged")
        damaged_label.setToolTip("corrupt, truncated or missing frames: no pixels to show or use")
        legend.addWidget(damaged_label)
        legend.addStretch(1)
        self.summary = QLabel("")
        legend.addWidget(self.summary)
        top = QHBoxLayout()
        top.addWidget(self.frame_label)
        top.addWidget(self.slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.strip)
        layout.addWidget(self.plot)
        layout.addLayout(legend)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self.slider.valueChanged.connect(self.frame_requested)
        self.strip.frame_requested.connect(self.frame_requested)
        self.plot.frame_requested.connect(self.frame_requested)

    def set_document(self, doc: Document | None) -> None:
        self._doc = doc
        if doc is None:
            self.slider.setRange(0, 0)
            return
        self.slider.blockSignals(True)
        self.slider.setRange(0, doc.num_frames - 1)
        self.slider.setValue(doc.frame)
        self.slider.blockSignals(False)
        doc.frame_changed.connect(self._on_frame)
        doc.changed.connect(self._on_changed)
        doc.damage_found.connect(self.refresh)
        self._on_frame(doc.frame)
        self.refresh()

    def refresh(self) -> None:
        """Re-read states and confidences from the project (cheap ``(N,)`` copies)."""
        doc = self._doc
        if doc is None:
            return
        states = doc.project.states()
        damaged = doc.damaged()
        self.strip.set_states(states)
        self.strip.set_damaged(damaged)
        self.plot.set_data(doc.project.confidences())
        counts = np.bincount(states, minlength=4)
        self.summary.setText(
            f"{counts[FrameState.PAINTED]} key · {counts[FrameState.PROPAGATED]} propagated · "
            f"{counts[FrameState.STALE]} stale · {counts[FrameState.EMPTY]} empty"
            + (f" · {len(damaged)} damaged" if damaged else "")
        )
        self._on_frame(doc.frame)

    def _on_changed(self, event: ChangeEvent) -> None:
        # every "propagate" event: a run's end can reveal damaged frames it passed over
        if event.frames or event.objects_changed or event.kind in ("undo", "redo", "propagate"):
            if not self._refresh_timer.isActive():
                self._refresh_timer.start()

    def _on_frame(self, index: int) -> None:
        doc = self._doc
        if doc is None:
            return
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        damaged = self.strip.damage(index) is not None
        state = "damaged" if damaged else STATE_NAMES[doc.project.state(index)]
        self.frame_label.setText(f"{index} / {doc.num_frames - 1}  {state}")
        self.strip.set_current(index)
        self.plot.set_current(index)
