"""Toolbar and menu icons, drawn here with QPainter (no image files, no third-party set).

Each icon is a small function painting on a 24 x 24 grid in the palette's button-text colour (so
it reads on light and dark themes), with one accent colour; :func:`icon` renders it at 1x and 2x.
Credit: drawn for Trackpaint in this file (MIT, like the rest of the project).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from itertools import pairwise

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QGuiApplication,
    QIcon,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
    QPolygonF,
)

GRID = 24
ACCENT = QColor(230, 120, 40)
GREEN = QColor(60, 170, 90)
RED = QColor(215, 70, 60)
Painter = Callable[[QPainter, QColor], None]


def _pen(p: QPainter, color: QColor, width: float = 2.0) -> None:
    pen = QPen(color, width)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)


def _poly(*pts: tuple[float, float]) -> QPolygonF:
    return QPolygonF([QPointF(x, y) for x, y in pts])


def _brush(p: QPainter, ink: QColor) -> None:
    _pen(p, ink)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawLine(QPointF(20, 3), QPointF(10, 13))  # handle
    p.setBrush(QBrush(ACCENT))
    path = QPainterPath(QPointF(10, 12))
    path.cubicTo(QPointF(5, 12), QPointF(6, 18), QPointF(3, 21))
    path.cubicTo(QPointF(9, 21), QPointF(13, 19), QPointF(12, 14))
    path.closeSubpath()
    p.drawPath(path)


def _eraser(p: QPainter, ink: QColor) -> None:
    _pen(p, ink)
    p.setBrush(QBrush(QColor(240, 160, 170)))
    p.drawPolygon(_poly((9, 20), (3, 14), (13, 4), (21, 12), (13, 20)))
    p.drawLine(QPointF(8, 9), QPointF(16, 17))
    p.drawLine(QPointF(9, 21), QPointF(21, 21))


def _polygon(p: QPainter, ink: QColor) -> None:
    pts = ((4, 18), (7, 5), (19, 4), (20, 15), (12, 20))
    _pen(p, ink)
    p.setBrush(QBrush(QColor(ACCENT.red(), ACCENT.green(), ACCENT.blue(), 70)))
    p.drawPolygon(_poly(*pts))
    p.setPen(QPen(ink, 1.0))
    p.setBrush(QBrush(QColor(255, 255, 255)))
    for x, y in pts:
        p.drawRect(QRectF(x - 2, y - 2, 4, 4))


def _smart(p: QPainter, ink: QColor) -> None:
    dash = QPen(ink, 1.5, Qt.PenStyle.DashLine)
    p.setPen(dash)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawRect(QRectF(2.5, 4.5, 19, 15))
    _pen(p, ink, 1.0)
    p.setBrush(QBrush(ACCENT))
    p.drawEllipse(QRectF(6, 8, 12, 9))
    p.setBrush(QBrush(GREEN))
    p.drawEllipse(QPointF(19, 5), 3, 3)  # an "add" click
    _pen(p, QColor(255, 255, 255), 1.2)
    p.drawLine(QPointF(17.5, 5), QPointF(20.5, 5))
    p.drawLine(QPointF(19, 3.5), QPointF(19, 6.5))


def _fill(p: QPainter, ink: QColor) -> None:
    _pen(p, ink)
    p.setBrush(QBrush(QColor(255, 255, 255)))
    p.drawPolygon(_poly((5, 11), (12, 4), (19, 11), (12, 18)))
    p.setBrush(QBrush(ACCENT))
    path = QPainterPath(QPointF(19, 13))
    path.cubicTo(QPointF(22, 17), QPointF(22, 20), QPointF(19.5, 20.5))
    path.cubicTo(QPointF(17, 20.5), QPointF(17, 17), QPointF(19, 13))
    p.drawPath(path)


def _keypoints(p: QPainter, ink: QColor) -> None:
    pts = ((5, 18), (9, 9), (16, 6), (19, 17))
    _pen(p, ink, 1.6)
    for a, b in pairwise(pts):
        p.drawLine(QPointF(*a), QPointF(*b))
    p.setBrush(QBrush(ACCENT))
    _pen(p, ink, 1.0)
    for x, y in pts:
        p.drawEllipse(QPointF(x, y), 2.6, 2.6)


def _arrow(p: QPainter, ink: QColor, forward: bool) -> None:
    """Curved undo/redo arrow."""
    _pen(p, ink, 2.2)
    p.setBrush(Qt.BrushStyle.NoBrush)
    path = QPainterPath(QPointF(6, 10))
    path.cubicTo(QPointF(10, 5), QPointF(20, 6), QPointF(19, 14))
    path.cubicTo(QPointF(18, 19), QPointF(12, 20), QPointF(9, 19))
    p.save()
    if forward:
        p.translate(GRID, 0)
        p.scale(-1, 1)
    p.drawPath(path)
    p.setBrush(QBrush(ink))
    p.drawPolygon(_poly((3, 5), (9, 12), (2, 12)))
    p.restore()


def _undo(p: QPainter, ink: QColor) -> None:
    _arrow(p, ink, forward=False)


def _redo(p: QPainter, ink: QColor) -> None:
    _arrow(p, ink, forward=True)


def _play(p: QPainter, ink: QColor, direction: int, x: float) -> None:
    """A propagation triangle at ``x`` pointing right (1) or left (-1), with a frame bar."""
    p.setBrush(QBrush(ACCENT))
    _pen(p, ink, 1.2)
    tip = x + 7 * direction
    p.drawPolygon(_poly((x, 6), (tip, 12), (x, 18)))


def _forward(p: QPainter, ink: QColor) -> None:
    _pen(p, ink, 2.0)
    p.drawLine(QPointF(5, 5), QPointF(5, 19))
    _play(p, ink, 1, 9)
    _play(p, ink, 1, 14)


def _backward(p: QPainter, ink: QColor) -> None:
    _pen(p, ink, 2.0)
    p.drawLine(QPointF(19, 5), QPointF(19, 19))
    _play(p, ink, -1, 15)
    _play(p, ink, -1, 10)


def _both(p: QPainter, ink: QColor) -> None:
    _pen(p, ink, 2.0)
    p.drawLine(QPointF(12, 4), QPointF(12, 20))
    _play(p, ink, -1, 10)
    _play(p, ink, 1, 14)


def _cancel(p: QPainter, ink: QColor) -> None:
    _pen(p, ink, 1.2)
    p.setBrush(QBrush(RED))
    p.drawRoundedRect(QRectF(5, 5, 14, 14), 2, 2)


def _outline(p: QPainter, ink: QColor) -> None:
    pen = QPen(ACCENT, 2.4)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.drawEllipse(QRectF(4, 6, 16, 12))
    _pen(p, ink, 1.0)
    p.drawRect(QRectF(2.5, 2.5, 19, 19))


def _fill_holes(p: QPainter, ink: QColor) -> None:
    _pen(p, ink, 1.2)
    p.setBrush(QBrush(ACCENT))
    path = QPainterPath()
    path.addEllipse(QRectF(3, 4, 18, 16))
    path.addEllipse(QRectF(9, 9, 6, 6))
    p.drawPath(path)
    p.setPen(QPen(QColor(255, 255, 255), 1.0, Qt.PenStyle.DotLine))
    p.setBrush(QBrush(QColor(ACCENT.red(), ACCENT.green(), ACCENT.blue(), 140)))
    p.drawEllipse(QRectF(9, 9, 6, 6))


def _next_uncertain(p: QPainter, ink: QColor) -> None:
    _pen(p, ink, 2.0)
    p.drawLine(QPointF(3, 19), QPointF(21, 19))
    p.setBrush(QBrush(QColor(240, 190, 40)))
    _pen(p, ink, 1.2)
    p.drawPolygon(_poly((12, 3), (20, 16), (4, 16)))
    _pen(p, ink, 1.8)
    p.drawLine(QPointF(12, 7.5), QPointF(12, 11.5))
    p.drawPoint(QPointF(12, 14))


ICONS: dict[str, Painter] = {
    "brush": _brush,
    "eraser": _eraser,
    "polygon": _polygon,
    "smart": _smart,
    "fill": _fill,
    "keypoints": _keypoints,
    "undo": _undo,
    "redo": _redo,
    "forward": _forward,
    "backward": _backward,
    "both": _both,
    "cancel": _cancel,
    "outline": _outline,
    "fill_holes": _fill_holes,
    "next_uncertain": _next_uncertain,
}


def render(name: str, size: int, ink: QColor) -> QPixmap:
    """The drawing ``name`` as a ``size`` x ``size`` transparent pixmap."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.scale(size / GRID, size / GRID)
    ICONS[name](painter, ink)
    painter.end()
    return pixmap


@cache
def icon(name: str) -> QIcon:
    """The icon called ``name`` (KeyError for an unknown one), in the palette's text colour."""
    if name not in ICONS:
        raise KeyError(f"no icon {name!r}")
    palette = QGuiApplication.palette()
    ink = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.ButtonText)
    result = QIcon()
    for size in (24, 48):
        result.addPixmap(render(name, size, ink))
    disabled = QColor(ink)
    disabled.setAlphaF(0.35)
    for size in (24, 48):
        result.addPixmap(render(name, size, disabled), QIcon.Mode.Disabled)
    return result
