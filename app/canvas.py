"""The canvas: the current frame with its label overlay, and the painting tools.

Mouse input becomes Session commands (``begin_stroke``/``stroke_to``/``end_stroke``,
``fill_polygon``, ``set_keypoint`` ...); the canvas itself keeps only view state (zoom, tool,
brush size, overlay opacity/outline, the polygon being clicked, a point being dragged).

Navigation: wheel zooms around the cursor; middle-drag or Alt+left-drag pans. Brush/eraser:
left-drag paints (right-drag erases with the brush). Polygon: click vertices, double-click or
click the first vertex to fill, right-click or Esc cancels. Keypoints: click places the selected
point name of the active keypoint object (then selects the next unplaced one), drag moves a
point, right-click deletes it, Shift+click toggles visible/occluded.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

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
    QGraphicsScene,
    QGraphicsTextItem,
    QGraphicsView,
    QWidget,
)

from app.document import Document
from tracker_core.labels import ObjectSpec
from tracker_core.session import ChangeEvent
from tracker_core.video import DamagedFrame

Tool = Literal["brush", "eraser", "polygon", "keypoints"]
TOOLS: tuple[Tool, ...] = ("brush", "eraser", "polygon", "keypoints")
MIN_BRUSH, MAX_BRUSH = 1.0, 200.0
POINT_PICK_PX = 9.0  # screen pixels within which a click grabs a keypoint / closes a polygon
POINT_DRAW_PX = 5.0
DAMAGED_BACKGROUND = QColor(52, 22, 34)


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


class Canvas(QGraphicsView):
    """Frame + overlay + tools. ``message`` carries short hints for the status bar;
    ``tool_changed``/``brush_changed`` keep toolbars in sync."""

    message = Signal(str)
    tool_changed = Signal(str)
    brush_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc: Document | None = None
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
        self._polygon_item = QGraphicsPathItem()
        self._polygon_item.setZValue(3)
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
            self._polygon_item,
            self._cursor_item,
        )
        for item in items:
            self._scene.addItem(item)
        self.tool: Tool = "brush"
        self.brush_radius = 12.0
        self._opacity = 0.5
        self._outline = False
        self._overlay_item.setOpacity(self._opacity)
        self._fit = True
        self._pan_from: QPointF | None = None
        self._painting = False
        self._polygon: list[tuple[float, float]] = []
        self._hover: QPointF | None = None
        self._drag_point: tuple[int, int, tuple[float, float]] | None = None  # (obj, idx, xy)
        self._keypoint_cache: dict[int, np.ndarray] = {}

    # ---- document ---------------------------------------------------------------------------

    def set_document(self, doc: Document | None) -> None:
        self._cancel_interaction()
        self._doc = doc
        if doc is None:
            self._frame_item.setPixmap(QPixmap())
            self._overlay_item.setPixmap(QPixmap())
            return
        doc.frame_changed.connect(self._on_frame_changed)
        doc.changed.connect(self._on_changed)
        doc.active_object_changed.connect(lambda _id: self.viewport().update())
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
        self._cancel_interaction()
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
        self._cancel_interaction()
        self.refresh_frame()

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

    def set_tool(self, tool: Tool) -> None:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}")
        self._cancel_interaction()
        self.tool = tool
        self._update_cursor_item()
        self.tool_changed.emit(tool)
        doc = self._doc
        if doc is not None and doc.active_object is not None:
            wants = "keypoints" if tool == "keypoints" else "mask"
            if doc.active_object.kind != wants:
                self.message.emit(f"Select a {wants} object in the Objects panel to use this tool")

    def set_brush_radius(self, radius: float) -> None:
        self.brush_radius = float(np.clip(radius, MIN_BRUSH, MAX_BRUSH))
        self._update_cursor_item()
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
        self._update_cursor_item()

    def fit_to_window(self) -> None:
        self._fit = True
        if not self.sceneRect().isEmpty():
            self.fitInView(self.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
        self._update_cursor_item()

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

    # ---- mouse ------------------------------------------------------------------------------

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
            event.accept()
            return
        if self._doc is None:
            return
        if self._damage is not None:
            self.message.emit(f"Frame {self._damage.index} is damaged: nothing to paint on")
            event.accept()
            return
        x, y = self.image_point(event.position())
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if self.tool in ("brush", "eraser"):
            erase = self.tool == "eraser" or button == Qt.MouseButton.RightButton
            self._press_brush(x, y, erase=erase)
        elif self.tool == "polygon":
            self._press_polygon(x, y, button)
        elif self.tool == "keypoints":
            self._press_keypoint(x, y, button, shift)
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
        self._hover = pos
        self._update_cursor_item()
        if self._doc is None:
            return
        x, y = self.image_point(pos)
        if self._painting:
            self._doc.session.stroke_to(x, y)
        elif self._drag_point is not None:
            oid, idx, _ = self._drag_point
            self._drag_point = (oid, idx, (x, y))
            self.viewport().update()
        elif self._polygon:
            self._update_polygon_item((x, y))
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (
            Qt.MouseButton.MiddleButton,
            Qt.MouseButton.LeftButton,
        ):
            self._pan_from = None
            self.viewport().unsetCursor()
            self._update_cursor_item()
            event.accept()
            return
        if self._doc is None:
            return
        if self._painting:
            self._painting = False
            self._doc.session.end_stroke()
        elif self._drag_point is not None:
            oid, idx, (x, y) = self._drag_point
            self._drag_point = None
            pts = self._keypoint_cache.get(oid)
            visible = pts is None or bool(pts[idx, 2] > 0)
            x, y = self._clamp(x, y)
            self._doc.session.set_keypoint(self._doc.frame, oid, idx, x, y, visible)
        event.accept()

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.tool == "polygon" and event.button() == Qt.MouseButton.LeftButton:
            self._close_polygon()
            event.accept()
            return
        self.mousePressEvent(event)

    def leaveEvent(self, event) -> None:
        self._hover = None
        self._update_cursor_item()
        super().leaveEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and (self._polygon or self._painting):
            self._cancel_interaction()
            event.accept()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._polygon:
            self._close_polygon()
            event.accept()
            return
        super().keyPressEvent(event)

    # ---- tools ------------------------------------------------------------------------------

    def _active(self, kind: str) -> ObjectSpec | None:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        if spec is None:
            self.message.emit("Add an object first (Objects panel or Ctrl+N)")
            return None
        if spec.kind != kind:
            if kind == "mask":
                self.message.emit(f"{spec.name} is a keypoint object: use the keypoint tool (K)")
            else:
                self.message.emit(f"{spec.name} is a mask object: select a keypoint object")
            return None
        return spec

    def _press_brush(self, x: float, y: float, erase: bool) -> None:
        spec = self._active("mask")
        if spec is None or self._doc is None or self._painting:
            return
        session = self._doc.session
        session.begin_stroke(self._doc.frame, spec.id, self.brush_radius, erase=erase)
        self._painting = True
        session.stroke_to(x, y)

    def _press_polygon(self, x: float, y: float, button: Qt.MouseButton) -> None:
        if button == Qt.MouseButton.RightButton:
            self._cancel_interaction()
            return
        if button != Qt.MouseButton.LeftButton or self._active("mask") is None:
            return
        if len(self._polygon) >= 3:
            fx, fy = self._polygon[0]
            pick = POINT_PICK_PX * self._pixels_per_screen_px()
            if math.hypot(x - fx, y - fy) <= pick:
                self._close_polygon()
                return
        self._polygon.append(self._clamp(x, y))
        self._update_polygon_item((x, y))

    def _close_polygon(self) -> None:
        points, self._polygon = self._polygon, []
        self._polygon_item.setPath(QPainterPath())
        doc = self._doc
        spec = self._active("mask")
        if doc is None or spec is None:
            return
        if len(points) < 3:
            self.message.emit("A polygon needs at least 3 points")
            return
        doc.session.fill_polygon(doc.frame, spec.id, points)

    def close_polygon(self) -> None:
        """Fill the polygon clicked so far (double-click / Enter)."""
        self._close_polygon()

    def _update_polygon_item(self, hover: tuple[float, float] | None) -> None:
        path = QPainterPath()
        pts = [*self._polygon, *([hover] if hover is not None else [])]
        if pts:
            path.moveTo(pts[0][0] + 0.5, pts[0][1] + 0.5)
            for x, y in pts[1:]:
                path.lineTo(x + 0.5, y + 0.5)
        pen = QPen(self._active_color(), 0)
        pen.setCosmetic(True)
        pen.setWidthF(2.0)
        self._polygon_item.setPen(pen)
        self._polygon_item.setPath(path)

    def _press_keypoint(self, x: float, y: float, button: Qt.MouseButton, shift: bool) -> None:
        doc = self._doc
        spec = self._active("keypoints")
        if doc is None or spec is None:
            return
        hit = self._hit_keypoint(spec.id, x, y)
        session = doc.session
        if button == Qt.MouseButton.RightButton:
            if hit is not None:
                session.delete_keypoint(doc.frame, spec.id, hit)
            return
        if button != Qt.MouseButton.LeftButton:
            return
        if hit is not None and shift:
            visible = bool(self._keypoint_cache[spec.id][hit, 2] > 0)
            session.set_keypoint_visibility(doc.frame, spec.id, hit, not visible)
            return
        if hit is not None:
            doc.set_active_point(hit)
            px, py = self._keypoint_cache[spec.id][hit, :2]
            self._drag_point = (spec.id, hit, (float(px), float(py)))
            return
        index = doc.active_point
        x, y = self._clamp(x, y)
        session.set_keypoint(doc.frame, spec.id, index, x, y, True)
        doc.set_active_point(self._next_unplaced(spec, index))

    def _next_unplaced(self, spec: ObjectSpec, after: int) -> int:
        pts = self._keypoint_cache.get(spec.id)
        n = len(spec.keypoint_names)
        if pts is None:
            return (after + 1) % n
        for k in range(1, n + 1):
            j = (after + k) % n
            if not np.isfinite(pts[j, 0]):
                return j
        return (after + 1) % n

    def _hit_keypoint(self, object_id: int, x: float, y: float) -> int | None:
        pts = self._keypoint_cache.get(object_id)
        if pts is None:
            return None
        d = np.hypot(pts[:, 0] - x, pts[:, 1] - y)
        d = np.where(np.isfinite(d), d, np.inf)
        best = int(np.argmin(d))
        return best if d[best] <= POINT_PICK_PX * self._pixels_per_screen_px() else None

    def _clamp(self, x: float, y: float) -> tuple[float, float]:
        doc = self._doc
        if doc is None:
            return x, y
        return (
            float(np.clip(x, 0, doc.project.width - 1)),
            float(np.clip(y, 0, doc.project.height - 1)),
        )

    def cancel_interaction(self) -> None:
        """Drop a stroke, polygon or point drag in progress (Esc)."""
        self._cancel_interaction()

    def _cancel_interaction(self) -> None:
        if self._painting and self._doc is not None:
            self._doc.session.cancel_stroke()
        self._painting = False
        self._polygon = []
        self._polygon_item.setPath(QPainterPath())
        self._drag_point = None

    def _active_color(self) -> QColor:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        return QColor(*spec.color) if spec is not None else QColor(255, 255, 255)

    def _update_cursor_item(self) -> None:
        show = (
            self.tool in ("brush", "eraser") and self._hover is not None and self._pan_from is None
        )
        self._cursor_item.setVisible(show)
        if not show or self._hover is None:
            if self.tool in ("brush", "eraser"):
                self.viewport().setCursor(Qt.CursorShape.CrossCursor)
            return
        self.viewport().setCursor(Qt.CursorShape.BlankCursor)
        x, y = self.image_point(self._hover)
        r = self.brush_radius
        self._cursor_item.setRect(QRectF(x + 0.5 - r, y + 0.5 - r, 2 * r, 2 * r))
        color = QColor(255, 255, 255) if self.tool == "brush" else QColor(255, 90, 90)
        pen = QPen(color, 1.5)
        pen.setCosmetic(True)
        if self.tool == "eraser":
            pen.setStyle(Qt.PenStyle.DashLine)
        self._cursor_item.setPen(pen)
        fill = self._active_color() if self.tool == "brush" else QColor(0, 0, 0)
        fill.setAlpha(50)
        self._cursor_item.setBrush(QBrush(fill))

    # ---- keypoints drawing ------------------------------------------------------------------

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawForeground(painter, rect)
        doc = self._doc
        if doc is None or not self._keypoint_cache:
            return
        hidden = doc.session.hidden_objects
        unit = self._pixels_per_screen_px()
        font = QFont(painter.font())
        font.setPointSizeF(max(1.0, 9.0 * unit))
        painter.setFont(font)
        active = doc.active_object
        for spec in doc.project.objects:
            pts = self._keypoint_cache.get(spec.id)
            if spec.kind != "keypoints" or spec.id in hidden or pts is None:
                continue
            pts = pts.copy()
            if self._drag_point is not None and self._drag_point[0] == spec.id:
                _, idx, (dx, dy) = self._drag_point
                pts[idx, :2] = (dx, dy)
            selected = doc.active_point if active is not None and active.id == spec.id else -1
            self._draw_points(painter, spec, pts, unit, selected)

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

    @property
    def interacting(self) -> bool:
        """A stroke, polygon or point drag is in progress (the frame should not change)."""
        return self._painting or bool(self._polygon) or self._drag_point is not None

    # ---- test/automation helpers ------------------------------------------------------------

    def polygon_points(self) -> Sequence[tuple[float, float]]:
        return tuple(self._polygon)
