"""The canvas: the current frame with its label overlay, and the view of the active tool.

Tools are Qt-free objects from the registry in :mod:`tracker_core.tools`: the canvas turns Qt
mouse/key events into :class:`~tracker_core.tools.PointerEvent` in image coordinates, hands them
to the active tool (which issues the Session commands), and draws what the tool's
:class:`~tracker_core.tools.Overlay` describes (polyline with vertex handles, a box, click
markers, the brush outline, a dragged keypoint). Slow tool work (smart select) runs on a worker
through the window's :class:`~app.jobs.JobRunner`, so the canvas never freezes.

The canvas keeps only view state: zoom, pan, brush radius, overlay opacity/outline.
Navigation: wheel zooms around the cursor; middle-drag or Alt+left-drag pans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsTextItem,
    QGraphicsView,
    QWidget,
)

from app.document import Document
from app.jobs import Job, JobRunner
from tracker_core.labels import ObjectSpec
from tracker_core.session import ChangeEvent, Session
from tracker_core.tools import TOOLS, Overlay, PointerEvent, Tool, tool_spec
from tracker_core.tools.base import Button, Key, run_inline
from tracker_core.video import DamagedFrame

MIN_BRUSH, MAX_BRUSH = 1.0, 200.0
POINT_PICK_PX = 9.0  # screen pixels within which a click grabs a keypoint / closes a polygon
POINT_DRAW_PX = 5.0
DAMAGED_BACKGROUND = QColor(52, 22, 34)
HANDLE_PX = 4.0  # half-size of a polygon vertex handle, screen pixels
_BUTTONS: dict[Qt.MouseButton, Button] = {
    Qt.MouseButton.LeftButton: "left",
    Qt.MouseButton.RightButton: "right",
    Qt.MouseButton.MiddleButton: "middle",
}
_KEYS: dict[int, Key] = {
    Qt.Key.Key_Escape: "escape",
    Qt.Key.Key_Return: "enter",
    Qt.Key.Key_Enter: "enter",
    Qt.Key.Key_Backspace: "backspace",
    Qt.Key.Key_Delete: "delete",
}
_CURSORS = {
    "brush": Qt.CursorShape.BlankCursor,  # the brush outline is the cursor
    "cross": Qt.CursorShape.CrossCursor,
    "point": Qt.CursorShape.PointingHandCursor,
}


# --------------------------------------------------------------------------- pure rendering


def color_table(
    objects: Iterable[ObjectSpec], hidden: Iterable[int] = (), alpha: int = 255
) -> np.ndarray:
    """``(256, 4) uint8`` RGBA per mask id: the object's colour, transparent for background,
    hidden or unknown ids."""
    lut = np.zeros((256, 4), np.uint8)
    hidden_ids = set(hidden)
    for spec in objects:
        if spec.kind == "mask" and spec.id not in hidden_ids:
            lut[spec.id] = (*spec.color, alpha)
    return lut


def outline_ids(mask: np.ndarray) -> np.ndarray:
    """``(H, W) uint8``: the ids of region borders only (about 2 px wide, on both sides of each
    border, carrying the larger neighbouring id), 0 elsewhere."""
    kernel = np.ones((3, 3), np.uint8)
    grown = cv2.dilate(mask, kernel)
    edge = grown != cv2.erode(mask, kernel)
    return np.where(edge, grown, 0).astype(np.uint8)


def overlay_image(mask: np.ndarray, lut: np.ndarray, outline: bool = False) -> QImage:
    """``(H, W) uint8`` ids -> an indexed QImage coloured through ``lut`` (``(256, 4)`` RGBA);
    Qt maps the colours while drawing, so no full-size RGBA array is built per repaint."""
    ids = np.ascontiguousarray(outline_ids(mask) if outline else mask)
    h, w = ids.shape
    image = QImage(ids.data, w, h, w, QImage.Format.Format_Indexed8).copy()
    lut = lut.astype(np.uint32)
    argb = (lut[:, 3] << 24) | (lut[:, 0] << 16) | (lut[:, 1] << 8) | lut[:, 2]
    image.setColorTable([int(c) for c in argb])
    return image


def numpy_to_qimage(array: np.ndarray) -> QImage:
    """``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA uint8 -> a QImage owning a copy of the pixels."""
    array = np.ascontiguousarray(array)
    h, w, c = array.shape
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_RGBA8888
    return QImage(array.data, w, h, c * w, fmt).copy()


# --------------------------------------------------------------------------- the view


class _CanvasContext:
    """The :class:`~tracker_core.tools.ToolContext` a tool sees: the canvas's document, brush
    radius and messages, and the window's job runner for slow work."""

    def __init__(self, canvas: Canvas, doc: Document) -> None:
        self._canvas = canvas
        self._doc = doc

    @property
    def session(self) -> Session:
        return self._doc.session

    @property
    def frame(self) -> int:
        return self._doc.frame

    @property
    def active_object(self) -> ObjectSpec | None:
        return self._doc.active_object

    def set_active_object(self, object_id: int) -> None:
        self._doc.set_active_object(object_id)

    @property
    def active_point(self) -> int:
        return self._doc.active_point

    def set_active_point(self, index: int) -> None:
        self._doc.set_active_point(index)

    @property
    def brush_radius(self) -> float:
        return self._canvas.brush_radius

    def frame_image(self) -> np.ndarray:
        return self._doc.display.frame(self._doc.frame)

    def message(self, text: str) -> None:
        self._canvas.message.emit(text)

    def overlay_changed(self) -> None:
        self._canvas.render_overlay()

    def submit(
        self,
        work: Callable[[], Any],
        done: Callable[[Any], None],
        failed: Callable[[str], None],
    ) -> None:
        runner = self._canvas.runner
        if runner is None:  # no window: run inline (a bare canvas in a test or script)
            run_inline(work, done, failed)
            return
        job = Job("Smart select", lambda _report, _cancelled: work())
        job.succeeded.connect(done)
        job.failed.connect(lambda message, _details: failed(message))
        runner.start(job, exclusive=False)


class Canvas(QGraphicsView):
    """Frame + overlay + the active tool. ``message`` carries short hints for the status bar;
    ``tool_changed``/``brush_changed`` keep toolbars in sync."""

    message = Signal(str)
    tool_changed = Signal(str)
    brush_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None, runner: JobRunner | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._doc: Document | None = None
        self._ctx: _CanvasContext | None = None
        self._scene = QGraphicsScene(self)
        self.setScene(self._scene)
        self.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setMouseTracking(True)
        self.setBackgroundBrush(QColor(38, 38, 42))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(False)  # the main window takes dropped files
        self._frame_item = QGraphicsPixmapItem()
        self._frame_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._overlay_item = QGraphicsPixmapItem()
        self._overlay_item.setZValue(1)
        self._path_item = QGraphicsPathItem()
        self._path_item.setZValue(3)
        self._box_item = QGraphicsRectItem()
        self._box_item.setZValue(3)
        self._cursor_item = QGraphicsEllipseItem()
        self._cursor_item.setZValue(4)
        self._cursor_item.setVisible(False)
        self._damage_item = QGraphicsTextItem()  # "frame N is damaged: ..." instead of garbage
        self._damage_item.setZValue(2)
        self._damage_item.setDefaultTextColor(QColor(255, 225, 230))
        self._damage_item.setVisible(False)
        self._damage: DamagedFrame | None = None
        items = (
            self._frame_item,
            self._overlay_item,
            self._damage_item,
            self._path_item,
            self._box_item,
            self._cursor_item,
        )
        for item in items:
            self._scene.addItem(item)
        self._tools: dict[str, Tool] = {}
        self._tool_name = TOOLS[0].name
        self._overlay = Overlay()
        self.brush_radius = 12.0
        self._opacity = 0.5
        self._outline = False
        self._overlay_item.setOpacity(self._opacity)
        self._fit = True
        self._pan_from: QPointF | None = None
        self._keypoint_cache: dict[int, np.ndarray] = {}
        self._update_cursor()

    # ---- document ---------------------------------------------------------------------------

    def set_document(self, doc: Document | None) -> None:
        self.cancel_interaction()
        self._doc = doc
        self._ctx = _CanvasContext(self, doc) if doc is not None else None
        self._tools = {}  # tool state belongs to one document
        self.render_overlay()
        if doc is None:
            self._frame_item.setPixmap(QPixmap())
            self._overlay_item.setPixmap(QPixmap())
            return
        doc.frame_changed.connect(self._on_frame_changed)
        doc.changed.connect(self._on_changed)
        doc.active_object_changed.connect(lambda _id: self.render_overlay())
        doc.active_point_changed.connect(lambda _i: self.viewport().update())
        self._scene.setSceneRect(QRectF(0, 0, doc.project.width, doc.project.height))
        self._fit = True
        self.refresh_frame()
        self.fit_to_window()

    def refresh_frame(self) -> None:
        """Redraw the frame image and the labels of the current frame; a damaged frame shows
        what is wrong with it instead of its (garbage) pixels, and takes no painting."""
        doc = self._doc
        if doc is None:
            return
        image = doc.frame_image(doc.frame)
        if isinstance(image, DamagedFrame):
            self._show_damage(image)
            return
        self._damage = None
        self._damage_item.setVisible(False)
        self._frame_item.setPixmap(QPixmap.fromImage(numpy_to_qimage(image)))
        self.refresh_labels()

    @property
    def damage(self) -> DamagedFrame | None:
        """The damage of the frame shown, when it is damaged."""
        return self._damage

    def damage_text(self) -> str:
        """The message shown over a damaged frame ("" for a good one)."""
        return self._damage_item.toPlainText() if self._damage is not None else ""

    def _show_damage(self, damage: DamagedFrame) -> None:
        doc = self._doc
        assert doc is not None
        self.cancel_interaction()
        self._damage = damage
        w, h = doc.project.width, doc.project.height
        placeholder = QPixmap(w, h)
        placeholder.fill(DAMAGED_BACKGROUND)
        self._frame_item.setPixmap(placeholder)
        self._overlay_item.setPixmap(QPixmap())
        self._keypoint_cache = {}
        text = f"frame {damage.index} is damaged: {damage.problem}\n{damage.file.name}"
        item = self._damage_item
        font = QFont(item.font())
        font.setPointSizeF(max(6.0, w / 45))
        item.setFont(font)
        item.setTextWidth(w * 0.9)
        item.setPlainText(text)
        item.setPos(w * 0.05, max(0.0, (h - item.boundingRect().height()) / 2))
        item.setVisible(True)
        self.message.emit(f"Frame {damage.index} is damaged: {damage.problem}")
        self.viewport().update()

    def refresh_labels(self) -> None:
        """Redraw the mask overlay and keypoints of the current frame."""
        doc = self._doc
        if doc is None or self._damage is not None:
            return
        labels = doc.session.labels(doc.frame)
        hidden = doc.session.hidden_objects
        if labels.mask is not None:
            lut = color_table(doc.project.objects, hidden)
            image = overlay_image(labels.mask, lut, self._outline)
            self._overlay_item.setPixmap(QPixmap.fromImage(image))
        else:
            self._overlay_item.setPixmap(QPixmap())
        self._keypoint_cache = {k: np.array(v) for k, v in labels.keypoints.items()}
        self.viewport().update()

    def _on_frame_changed(self, _index: int) -> None:
        self.cancel_interaction()
        self.refresh_frame()
        self.render_overlay()

    def _on_changed(self, event: ChangeEvent) -> None:
        doc = self._doc
        if doc is None:
            return
        if event.objects_changed or event.view_changed or doc.frame in event.frames:
            self.refresh_labels()
        elif event.kind in ("undo", "redo") and not event.frames:
            self.refresh_labels()

    # ---- view settings ----------------------------------------------------------------------

    @property
    def opacity(self) -> float:
        return self._opacity

    def set_opacity(self, value: float) -> None:
        self._opacity = float(np.clip(value, 0.0, 1.0))
        self._overlay_item.setOpacity(1.0 if self._outline else self._opacity)

    @property
    def outline(self) -> bool:
        return self._outline

    def set_outline(self, on: bool) -> None:
        self._outline = bool(on)
        self._overlay_item.setOpacity(1.0 if self._outline else self._opacity)
        self.refresh_labels()

    # ---- tools ------------------------------------------------------------------------------

    @property
    def tool(self) -> str:
        """Name of the active tool (a :data:`tracker_core.tools.TOOLS` entry)."""
        return self._tool_name

    @property
    def active_tool(self) -> Tool:
        """The active tool object (one per tool per document, keeping its state)."""
        tool = self._tools.get(self._tool_name)
        if tool is None:
            tool = self._tools[self._tool_name] = tool_spec(self._tool_name).factory()
        return tool

    def set_tool(self, name: str) -> None:
        spec = tool_spec(name)  # ValueError for an unknown name
        self.cancel_interaction()
        self._tool_name = name
        self._update_cursor()
        self.render_overlay()
        self.tool_changed.emit(name)
        doc = self._doc
        active = doc.active_object if doc is not None else None
        if active is not None and active.kind != spec.edits:
            what = "keypoint" if spec.edits == "keypoints" else "mask"
            self.message.emit(f"Select a {what} object in the Objects panel to use this tool")

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = float(np.clip(radius, MIN_BRUSH, MAX_BRUSH))
        self.render_overlay()
        self.brush_changed.emit(self.brush_radius)

    def grow_brush(self, factor: float) -> None:
        """``]`` / ``[``: scale the brush radius (at least one pixel per press)."""
        new = self.brush_radius * factor
        if abs(new - self.brush_radius) < 1:
            new = self.brush_radius + (1 if factor > 1 else -1)
        self.set_brush_radius(new)

    def zoom(self, factor: float) -> None:
        self._fit = False
        current = self.transform().m11()
        factor = float(np.clip(current * factor, 0.05, 40.0)) / current
        self.scale(factor, factor)
        self.render_overlay()

    def fit_to_window(self) -> None:
        self._fit = True
        if not self.sceneRect().isEmpty():
            self.fitInView(self.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self.render_overlay()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fit:
            self.fit_to_window()

    # ---- coordinates ------------------------------------------------------------------------

    def image_point(self, pos: QPointF) -> tuple[float, float]:
        """Viewport position -> image pixel coordinates ``(x, y)`` (pixel centres at .0)."""
        scene = self.mapToScene(pos.toPoint())
        return scene.x() - 0.5, scene.y() - 0.5

    def view_pos(self, x: float, y: float) -> QPointF:
        """Image pixel ``(x, y)`` -> viewport position (for tests and hit-testing)."""
        return QPointF(self.mapFromScene(QPointF(x + 0.5, y + 0.5)))

    def _pixels_per_screen_px(self) -> float:
        scale = self.transform().m11()
        return 1.0 / scale if scale > 0 else 1.0

    def _pointer(self, event: QMouseEvent, button: Button | None = None) -> PointerEvent:
        x, y = self.image_point(event.position())
        mods = event.modifiers()
        return PointerEvent(
            x,
            y,
            button if button is not None else _BUTTONS.get(event.button(), "none"),
            shift=bool(mods & Qt.KeyboardModifier.ShiftModifier),
            ctrl=bool(mods & Qt.KeyboardModifier.ControlModifier),
            pick=POINT_PICK_PX * self._pixels_per_screen_px(),
        )

    # ---- mouse and keys ---------------------------------------------------------------------

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom(1.15**steps)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        button = event.button()
        alt = bool(event.modifiers() & Qt.KeyboardModifier.AltModifier)
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and alt):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            self._cursor_item.setVisible(False)
            event.accept()
            return
        if self._damage is not None:
            self.message.emit(f"Frame {self._damage.index} is damaged: nothing to paint on")
            event.accept()
            return
        if self._ctx is not None:
            self.active_tool.press(self._ctx, self._pointer(event))
            self.render_overlay()
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._pan_from is not None:
            delta = pos - self._pan_from
            self._pan_from = pos
            h, v = self.horizontalScrollBar(), self.verticalScrollBar()
            h.setValue(h.value() - round(delta.x()))
            v.setValue(v.value() - round(delta.y()))
            event.accept()
            return
        if self._ctx is not None:
            self.active_tool.move(self._ctx, self._pointer(event, "none"))
            self.render_overlay()
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self._update_cursor()
            event.accept()
            return
        if self._ctx is not None:
            self.active_tool.release(self._ctx, self._pointer(event))
            self.render_overlay()
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self._ctx is not None and self._pan_from is None:
            self.active_tool.double_click(self._ctx, self._pointer(event))
            self.render_overlay()
        event.accept()

    def leaveEvent(self, event) -> None:
        leave = getattr(self._tools.get(self._tool_name), "leave", None)
        if leave is not None:
            leave()
        self.render_overlay()
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = _KEYS.get(event.key())
        if key is not None and self._ctx is not None and self.active_tool.key(self._ctx, key):
            self.render_overlay()
            event.accept()
            return
        super().keyPressEvent(event)

    def escape(self) -> bool:
        """Esc: the active tool drops what it is doing (a polygon, a selection, a stroke or a
        drag); False when there was nothing to drop."""
        if self._ctx is None:
            return False
        if self.active_tool.key(self._ctx, "escape"):
            self.render_overlay()
            return True
        if self.interacting:
            self.cancel_interaction()
            return True
        return False

    def cancel_interaction(self) -> None:
        """Drop a stroke, polygon, box or point drag in progress (Esc, frame change)."""
        tool = self._tools.get(self._tool_name)
        if tool is not None and self._ctx is not None:
            tool.cancel(self._ctx)
        self.render_overlay()

    @property
    def interacting(self) -> bool:
        """A stroke, polygon, box or point drag is in progress (the frame should not change)."""
        tool = self._tools.get(self._tool_name)
        return tool is not None and tool.interacting

    # ---- overlay ----------------------------------------------------------------------------

    def render_overlay(self) -> None:
        """Show the active tool's :class:`~tracker_core.tools.Overlay`."""
        tool = self._tools.get(self._tool_name)
        over = tool.overlay(self._ctx) if tool is not None and self._ctx is not None else Overlay()
        self._overlay = over
        color = self._active_color()
        path = QPainterPath()
        if over.path:
            path.moveTo(over.path[0][0] + 0.5, over.path[0][1] + 0.5)
            for x, y in over.path[1:]:
                path.lineTo(x + 0.5, y + 0.5)
            if over.closed:
                path.closeSubpath()
        self._path_item.setPen(_cosmetic_pen(color, 2.0))
        self._path_item.setPath(path)
        if over.box is not None:
            x0, y0, x1, y1 = over.box
            self._box_item.setRect(QRectF(x0, y0, x1 - x0 + 1, y1 - y0 + 1))
            pen = _cosmetic_pen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine)
            self._box_item.setPen(pen)
            self._box_item.setVisible(True)
        else:
            self._box_item.setVisible(False)
        self._update_brush_outline(over, color)
        self._update_cursor()
        self.viewport().update()

    def _update_brush_outline(self, over: Overlay, color: QColor) -> None:
        if over.brush is None or self._pan_from is not None:
            self._cursor_item.setVisible(False)
            return
        x, y, r, erase = over.brush
        self._cursor_item.setRect(QRectF(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r))
        edge = QColor(255, 90, 90) if erase else QColor(255, 255, 255)
        style = Qt.PenStyle.DashLine if erase else Qt.PenStyle.SolidLine
        self._cursor_item.setPen(_cosmetic_pen(edge, 1.5, style))
        fill = QColor(0, 0, 0) if erase else QColor(color)
        fill.setAlpha(50)
        self._cursor_item.setBrush(QBrush(fill))
        self._cursor_item.setVisible(True)

    def _update_cursor(self) -> None:
        if self._pan_from is not None:
            return
        if self._overlay.busy:
            self.viewport().setCursor(Qt.CursorShape.BusyCursor)
            return
        cursor = _CURSORS[tool_spec(self._tool_name).cursor]
        if cursor == Qt.CursorShape.BlankCursor and not self._cursor_item.isVisible():
            cursor = Qt.CursorShape.CrossCursor  # no outline yet (pointer not seen)
        self.viewport().setCursor(cursor)

    def _active_color(self) -> QColor:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        return QColor(*spec.color) if spec is not None else QColor(255, 255, 255)

    @property
    def overlay(self) -> Overlay:
        """The overlay last drawn (for tests)."""
        return self._overlay

    # ---- drawing in screen units ------------------------------------------------------------

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        doc = self._doc
        if doc is None:
            return
        unit = self._pixels_per_screen_px()
        self._draw_handles(painter, self._overlay, unit)
        if not self._keypoint_cache:
            return
        hidden = doc.session.hidden_objects
        font = QFont(painter.font())
        font.setPointSizeF(max(1.0, 9.0 * unit))
        painter.setFont(font)
        active = doc.active_object
        moved = self._overlay.moved_point
        for spec in doc.project.objects:
            pts = self._keypoint_cache.get(spec.id)
            if spec.kind != "keypoints" or spec.id in hidden or pts is None:
                continue
            pts = pts.copy()
            if moved is not None and moved[0] == spec.id:
                pts[moved[1], :2] = moved[2:]
            selected = doc.active_point if active is not None and active.id == spec.id else -1
            self._draw_points(painter, spec, pts, unit, selected)

    def _draw_handles(self, painter: QPainter, over: Overlay, unit: float) -> None:
        """Polygon vertex handles (squares, the first one larger: clicking it closes) and the
        smart-selection clicks (green = add, red = remove)."""
        color = self._active_color()
        for i, (x, y) in enumerate(over.handles):
            half = HANDLE_PX * unit * (1.5 if i == 0 and len(over.handles) >= 3 else 1.0)
            painter.setPen(QPen(QColor(0, 0, 0), 1.0 * unit))
            painter.setBrush(QBrush(QColor(255, 255, 255) if i else color))
            painter.drawRect(QRectF(x + 0.5 - half, y + 0.5 - half, 2 * half, 2 * half))
        r = POINT_DRAW_PX * unit
        for x, y, positive in over.clicks:
            fill = QColor(60, 220, 90) if positive else QColor(240, 70, 70)
            painter.setPen(QPen(QColor(255, 255, 255), 1.5 * unit))
            painter.setBrush(QBrush(fill))
            painter.drawEllipse(QPointF(x + 0.5, y + 0.5), r, r)

    def _draw_points(
        self, painter: QPainter, spec: ObjectSpec, pts: np.ndarray, unit: float, selected: int
    ) -> None:
        color = QColor(*spec.color)
        edge_pen = QPen(color, 2.0 * unit)
        painter.setPen(edge_pen)
        for a, b in spec.skeleton:
            if np.isfinite(pts[[a, b], :2]).all():
                painter.drawLine(
                    QPointF(pts[a, 0] + 0.5, pts[a, 1] + 0.5),
                    QPointF(pts[b, 0] + 0.5, pts[b, 1] + 0.5),
                )
        r = POINT_DRAW_PX * unit
        for i, (x, y, vis) in enumerate(pts):
            if not np.isfinite(x):
                continue
            centre = QPointF(x + 0.5, y + 0.5)
            outline = QPen(QColor(255, 255, 0) if i == selected else QColor(0, 0, 0), 1.5 * unit)
            painter.setPen(outline)
            painter.setBrush(QBrush(color) if vis > 0 else Qt.BrushStyle.NoBrush)
            painter.drawEllipse(centre, r, r)
            if vis <= 0:
                painter.setPen(QPen(color, 1.5 * unit, Qt.PenStyle.DashLine))
                painter.drawEllipse(centre, r * 1.6, r * 1.6)
            label_pos = centre + QPointF(r * 1.4, -r)
            painter.setPen(QPen(QColor(0, 0, 0)))  # a dark shadow keeps names readable
            painter.drawText(label_pos + QPointF(unit, unit), spec.keypoint_names[i])
            painter.setPen(QPen(QColor(255, 255, 255)))
            painter.drawText(label_pos, spec.keypoint_names[i])

    # ---- test/automation helpers ------------------------------------------------------------

    def polygon_points(self) -> Sequence[tuple[float, float]]:
        """Vertices of the polygon being clicked (empty unless the polygon tool is active)."""
        return tuple(getattr(self._tools.get("polygon"), "points", ()))

    def close_polygon(self) -> None:
        """Fill the polygon clicked so far (double-click / Enter)."""
        tool = self._tools.get("polygon")
        if tool is not None and self._ctx is not None:
            tool.close(self._ctx)  # type: ignore[attr-defined]
        self.render_overlay()


def _cosmetic_pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, 0)
    pen.setCosmetic(True)
    pen.setWidthF(width)
    pen.setStyle(style)
    return pen
