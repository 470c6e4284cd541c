"""The objects panel: list of objects (colour, name, visibility), the active one, and the point
names of the active keypoint object with their state on the current frame.

Every edit is one Session command (``add_object``, ``rename_object``, ``recolor_object``,
``remove_object``, ``set_object_hidden``, ``set_keypoint_visibility``, ``delete_keypoint``);
the list is rebuilt from the project on every change event.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QGridLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.document import Document
from tracker_core.labels import ObjectSpec
from tracker_core.session import ChangeEvent
from tracker_core.tools.base import default_object_name

ID_ROLE = Qt.ItemDataRole.UserRole


def color_icon(color: tuple[int, int, int], size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*color))
    return QIcon(pixmap)


TITLE_ROOM = 160  # px a window manager's title bar spends on icon and buttons


def text_dialog(parent: QWidget | None, title: str, label: str, text: str) -> QInputDialog:
    """A one-line text dialog wide enough that neither its title nor its label is cut off
    (window managers elide a title wider than the dialog, e.g. "New k… object")."""
    dialog = QInputDialog(parent)
    dialog.setWindowTitle(title)
    dialog.setLabelText(label)
    dialog.setTextValue(text)
    metrics = dialog.fontMetrics()
    title_font = QFont(dialog.font())
    title_font.setBold(True)
    title_width = QFontMetrics(title_font).horizontalAdvance(title) + TITLE_ROOM
    dialog.setMinimumWidth(max(360, title_width, metrics.horizontalAdvance(label) + 40))
    return dialog


def ask_text(parent: QWidget | None, title: str, label: str, text: str) -> tuple[str, bool]:
    """Run :func:`text_dialog`; ``(text, accepted)`` like ``QInputDialog.getText``."""
    dialog = text_dialog(parent, title, label, text)
    accepted = dialog.exec() == QInputDialog.DialogCode.Accepted
    return dialog.textValue(), accepted


def parse_point_names(text: str) -> tuple[str, ...]:
    """``"nose, left eye,tail"`` -> ``("nose", "left eye", "tail")`` (empty names dropped)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


class ObjectsPanel(QWidget):
    """Objects list + buttons + keypoint names. ``message`` goes to the status bar."""

    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._doc: Document | None = None
        self.list = QListWidget()
        self.list.setToolTip(
            "Active object (keys 1–9 pick by position); untick to hide; double-click to rename"
        )
        self.add_mask_button = QPushButton("+ Mask")
        self.add_keypoints_button = QPushButton("+ Keypoints")
        self.rename_button = QPushButton("Rename")
        self.color_button = QPushButton("Colour")
        self.remove_button = QPushButton("Remove")
        buttons = QGridLayout()
        buttons.addWidget(self.add_mask_button, 0, 0)
        buttons.addWidget(self.add_keypoints_button, 0, 1)
        buttons.addWidget(self.rename_button, 1, 0)
        buttons.addWidget(self.color_button, 1, 1)
        buttons.addWidget(self.remove_button, 2, 0, 1, 2)
        self.points_label = QLabel("Points")
        self.points = QListWidget()
        self.points.setToolTip(
            "Click a name, then click the frame to place it; tick = visible, untick = occluded"
        )
        self.delete_point_button = QPushButton("Delete point on this frame")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 2)
        layout.addLayout(buttons)
        layout.addWidget(self.points_label)
        layout.addWidget(self.points, 1)
        layout.addWidget(self.delete_point_button)
        self.list.currentItemChanged.connect(self._on_current_item)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.itemDoubleClicked.connect(lambda _item: self.ask_rename())
        self.points.currentRowChanged.connect(self._on_point_row)
        self.points.itemChanged.connect(self._on_point_changed)
        self.add_mask_button.clicked.connect(self.ask_add_mask)
        self.add_keypoints_button.clicked.connect(self.ask_add_keypoints)
        self.rename_button.clicked.connect(self.ask_rename)
        self.color_button.clicked.connect(self.ask_recolor)
        self.remove_button.clicked.connect(self.remove_active)
        self.delete_point_button.clicked.connect(self.delete_active_point)
        self._set_points_visible(False)

    # ---- document ---------------------------------------------------------------------------

    def set_document(self, doc: Document | None) -> None:
        self._doc = doc
        if doc is not None:
            doc.changed.connect(self._on_changed)
            doc.active_object_changed.connect(lambda _id: self.rebuild())
            doc.active_point_changed.connect(lambda _i: self._rebuild_points())
            doc.frame_changed.connect(lambda _f: self._rebuild_points())
        self.rebuild()

    def _on_changed(self, event: ChangeEvent) -> None:
        doc = self._doc
        if doc is None:
            return
        if event.objects_changed or event.view_changed:
            self.rebuild()
        elif doc.frame in event.frames:
            self._rebuild_points()

    def rebuild(self) -> None:
        """Re-read objects, hidden set and active object."""
        doc = self._doc
        blocker = QSignalBlocker(self.list)
        self.list.clear()
        if doc is None:
            del blocker
            self._set_points_visible(False)
            return
        hidden = doc.session.hidden_objects
        active = doc.active_object
        for position, spec in enumerate(doc.project.objects, start=1):
            kind = "" if spec.kind == "mask" else f"  ({len(spec.keypoint_names)} points)"
            key = f"{position}  " if position <= 9 else "    "
            item = QListWidgetItem(color_icon(spec.color), f"{key}{spec.name}{kind}")
            item.setData(ID_ROLE, spec.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            hidden_state = Qt.CheckState.Unchecked if spec.id in hidden else Qt.CheckState.Checked
            item.setCheckState(hidden_state)
            self.list.addItem(item)
            if active is not None and spec.id == active.id:
                self.list.setCurrentItem(item)
        del blocker
        has_active = active is not None
        for button in (self.rename_button, self.color_button, self.remove_button):
            button.setEnabled(has_active)
        self._rebuild_points()

    def _rebuild_points(self) -> None:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        if doc is None or spec is None or spec.kind != "keypoints":
            self._set_points_visible(False)
            return
        self._set_points_visible(True)
        self.points_label.setText(f"Points of {spec.name} on frame {doc.frame}")
        pts = np.asarray(doc.session.labels(doc.frame).keypoints.get(spec.id))
        blocker = QSignalBlocker(self.points)
        self.points.clear()
        for i, name in enumerate(spec.keypoint_names):
            placed = pts.ndim == 2 and bool(np.isfinite(pts[i, 0]))
            visible = placed and pts[i, 2] > 0
            status = "" if not placed else ("" if visible else "  (occluded)")
            item = QListWidgetItem(f"{name}{status}" if placed else f"{name}  — not placed")
            flags = Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled
            if placed:
                flags |= Qt.ItemFlag.ItemIsUserCheckable
            item.setFlags(flags)
            if placed:
                item.setCheckState(Qt.CheckState.Checked if visible else Qt.CheckState.Unchecked)
            self.points.addItem(item)
        self.points.setCurrentRow(doc.active_point)
        del blocker

    def _set_points_visible(self, on: bool) -> None:
        for widget in (self.points_label, self.points, self.delete_point_button):
            widget.setVisible(on)

    # ---- commands (callable from dialogs, actions and tests) --------------------------------

    def add_mask_object(self, name: str) -> ObjectSpec | None:
        doc = self._doc
        if doc is None or not name.strip():
            return None
        spec = doc.session.add_object(name.strip())
        doc.set_active_object(spec.id)
        return spec

    def add_keypoint_object(self, name: str, point_names: tuple[str, ...]) -> ObjectSpec | None:
        doc = self._doc
        if doc is None or not name.strip():
            return None
        if not point_names:
            self.message.emit("A keypoint object needs at least one point name")
            return None
        skeleton = tuple((i, i + 1) for i in range(len(point_names) - 1))
        spec = doc.session.add_object(
            name.strip(), kind="keypoints", keypoint_names=point_names, skeleton=skeleton
        )
        doc.set_active_object(spec.id)
        return spec

    def rename_active(self, name: str) -> None:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        if doc is not None and spec is not None and name.strip():
            doc.session.rename_object(spec.id, name.strip())

    def recolor_active(self, color: tuple[int, int, int]) -> None:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        if doc is not None and spec is not None:
            doc.session.recolor_object(spec.id, color)

    def remove_active(self) -> None:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        if doc is not None and spec is not None:
            doc.session.remove_object(spec.id)
            self.message.emit(f"Removed {spec.name} (Ctrl+Z brings it back)")

    def delete_active_point(self) -> None:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        if doc is not None and spec is not None and spec.kind == "keypoints":
            doc.session.delete_keypoint(doc.frame, spec.id, doc.active_point)

    # ---- dialogs ----------------------------------------------------------------------------

    def ask_add_mask(self) -> None:
        if self._doc is None:
            return
        default = default_object_name(self._doc.session)
        name, ok = ask_text(self, "New mask object", "Name:", default)
        if ok:
            self.add_mask_object(name)

    def ask_add_keypoints(self) -> None:
        if self._doc is None:
            return
        name, ok = ask_text(self, "New keypoint object", "Name:", "animal")
        if not ok or not name.strip():
            return
        names, ok = ask_text(
            self,
            "New keypoint object",
            "Point names, comma-separated (consecutive points are linked):",
            "nose, neck, tail",
        )
        if ok:
            self.add_keypoint_object(name, parse_point_names(names))

    def ask_rename(self) -> None:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        if spec is None:
            return
        name, ok = ask_text(self, f"Rename {spec.name}", "Name:", spec.name)
        if ok:
            self.rename_active(name)

    def ask_recolor(self) -> None:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        if spec is None:
            return
        color = QColorDialog.getColor(QColor(*spec.color), self, f"Colour of {spec.name}")
        if color.isValid():
            self.recolor_active((color.red(), color.green(), color.blue()))

    # ---- list callbacks ---------------------------------------------------------------------

    def _on_current_item(self, item: QListWidgetItem | None, _prev: object) -> None:
        if item is not None and self._doc is not None:
            self._doc.set_active_object(int(item.data(ID_ROLE)))

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._doc is not None:
            hidden = item.checkState() != Qt.CheckState.Checked
            self._doc.session.set_object_hidden(int(item.data(ID_ROLE)), hidden)

    def _on_point_row(self, row: int) -> None:
        if self._doc is not None and row >= 0:
            self._doc.set_active_point(row)

    def _on_point_changed(self, item: QListWidgetItem) -> None:
        doc = self._doc
        spec = doc.active_object if doc is not None else None
        if doc is None or spec is None or spec.kind != "keypoints":
            return
        row = self.points.row(item)
        visible = item.checkState() == Qt.CheckState.Checked
        doc.session.set_keypoint_visibility(doc.frame, spec.id, row, visible)
