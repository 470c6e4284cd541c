"""The tool registry through real widgets: shortcuts, menu and toolbar switch tools; smart select
runs on a worker from a real mouse drag; polygon handles, object auto-creation, the fixed
toolbar, the hint label and the object dialog."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QTableWidget, QToolButton

from app.dialogs import ShortcutsDialog
from app.main_window import MainWindow
from app.objects_panel import TITLE_ROOM, text_dialog
from app.status import HintLabel
from tests.gui.helpers import click, drag
from tracker_core.tools import TOOLS
from tracker_core.tools.smart import SmartSelectTool

CURSORS = {
    "brush": Qt.CursorShape.CrossCursor,  # no outline until the pointer is over the canvas
    "cross": Qt.CursorShape.CrossCursor,
    "point": Qt.CursorShape.PointingHandCursor,
}


def test_every_registered_tool_has_action_shortcut_icon_and_toolbar_button(
    qtbot, clip_window: MainWindow
) -> None:
    window = clip_window
    buttons = [
        b.defaultAction().objectName()
        for b in window.toolbar.findChildren(QToolButton)
        if b.defaultAction() is not None
    ]
    for spec in TOOLS:
        action = window.commands[f"tool_{spec.name}"]
        assert action.shortcut() == QKeySequence(spec.shortcut)
        assert not action.icon().isNull()
        assert f"action_tool_{spec.name}" in buttons
        assert spec.tip in action.toolTip()
        window.canvas.setFocus()
        qtbot.keyClick(window.canvas, spec.shortcut)
        assert window.canvas.tool == spec.name
        assert action.isChecked()
        assert window.canvas.viewport().cursor().shape() == CURSORS[spec.cursor]
    assert window.toolbar.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly
    # the registry order is the toolbar order
    order = [b for b in buttons if b.startswith("action_tool_")]
    assert order == [f"action_tool_{s.name}" for s in TOOLS]


def test_toolbar_does_not_move_when_undo_labels_change(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    redo_button = window.toolbar.widgetForAction(window.commands["redo"])
    before = (window.toolbar.sizeHint().width(), redo_button.geometry())
    window.set_tool("brush")
    drag(qtbot, window, [(20, 20), (40, 30)])
    window.doc.session.rename_object(window.doc.active_object.id, "a very long object name")
    assert window.commands["undo"].text().startswith("&Undo Rename")
    assert "Undo Rename" in window.commands["undo"].toolTip()
    assert "(Ctrl+Z)" in window.commands["undo"].toolTip()
    qtbot.wait(20)
    assert (window.toolbar.sizeHint().width(), redo_button.geometry()) == before
    assert redo_button.isVisible()  # not pushed into the overflow menu


def test_painting_without_any_object_creates_one(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    assert window.doc.project.objects == ()
    window.set_tool("brush")
    window.canvas.set_brush_radius(3)
    drag(qtbot, window, [(10, 10), (30, 10)])
    objects = window.doc.project.objects
    assert [o.name for o in objects] == ["object 1"]
    assert window.objects_panel.list.count() == 1
    assert window.doc.project.labels(0).mask[10, 20] == objects[0].id
    assert "Created mask object" in window.statusBar().currentMessage()


def test_polygon_shows_vertex_handles_while_clicking(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    window.set_tool("polygon")
    for x, y in [(10, 10), (50, 12), (40, 40)]:
        click(qtbot, window, x, y)
    handles = window.canvas.overlay.handles
    assert len(handles) == 3
    np.testing.assert_allclose(handles, [(10, 10), (50, 12), (40, 40)], atol=1.0)
    image = window.canvas.viewport().grab().toImage()
    centre = window.canvas.view_pos(50, 12).toPoint()
    assert image.pixelColor(centre).lightness() > 200  # a white handle is drawn there
    qtbot.keyClick(window.canvas, Qt.Key.Key_Backspace)
    assert len(window.canvas.overlay.handles) == 2
    click(qtbot, window, 40, 40)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)
    assert window.canvas.overlay.handles == ()
    assert window.doc.project.labels(0).mask[20, 35] != 0


def test_smart_select_box_and_clicks_run_on_a_worker(
    qtbot, clip_window: MainWindow, frame_folder
) -> None:
    window = clip_window
    _folder, _frames, masks = frame_folder
    truth = masks[0] > 0
    ys, xs = np.nonzero(truth)
    window.set_tool("smart")
    tool = window.canvas.active_tool
    assert isinstance(tool, SmartSelectTool)
    box = (xs.min() - 3, ys.min() - 3, xs.max() + 3, ys.max() + 3)
    drag(qtbot, window, [box[:2], ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), box[2:]])
    assert window.canvas.overlay.box is not None
    qtbot.waitUntil(lambda: tool.runs == 1, timeout=20_000)
    spec = window.doc.active_object
    assert spec is not None and spec.name == "object 1"
    mask = window.doc.project.labels(0).mask == spec.id
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8
    assert window.commands["undo"].text() == "&Undo Smart select"
    # a right click removes, a left click adds back; each is its own undo step
    cx, cy = float(xs.mean()), float(ys.mean())
    click(qtbot, window, cx, cy, button=Qt.MouseButton.RightButton)
    qtbot.waitUntil(lambda: tool.runs == 2, timeout=20_000)
    assert window.doc.project.labels(0).mask[round(cy), round(cx)] == 0
    assert [c[2] for c in window.canvas.overlay.clicks] == [False]
    window.undo()
    assert window.doc.project.labels(0).mask[round(cy), round(cx)] == spec.id
    # Esc ends the selection; switching tools keeps the result
    qtbot.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.canvas.overlay.box is None
    window.set_tool("brush")
    assert (window.doc.project.labels(0).mask == spec.id).any()


def test_smart_select_on_another_frame_resets_the_selection(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    window.set_tool("smart")
    tool = window.canvas.active_tool
    drag(qtbot, window, [(5, 5), (30, 30), (60, 50)])
    qtbot.waitUntil(lambda: tool.runs == 1, timeout=20_000)
    window.navigator.step(1)
    assert window.canvas.overlay.box is None and tool.selection is None


def test_hint_label_is_readable_and_never_cut_silently(qtbot, window: MainWindow) -> None:
    hint = window.status.hint
    assert isinstance(hint, HintLabel)
    long = "Paint a keyframe, then propagate. " * 20
    window.status.set_hint(long)
    qtbot.wait(10)
    assert hint.toolTip() == long and hint.full_text == long
    assert hint.text().endswith("…") and len(hint.text()) < len(long)
    palette = hint.palette()
    assert palette.color(hint.foregroundRole()) == palette.color(palette.ColorRole.ToolTipText)
    assert palette.color(hint.backgroundRole()) == palette.color(palette.ColorRole.ToolTipBase)
    window.status.set_hint("short")
    assert hint.text() == "short"


def test_new_object_dialog_is_wide_enough_for_its_title(qtbot, window: MainWindow) -> None:
    dialog = text_dialog(window, "New keypoint object", "Name:", "animal")
    qtbot.addWidget(dialog)
    title = dialog.fontMetrics().horizontalAdvance("New keypoint object")
    assert dialog.minimumWidth() >= title + TITLE_ROOM
    assert dialog.windowTitle() == "New keypoint object"
    assert dialog.textValue() == "animal"


def test_help_lists_every_tool_gesture(qtbot, window: MainWindow) -> None:
    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    rows = [
        " | ".join(t.item(r, c).text() for c in range(t.columnCount()) if t.item(r, c))
        for t in dialog.findChildren(QTableWidget)
        for r in range(t.rowCount())
    ]
    for spec in TOOLS:
        assert any(spec.mouse in row for row in rows), spec.name
        label = spec.label.replace("&", "")
        assert any(label in row and spec.shortcut in row for row in rows), spec.name
