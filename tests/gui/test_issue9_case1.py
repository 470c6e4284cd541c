"""Issue 9, found case 1, through the real widgets: the bear painted on frames 0 and 20 (polygon
tool), keypoints placed on frame 0 (keypoint tool), F on frame 0. The keypoints must run on past
the bear's keyframe, frame 20 keeps the bear's painted pixels, the timeline shows the active
object's states with a row per object, F on frame 19 propagates, editing the bear stales only the
bear, and the COCO export has keypoints past frame 20.

Imports only what existed before per-object provenance, so it runs — and fails — on that code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from app.main_window import MainWindow
from tests.fixtures_video import make_moving_square_frames, write_frame_folder
from tests.gui.helpers import click, wait_idle
from tracker_core.export import import_coco
from tracker_core.project import FrameState

N = 24
P, E, S, K = FrameState.PROPAGATED, FrameState.EMPTY, FrameState.STALE, FrameState.PAINTED


@pytest.fixture
def long_clip(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    """A 24-frame moving-square folder (64 x 96) and its masks."""
    frames, masks = make_moving_square_frames(n=N)
    folder = tmp_path / "clip24"
    write_frame_folder(folder, frames)
    return folder, masks


def polygon(qtbot, window: MainWindow, mask: np.ndarray) -> None:
    """Fill the bounding box of ``mask`` with the polygon tool (real clicks)."""
    ys, xs = np.nonzero(mask)
    window.set_tool("polygon")
    for x, y in ((xs.min(), ys.min()), (xs.max(), ys.min()), (xs.max(), ys.max())):
        click(qtbot, window, float(x), float(y))
    click(qtbot, window, float(xs.min()), float(ys.max()))
    window.canvas.close_polygon()


def click_strip(qtbot, window: MainWindow, frame: int) -> None:
    strip = window.timeline.strip
    qtbot.mouseClick(
        strip, Qt.MouseButton.LeftButton, pos=QPoint(round(strip.cell_center(frame)), 10)
    )
    assert window.doc.frame == frame


def test_keypoints_run_past_the_bears_keyframe_through_the_widgets(
    qtbot, window: MainWindow, long_clip, tmp_path: Path
) -> None:
    """Issue 9, found case 1: bear painted on 0 and 20, keypoints placed on 0, F on frame 0."""
    folder, masks = long_clip
    assert window.open_path(folder)
    project = window.doc.project
    bear = window.objects_panel.add_mask_object("bear")
    polygon(qtbot, window, masks[0] > 0)
    animal = window.objects_panel.add_keypoint_object("animal", ("nose", "tail"))
    window.set_tool("keypoints")
    click(qtbot, window, 12, 30)
    click(qtbot, window, 20, 34)
    window.commands["object_1"].trigger()  # back to the bear
    click_strip(qtbot, window, 20)
    polygon(qtbot, window, masks[20] > 0)
    bear_20 = np.array(project.labels(20).mask)
    assert (bear_20 == bear.id).sum() > 100
    window.commands["first_frame"].trigger()
    window.commands["propagate_forward"].trigger()
    wait_idle(qtbot, window)
    # the keypoints go on past frame 20; the bear's frame 20 is intact
    for t in range(N):
        assert np.isfinite(project.labels(t).keypoints[animal.id][:, 0]).all(), t
    np.testing.assert_array_equal(project.labels(20).mask, bear_20)

    # the timeline: the active object's states, and a row per object beneath
    window.doc.set_active_object(animal.id)
    qtbot.wait(60)
    timeline = window.timeline
    assert timeline.strip.states().tolist() == [K] + [P] * (N - 1)
    assert "animal: 1 key · 23 propagated · 0 stale · 0 empty" in timeline.summary.text()
    bear_row, animal_row = timeline.summary_strip.rows()
    assert bear_row.tolist() == [K] + [P] * 19 + [K] + [E] * 3
    assert animal_row.tolist() == [K] + [P] * (N - 1)
    window.doc.set_frame(20)
    assert "animal: propagated" in timeline.frame_label.text()
    assert "animal: propagated" in window.status.frame.text()
    window.doc.set_active_object(bear.id)
    qtbot.wait(60)
    assert timeline.strip.states().tolist() == bear_row.tolist()
    assert "bear: 2 key · 19 propagated · 0 stale · 3 empty" in timeline.summary.text()

    # F on frame 19 is not "Nothing to propagate"
    window.doc.set_frame(19)
    window.commands["propagate_forward"].trigger()
    assert "Propagating forward from frame 19" in window.statusBar().currentMessage()
    wait_idle(qtbot, window)

    # editing the bear stales only the bear's frames
    window.doc.set_frame(10)
    window.set_tool("brush")
    window.canvas.set_brush_radius(2)
    click(qtbot, window, 5, 5)
    assert project.object_states(bear.id)[11:20].tolist() == [S] * 9
    assert project.object_states(animal.id)[11:].tolist() == [P] * (N - 11)
    qtbot.wait(60)
    assert timeline.strip.states()[11:20].tolist() == [S] * 9

    # the COCO export (through the dialog) has keypoints past frame 20
    dialog = window.show_export()
    dialog.folder_edit.setText(str(tmp_path / "out"))
    dialog.start()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=30_000)
    _objects, labels, _hw = import_coco(tmp_path / "out" / "clip24.json")
    with_points = [t for t, lab in labels.items() if np.isfinite(lab.keypoints[animal.id]).all()]
    assert sorted(with_points) == list(range(N))
    document = json.loads((tmp_path / "out" / "clip24.json").read_text())
    assert sum(1 for a in document["annotations"] if a.get("num_keypoints")) == N
    dialog.close()
