"""The timeline: a frame slider, the active object's provenance strip with a thin per-object
summary beneath it, and the confidence curve.

The main strip colours every frame by the ACTIVE object's :class:`~tracker_core.project.FrameState`
(keyframe / propagated / stale / empty; the whole frame's summary when there is no object), and
damaged frames (corrupt, truncated, missing: see :attr:`~tracker_core.video.VideoSource.damaged`)
in their own colour with the problem in the cell's tooltip; the
summary strip beneath has one thin row per object, so a keypoint object that runs on past a mask
object's keyframe is visible at a glance. Keyframes are drawn at least :data:`MIN_KEY_PX` wide
with a tick, so they stay visible on long videos. The curve (pyqtgraph) plots
``project.confidences()`` (a frame's lowest object confidence) with gaps where a frame has none, a
dashed line at the user's uncertainty threshold, and dots on the frames
:func:`~tracker_core.confidence.uncertain_frames` returns — the same frames ``N`` visits.
Clicking or dragging on any of them asks to jump there (``frame_requested``); the views never
change the document themselves. Repaints during a propagation run are coalesced (one refresh per
``REFRESH_MS``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QHelpEvent, QMouseEvent, QPainter, QPaintEvent, QPolygonF
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolTip, QVBoxLayout, QWidget

from app.document import Document
from tracker_core.confidence import DEFAULT_UNCERTAIN_THRESHOLD, uncertain_frames
from tracker_core.project import FrameState, Project
from tracker_core.session import ChangeEvent
from tracker_core.video import DamagedFrame

REFRESH_MS = 40  # after an edit
# while a propagation writes frames: the strips and the plot are redrawn at most this often (each
# redraw takes GUI-thread CPU from the run, issue 12); the run's last frame still lands here
PROPAGATE_REFRESH_MS = 250
MIN_KEY_PX = 3  # a keyframe's mark is never narrower than this, however long the video
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


def cell_edges(n: int, width: int) -> np.ndarray:
    """``(n + 1,) int`` x positions of the frame cells' edges in a strip ``width`` px wide."""
    return np.round(np.arange(n + 1) * width / max(1, n)).astype(int)


def keyframe_span(index: int, edges: np.ndarray, width: int) -> tuple[int, int]:
    """``(x, w)`` of keyframe ``index``'s mark: its cell, widened about its centre to at least
    :data:`MIN_KEY_PX` and kept inside the strip."""
    x0, x1 = int(edges[index]), int(edges[index + 1])
    w = max(MIN_KEY_PX, x1 - x0)
    x = round((x0 + x1) / 2 - w / 2)
    return max(0, min(width - w, x)), w


def paint_states(painter: QPainter, states: np.ndarray, rect: QRectF, ticks: bool) -> None:
    """Fill ``rect`` with one coloured cell per frame (runs of equal state as one rectangle),
    keyframes at least MIN_KEY_PX wide, with a tick on top when ``ticks``."""
    n = len(states)
    x0, y, w, h = int(rect.x()), int(rect.y()), int(rect.width()), int(rect.height())
    painter.fillRect(x0, y, w, h, STATE_COLORS[FrameState.EMPTY])
    if n == 0:
        return
    edges = cell_edges(n, w)
    change = np.flatnonzero(np.diff(states.astype(int))) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    for s, e in zip(starts, ends):
        color = STATE_COLORS.get(FrameState(int(states[s])), QColor(0, 0, 0))
        painter.fillRect(x0 + int(edges[s]), y, int(edges[e] - edges[s]), h, color)
    keys = np.flatnonzero(states == FrameState.PAINTED)
    for k in keys:
        kx, kw = keyframe_span(int(k), edges, w)
        painter.fillRect(x0 + kx, y, kw, h, STATE_COLORS[FrameState.PAINTED])
    if ticks:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 20))
        for k in keys:
            cx = x0 + (edges[k] + edges[k + 1]) / 2
            painter.drawPolygon(
                QPolygonF([QPointF(cx - 4, y), QPointF(cx + 4, y), QPointF(cx, y + 6)])
            )
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)


class _Strip(QWidget):
    """Common frame <-> x mapping, current-frame marker and click/drag to jump."""

    frame_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._n = 0
        self._current = 0
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_current(self, index: int) -> None:
        self._current = index
        self.update()

    def frame_at(self, x: float) -> int:
        if self._n == 0 or self._cells_width() <= 0:
            return 0
        return int(np.clip(x / self._cells_width() * self._n, 0, self._n - 1))

    def cell_center(self, index: int) -> float:
        """x of frame ``index``'s cell centre (used by tests to click a frame)."""
        return (index + 0.5) * self.width() / max(1, self._n)

    def _cells_width(self) -> int:
        """Width of the frame cells (the whole widget unless a subclass keeps a margin)."""
        return self.width()

    def _paint_current(self, painter: QPainter) -> None:
        if self._n == 0:
            return
        offset = self.width() - self._cells_width()
        edges = cell_edges(self._n, self._cells_width()) + offset
        x0, x1 = edges[self._current], edges[self._current + 1]
        painter.setPen(QColor(255, 255, 255))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(QRectF(x0, 0.5, max(2, x1 - x0) - 1, self.height() - 1.5))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.frame_requested.emit(self.frame_at(event.position().x()))

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.frame_requested.emit(self.frame_at(event.position().x()))


class StateStrip(_Strip):
    """One coloured cell per frame for one object (or the frame summary), damaged frames in
    DAMAGED_COLOR; a white marker at the current frame; the tooltip names the frame's state or
    what is wrong with it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._states = np.zeros(0, np.uint8)
        self._damaged: dict[int, DamagedFrame] = {}
        self.setMinimumHeight(18)
        self.setMaximumHeight(22)

    def sizeHint(self) -> QSize:
        return QSize(400, 20)

    def set_states(self, states: np.ndarray) -> None:
        self._states = np.asarray(states, np.uint8).copy()
        self._n = len(self._states)
        self.update()

    def states(self) -> np.ndarray:
        return self._states.copy()

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

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        paint_states(painter, self._states, QRectF(self.rect()), ticks=True)
        n = len(self._states)
        if n:
            edges = cell_edges(n, self.width())
            h = self.height()
            for k in self._damaged:
                if 0 <= k < n:
                    w = max(MIN_KEY_PX, int(edges[k + 1] - edges[k]))
                    painter.fillRect(int(edges[k]), 0, w, h, DAMAGED_COLOR)
        self._paint_current(painter)


class SummaryStrip(_Strip):
    """A thin row per object (in object order), each coloured by that object's states after a
    chip of the object's colour; the active object's row is outlined. The tooltip names the
    objects and their states on the frame under the mouse."""

    ROW_PX = 6
    MAX_PX = 30
    CHIP_PX = 10

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._rows: list[np.ndarray] = []
        self._names: list[str] = []
        self._colors: list[QColor] = []
        self._active = -1
        self.setMouseTracking(True)
        self._fit()

    def set_rows(
        self,
        rows: Sequence[np.ndarray],
        names: Sequence[str],
        colors: Sequence[tuple[int, int, int]],
        active: int,
    ) -> None:
        """``rows``: one ``(N,) uint8`` state array per object; ``active``: index of the active
        object's row (-1 for none)."""
        self._rows = [np.asarray(r, np.uint8).copy() for r in rows]
        self._names = list(names)
        self._colors = [QColor(*c) for c in colors]
        self._active = active
        self._n = len(self._rows[0]) if self._rows else 0
        self._fit()
        self.update()

    def rows(self) -> list[np.ndarray]:
        return [r.copy() for r in self._rows]

    def row_rect(self, i: int) -> QRectF:
        """The rectangle of row ``i`` (the object's colour chip on the left is not in it)."""
        k = max(1, len(self._rows))
        h = self.height() / k
        return QRectF(self.CHIP_PX, i * h, self.width() - self.CHIP_PX, h)

    def frame_at(self, x: float) -> int:
        return super().frame_at(x - self.CHIP_PX)

    def cell_center(self, index: int) -> float:
        return self.CHIP_PX + (index + 0.5) * (self.width() - self.CHIP_PX) / max(1, self._n)

    def _cells_width(self) -> int:
        return self.width() - self.CHIP_PX

    def _fit(self) -> None:
        k = len(self._rows)
        self.setVisible(k > 0)
        self.setFixedHeight(max(2, min(self.MAX_PX, self.ROW_PX * k)) if k else 2)

    def sizeHint(self) -> QSize:
        return QSize(400, self.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 30, 34))
        for i, states in enumerate(self._rows):
            rect = self.row_rect(i)
            inner = QRectF(rect.x(), rect.y(), rect.width(), max(1.0, rect.height() - 1))
            paint_states(painter, states, inner, ticks=False)
            chip = QRectF(0, rect.y(), self.CHIP_PX - 2, inner.height())
            painter.fillRect(chip, self._colors[i])
        if 0 <= self._active < len(self._rows):
            painter.setPen(QColor(255, 255, 255, 200))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            r = self.row_rect(self._active)
            painter.drawRect(QRectF(r.x(), r.y(), r.width() - 1, max(1.0, r.height() - 1)))
        self._paint_current(painter)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        super().mouseMoveEvent(event)
        if self._n:
            t = self.frame_at(event.position().x())
            parts = [
                f"{name}: {STATE_NAMES[FrameState(int(r[t]))]}"
                for name, r in zip(self._names, self._rows)
            ]
            self.setToolTip(f"frame {t} — " + ", ".join(parts))


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

    def set_data(self, confidences: np.ndarray, uncertain: np.ndarray, threshold: float) -> None:
        """Plot ``(N,)`` confidences (nan = gap), dots on the ``uncertain`` frames (computed by
        the caller with :func:`~tracker_core.confidence.uncertain_frames`), the threshold line."""
        conf = np.asarray(confidences, np.float64)
        n = len(conf)
        if n != self._num_frames:
            self._num_frames = n
            self.getPlotItem().setXRange(-0.5, max(0.5, n - 0.5), padding=0)
        x = np.arange(n, dtype=np.float64)
        self._curve.setData(x, conf, connect="finite")
        idx = np.asarray(uncertain, int)
        self._uncertain.setData(x[idx], np.nan_to_num(conf[idx], nan=0.0))
        self._threshold.setPos(threshold)

    def threshold(self) -> float:
        return float(self._threshold.value())

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
    """Slider + active object's strip + per-object summary + confidence curve + legend."""

    frame_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc: Document | None = None
        self._threshold = DEFAULT_UNCERTAIN_THRESHOLD
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.frame_label = QLabel("–")
        self.frame_label.setMinimumWidth(150)
        self.strip = StateStrip()
        self.summary_strip = SummaryStrip()
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
        self.all_summary = QLabel("")
        legend.addWidget(self.summary)
        legend.addSpacing(12)
        legend.addWidget(self.all_summary)
        top = QHBoxLayout()
        top.addWidget(self.frame_label)
        top.addWidget(self.slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.strip)
        layout.addWidget(self.summary_strip)
        layout.addWidget(self.plot)
        layout.addLayout(legend)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(REFRESH_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self.slider.valueChanged.connect(self.frame_requested)
        for view in (self.strip, self.summary_strip, self.plot):
            view.frame_requested.connect(self.frame_requested)

    @property
    def threshold(self) -> float:
        return self._threshold

    def set_threshold(self, threshold: float) -> None:
        """The uncertainty threshold the marks use (the window passes the user's setting)."""
        self._threshold = float(threshold)
        self.refresh()

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
        doc.active_object_changed.connect(lambda _id: self.refresh())
        doc.damage_found.connect(self.refresh)
        self._on_frame(doc.frame)
        self.refresh()

    def refresh(self) -> None:
        """Re-read states and confidences from the project (cheap ``(N,)`` copies)."""
        doc = self._doc
        if doc is None:
            return
        project = doc.project
        objects = project.objects
        active = doc.active_object
        rows = [project.object_states(o.id) for o in objects]
        ids = [o.id for o in objects]
        main = rows[ids.index(active.id)] if active is not None else project.states()
        damaged = doc.damaged()
        self.strip.set_states(main)
        self.strip.set_damaged(damaged)
        self.summary_strip.set_rows(
            rows,
            [o.name for o in objects],
            [o.color for o in objects],
            ids.index(active.id) if active is not None else -1,
        )
        self.plot.set_data(
            project.confidences(), uncertain_frames(project, self._threshold), self._threshold
        )
        self.summary.setText(
            summary_text(main, active.name if active is not None else "frames")
            + (f" · {len(damaged)} damaged" if damaged else "")
        )
        self.all_summary.setText(all_objects_text(project, self._threshold) if objects else "")
        self._on_frame(doc.frame)

    def _on_changed(self, event: ChangeEvent) -> None:
        if event.frames or event.objects_changed or event.kind in ("undo", "redo"):
            if not self._refresh_timer.isActive():
                ms = PROPAGATE_REFRESH_MS if event.kind == "propagate" else REFRESH_MS
                self._refresh_timer.start(ms)
        elif event.kind == "propagate":  # the run ended: show its last frames now
            self._refresh_timer.start(0)

    def _on_frame(self, index: int) -> None:
        doc = self._doc
        if doc is None:
            return
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        active = doc.active_object
        if self.strip.damage(index) is not None:
            self.frame_label.setText(f"{index} / {doc.num_frames - 1}  damaged")
        elif active is not None:
            state = STATE_NAMES[doc.project.object_state(index, active.id)]
            self.frame_label.setText(f"{index} / {doc.num_frames - 1}  {active.name}: {state}")
        else:
            state = STATE_NAMES[doc.project.state(index)]
            self.frame_label.setText(f"{index} / {doc.num_frames - 1}  {state}")
        self.strip.set_current(index)
        self.summary_strip.set_current(index)
        self.plot.set_current(index)


def summary_text(states: np.ndarray, name: str) -> str:
    """``"<name>: 2 key · 18 propagated · 0 stale · 5 empty"`` for ``(N,) uint8`` states."""
    counts = np.bincount(np.asarray(states, np.uint8), minlength=4)
    return (
        f"{name}: {counts[FrameState.PAINTED]} key · {counts[FrameState.PROPAGATED]} propagated · "
        f"{counts[FrameState.STALE]} stale · {counts[FrameState.EMPTY]} empty"
    )


def all_objects_text(project: Project, threshold: float) -> str:
    """Frames needing attention over all objects: uncertain (the N rule), stale for any object,
    and empty for any object."""
    rows = np.stack([project.object_states(o.id) for o in project.objects])  # (K, N)
    uncertain = len(uncertain_frames(project, threshold))
    stale = int((rows == FrameState.STALE).any(axis=0).sum())
    empty = int((rows == FrameState.EMPTY).any(axis=0).sum())
    return f"all objects: {uncertain} uncertain · {stale} stale · {empty} with an empty object"
