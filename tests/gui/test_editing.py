"""Canvas tools, keypoints, the objects panel, the timeline and the shortcut table."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, Qt

from app.actions import ACTIONS, build_actions, shortcut_rows
from app.canvas import color_table, outline_ids, overlay_image
from app.dialogs import ShortcutsDialog
from app.main_window import MainWindow
from tests.gui.helpers import click, drag
from tracker_core.labels import ObjectSpec
from tracker_core.project import FrameState


def test_keypoints_place_drag_delete_and_toggle_visibility(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    spec = window.objects_panel.add_keypoint_object("animal", ("nose", "tail"))
    assert window.objects_panel.points.count() == 2
    window.set_tool("keypoints")
    click(qtbot, window, 10, 12)
    assert window.doc.active_point == 1  # moves on to the next unplaced point
    click(qtbot, window, 40, 30)
    pts = window.doc.project.labels(0).keypoints[spec.id]
    np.testing.assert_allclose(pts[:, :2], [[10, 12], [40, 30]], atol=1.0)
    assert (pts[:, 2] == 1).all()
    assert window.doc.project.state(0) == FrameState.PAINTED

    drag(qtbot, window, [(10, 12), (20, 16), (30, 20)])  # drag nose
    pts = window.doc.project.labels(0).keypoints[spec.id]
    np.testing.assert_allclose(pts[0, :2], [30, 20], atol=1.0)

    click(qtbot, window, 30, 20, modifier=Qt.KeyboardModifier.ShiftModifier)  # occluded
    assert window.doc.project.labels(0).keypoints[spec.id][0, 2] == 0
    assert "occluded" in window.objects_panel.points.item(0).text()

    click(qtbot, window, 40, 30, button=Qt.MouseButton.RightButton)  # delete tail
    assert np.isnan(window.doc.project.labels(0).keypoints[spec.id][1, 0])
    assert "not placed" in window.objects_panel.points.item(1).text()

    # the panel's checkbox toggles visibility back on
    window.objects_panel.points.item(0).setCheckState(Qt.CheckState.Checked)
    assert window.doc.project.labels(0).keypoints[spec.id][0, 2] == 1

    # the brush refuses a keypoint object with a hint instead of an exception
    window.set_tool("brush")
    click(qtbot, window, 50, 30)
    assert "keypoint object" in window.statusBar().currentMessage()


def test_objects_panel_add_rename_recolour_hide_remove(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    panel = window.objects_panel
    a = panel.add_mask_object("cat")
    b = panel.add_mask_object("dog")
    assert panel.list.count() == 2 and window.doc.active_object.id == b.id
    window.commands["object_1"].trigger()
    assert window.doc.active_object.id == a.id
    panel.rename_active("tabby")
    panel.recolor_active((10, 200, 30))
    assert window.doc.project.object(a.id).name == "tabby"
    assert window.doc.project.object(a.id).color == (10, 200, 30)
    assert "tabby" in panel.list.item(0).text()

    window.doc.session.paint_stroke(0, a.id, [(20, 20)], 5)
    panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert a.id in window.doc.session.hidden_objects
    pixmap_alpha = window.canvas._overlay_item.pixmap().toImage().pixelColor(20, 20).alpha()
    assert pixmap_alpha == 0  # hidden objects are not drawn
    panel.list.item(0).setCheckState(Qt.CheckState.Checked)
    assert window.canvas._overlay_item.pixmap().toImage().pixelColor(20, 20).alpha() == 255

    panel.remove_active()
    assert [o.name for o in window.doc.project.objects] == ["dog"]
    assert window.doc.project.labels(0).mask[20, 20] == 0
    window.commands["undo"].trigger()
    assert [o.name for o in window.doc.project.objects] == ["tabby", "dog"]
    assert window.doc.project.labels(0).mask[20, 20] == a.id
    assert panel.list.count() == 2


def test_brush_keys_fill_holes_and_pan_zoom(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    spec = window.objects_panel.add_mask_object("ring")
    r0 = window.canvas.brush_radius
    window.commands["brush_larger"].trigger()
    assert window.canvas.brush_radius > r0
    assert window.brush_spin.value() == round(window.canvas.brush_radius)
    window.commands["brush_smaller"].trigger()
    window.commands["brush_smaller"].trigger()
    assert window.canvas.brush_radius < r0

    ring = np.zeros((64, 96), np.uint8)
    ring[10:40, 10:40] = spec.id
    ring[20:30, 20:30] = 0
    window.doc.session.set_mask(0, ring)
    window.commands["fill_holes"].trigger()
    assert window.doc.project.labels(0).mask[25, 25] == spec.id

    # eraser removes only under the brush
    window.set_tool("eraser")
    window.canvas.set_brush_radius(2)
    drag(qtbot, window, [(15, 15), (16, 15)])
    mask = window.doc.project.labels(0).mask
    assert mask[15, 15] == 0 and mask[35, 35] == spec.id

    # zoom keeps the point under the cursor roughly fixed; middle-drag pans
    window.canvas.zoom(4.0)
    scale = window.canvas.transform().m11()
    before = window.canvas.horizontalScrollBar().value()
    viewport = window.canvas.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(200, 200))
    qtbot.mouseMove(viewport, QPoint(150, 200))
    qtbot.mouseRelease(viewport, Qt.MouseButton.MiddleButton, pos=QPoint(150, 200))
    assert window.canvas.horizontalScrollBar().value() == before + 50
    assert window.canvas.transform().m11() == scale
    assert window.doc.project.labels(0).mask[35, 35] == spec.id  # panning painted nothing


def test_timeline_strip_click_and_navigation_actions(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    strip = window.timeline.strip
    qtbot.mouseClick(strip, Qt.MouseButton.LeftButton, pos=QPoint(round(strip.cell_center(7)), 5))
    assert window.doc.frame == 7
    window.commands["next_frame"].trigger()
    assert window.doc.frame == 8 and window.timeline.slider.value() == 8
    window.commands["back_10"].trigger()
    assert window.doc.frame == 0
    window.commands["last_frame"].trigger()
    assert window.doc.frame == 11
    window.timeline.slider.setValue(4)
    assert window.doc.frame == 4
    assert "frame 4 / 11" in window.status.frame.text()


def test_next_uncertain_frame_jumps_to_low_confidence(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    window.objects_panel.add_mask_object("x")
    window.doc.session.paint_stroke(0, 1, [(30, 30)], 6)
    window.commands["propagate_forward"].trigger()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    conf = window.doc.project.confidences()
    expected = window.doc.session.next_uncertain_frame(0)
    window.doc.set_frame(0)
    window.commands["next_uncertain"].trigger()
    if expected is None:
        assert window.doc.frame == 0
        assert "No uncertain" in window.statusBar().currentMessage()
    else:
        assert window.doc.frame == expected and conf[expected] < window.uncertain_threshold


def test_shortcuts_dialog_lists_the_action_table(qtbot, window: MainWindow) -> None:
    dialog = ShortcutsDialog(window)
    qtbot.addWidget(dialog)
    rows = shortcut_rows()
    texts = {dialog.table.item(r, 2).text() for r in range(dialog.table.rowCount())}
    for needed in ("F", "Shift+F", "Ctrl+Z", "Space", "N", "B", "E", "P", "K", "[", "]"):
        assert any(needed in t.split(", ") for t in texts), needed
    assert dialog.table.rowCount() >= len(rows)
    keyed = [spec.key for spec in ACTIONS if spec.shortcuts and not spec.key.startswith("object_")]
    assert len(rows) == len(keyed) + 1  # + one row for the keys 1 … 9
    all_shortcuts = [s for spec in ACTIONS for s in spec.shortcuts]
    assert len(all_shortcuts) == len(set(all_shortcuts)), "a shortcut is bound twice"


def test_build_actions_requires_every_handler(window: MainWindow) -> None:
    try:
        build_actions(window, {"open": lambda: None})
    except KeyError as exc:
        assert "save" in str(exc)
    else:
        raise AssertionError("missing handlers were accepted")


def test_keyboard_shortcut_reaches_the_action(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    window.activateWindow()
    window.canvas.setFocus()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=2000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.doc.frame == 1
    qtbot.keyClick(window.canvas, Qt.Key.Key_E)
    assert window.canvas.tool == "eraser"
    qtbot.keyClick(window.canvas, Qt.Key.Key_BracketRight)
    assert window.canvas.brush_radius > 12


def test_overlay_rendering_helpers() -> None:
    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 2
    spec = ObjectSpec(2, "a", (10, 20, 30))
    image = overlay_image(mask, color_table([spec]))
    assert image.pixelColor(3, 3).getRgb() == (10, 20, 30, 255)
    assert image.pixelColor(0, 0).alpha() == 0
    edge = outline_ids(mask)
    assert edge[2, 2] == 2 and edge[1, 1] == 2 and edge[4, 4] == 0 and edge[0, 0] == 0
    outlined = overlay_image(mask, color_table([spec]), outline=True)
    assert outlined.pixelColor(2, 2).alpha() == 255 and outlined.pixelColor(4, 4).alpha() == 0
    hidden = overlay_image(mask, color_table([spec], hidden={2}))
    assert hidden.pixelColor(3, 3).alpha() == 0


def test_play_advances_and_stops_at_the_end(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    window.doc.set_frame(8)
    window.commands["play"].trigger()
    assert window.commands["play"].isChecked()
    qtbot.waitUntil(lambda: window.doc.frame == 11, timeout=5000)
    qtbot.waitUntil(lambda: not window.commands["play"].isChecked(), timeout=5000)
    assert not window.navigator.play_timer.isActive()


def test_navigating_during_propagation_pauses_following(qtbot, make_window, frame_folder) -> None:
    from tests.gui.helpers import SlowLab, wait_idle

    window = make_window(SlowLab())
    folder, _frames, masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    window.doc.session.set_mask(0, masks[0])
    window.propagate("forward")
    qtbot.waitUntil(lambda: window.status.progress.value() >= 1, timeout=30_000)
    window.commands["first_frame"].trigger()
    assert not window.following and window.status.resume_follow.isVisible()
    # painting on the frame shown while the worker runs is allowed and lands as a keyframe
    window.doc.session.paint_stroke(0, 1, [(5, 5)], 2)
    wait_idle(qtbot, window)
    assert window.doc.frame == 0
    assert window.doc.project.state(0) == FrameState.PAINTED


def test_escape_drops_a_polygon_before_cancelling_a_job(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    window.objects_panel.add_mask_object("a")
    window.set_tool("polygon")
    click(qtbot, window, 10, 10)
    click(qtbot, window, 30, 10)
    assert len(window.canvas.polygon_points()) == 2
    window.commands["cancel_job"].trigger()
    assert window.canvas.polygon_points() == ()
    assert window.doc.project.state(0) == FrameState.EMPTY
    window.commands["undo"].trigger()  # undoes "Add a"
    assert window.doc.project.objects == ()
    assert not window.commands["undo"].isEnabled()
    window.undo()
    assert "Nothing to undo" in window.statusBar().currentMessage()


def test_confidence_plot_marks_uncertain_frames(qtbot, window: MainWindow) -> None:
    plot = window.timeline.plot
    conf = np.array([np.nan, 0.9, 0.4, 0.6, 0.1], np.float32)
    plot.set_data(conf, np.array([2, 4]), 0.5)  # the caller's uncertain_frames
    np.testing.assert_array_equal(plot.uncertain_frames(), [2, 4])
    assert plot.threshold() == 0.5
    _x, y = plot.curve_data()
    np.testing.assert_allclose(y, conf)


def test_following_a_run_is_throttled_and_reuses_the_workers_decoded_frames(
    qtbot, make_window, frame_folder
) -> None:
    """Issue 12: the GUI thread must not take the run's CPU: the view jumps at most once per
    FOLLOW_MS (the last frame is still shown) and shows the frames the worker has just decoded
    instead of decoding them again."""
    import time

    from app.main_window import FOLLOW_MS
    from tests.gui.helpers import SlowLab, wait_idle

    window = make_window(SlowLab())
    folder, _frames, masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    window.doc.session.set_mask(0, masks[0])
    doc = window.doc
    jumps: list[int] = []
    doc.frame_changed.connect(jumps.append)
    decodes: list[int] = []
    display_frame = doc.display.frame
    doc.display.frame = lambda i: decodes.append(i) or display_frame(i)
    started = time.monotonic()
    window.propagate("forward")
    wait_idle(qtbot, window)
    elapsed = time.monotonic() - started
    last = doc.num_frames - 1
    assert doc.project.state(last) == FrameState.PROPAGATED
    assert jumps and jumps[-1] == last and doc.frame == last  # the newest frame is shown
    assert len(jumps) <= elapsed * 1000 / FOLLOW_MS + 2, (jumps, elapsed)
    assert len(jumps) < last  # some frames were skipped, not one repaint per frame
    assert decodes == []  # every frame shown came from the worker's cache
