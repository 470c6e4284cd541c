"""Issue 9 through the real widgets: per-object keyframes (found case 1), the timeline's
per-object display, one rule for the uncertain marks and N, the threshold setting, follow mode
after a scrub, keyframe marks on long videos, the sample opening unmodified."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QInputDialog

from app.document import SAMPLE_CLIP
from app.main_window import THRESHOLD_KEY, MainWindow
from app.timeline import MIN_KEY_PX, STATE_COLORS, StateStrip
from tests.fixtures_video import make_moving_square_frames, write_frame_folder
from tests.gui.helpers import SlowLab, click, wait_idle
from tracker_core.confidence import DEFAULT_UNCERTAIN_THRESHOLD, uncertain_frames
from tracker_core.export import import_coco
from tracker_core.labels import FrameLabels
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


def mixed_states(window: MainWindow) -> list[int]:
    """Give the open 12-frame document propagated frames of known confidence, a stale one and a
    keyframe; returns the frames whose confidence is below the default threshold and that are
    PROPAGATED (what both the marks and N must use)."""
    project = window.doc.project
    window.objects_panel.add_mask_object("a")
    mask = np.zeros((project.height, project.width), np.uint8)
    conf = [np.nan, 0.9, 0.7, 0.95, 0.5, 0.2, 0.74, 0.72, 0.1, 0.99, 0.6, 0.8]
    project.set_frame(0, FrameLabels(mask), FrameState.PAINTED)
    for t in range(1, 12):
        state = FrameState.STALE if t == 8 else FrameState.PROPAGATED
        project.set_frame(t, FrameLabels(mask), state, confidence=conf[t], source=0)
    window.timeline.refresh()
    return [t for t in range(1, 12) if t != 8 and conf[t] < DEFAULT_UNCERTAIN_THRESHOLD]


def visit_with_n(window: MainWindow) -> list[int]:
    """Press N from frame 0 until it wraps; the frames visited."""
    window.doc.set_frame(0)
    seen: list[int] = []
    for _ in range(window.doc.num_frames + 1):
        window.commands["next_uncertain"].trigger()
        if window.doc.frame in seen or window.doc.frame == 0:
            break
        seen.append(window.doc.frame)
    return seen


def test_timeline_marks_and_n_are_one_definition(qtbot, clip_window: MainWindow) -> None:
    window = clip_window
    expected = mixed_states(window)
    assert expected == [2, 4, 5, 7, 10]  # not 8 (stale), not 0 (keyframe), not 6 (0.74)
    marks = window.timeline.plot.uncertain_frames().tolist()
    assert (
        marks
        == expected
        == uncertain_frames(window.doc.project, window.uncertain_threshold).tolist()
    )
    assert visit_with_n(window) == expected
    assert window.timeline.plot.threshold() == pytest.approx(DEFAULT_UNCERTAIN_THRESHOLD)


def test_threshold_setting_changes_marks_and_n_and_persists(
    qtbot, clip_window: MainWindow, make_window, settings, monkeypatch
) -> None:
    window = clip_window
    mixed_states(window)
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *a, **k: (0.55, True)))
    window.commands["uncertain_threshold"].trigger()
    assert window.uncertain_threshold == pytest.approx(0.55)
    assert float(settings.value(THRESHOLD_KEY)) == pytest.approx(0.55)
    assert window.timeline.plot.uncertain_frames().tolist() == [4, 5]
    assert window.timeline.plot.threshold() == pytest.approx(0.55)
    assert visit_with_n(window) == [4, 5]
    # a cancelled dialog changes nothing
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *a, **k: (0.9, False)))
    window.commands["uncertain_threshold"].trigger()
    assert window.uncertain_threshold == pytest.approx(0.55)
    # the next window (same settings) starts with it
    other = make_window()
    assert other.uncertain_threshold == pytest.approx(0.55)
    assert other.timeline.threshold == pytest.approx(0.55)


class SlowerLab(SlowLab):
    """0.05 s more per frame than SlowLab: a 24-frame run lasts over two seconds."""

    def encode(self, frame: np.ndarray):
        time.sleep(0.05)
        return super().encode(frame)


def test_follow_pauses_visibly_after_a_scrub_and_comes_back(qtbot, make_window, long_clip) -> None:
    window = make_window(SlowerLab())
    folder, masks = long_clip
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    window.doc.session.set_mask(0, masks[0])
    assert not window.status.resume_follow.isVisible()
    window.propagate("forward")
    qtbot.waitUntil(lambda: window.doc.frame >= 2, timeout=30_000)  # it follows
    click_strip(qtbot, window, 0)  # the user scrubs back
    assert window.commands["follow"].isChecked()  # the preference is kept ...
    assert not window.following and window.status.resume_follow.isVisible()  # ... paused, shown
    assert "Following paused" in window.statusBar().currentMessage()
    qtbot.wait(250)
    assert window.doc.frame == 0 and window.runner.busy  # the view stays where the user went
    qtbot.mouseClick(window.status.resume_follow, Qt.MouseButton.LeftButton)
    assert window.following and not window.status.resume_follow.isVisible()
    assert window.doc.frame > 0  # back at the newest frame at once
    wait_idle(qtbot, window)
    assert window.doc.frame == N - 1
    # scrub during a second run and leave it paused: the run after that follows again
    window.doc.set_frame(0)
    assert window.propagate("forward") is not None
    qtbot.waitUntil(lambda: window.doc.frame >= 2, timeout=30_000)
    click_strip(qtbot, window, 0)
    assert window.status.resume_follow.isVisible()
    wait_idle(qtbot, window)
    assert not window.status.resume_follow.isVisible()  # the run ended: nothing to resume
    assert window.doc.frame == 0
    assert window.propagate("forward") is not None
    assert window.following
    qtbot.waitUntil(lambda: window.doc.frame >= 2, timeout=30_000)
    wait_idle(qtbot, window)


def test_keyframe_marks_stay_visible_on_long_videos(qtbot) -> None:
    strip = StateStrip()
    qtbot.addWidget(strip)
    strip.resize(500, 20)
    strip.show()
    states = np.full(3000, FrameState.PROPAGATED, np.uint8)
    states[1234] = FrameState.PAINTED
    strip.set_states(states)
    strip.set_current(0)
    image = strip.grab().toImage()
    green = STATE_COLORS[FrameState.PAINTED].rgb()
    row = [image.pixel(x, 14) for x in range(image.width())]
    width = sum(1 for px in row if QColor(px).rgb() == green)
    assert width >= MIN_KEY_PX  # a cell here is 1/6 px wide
    centre = next(x for x, px in enumerate(row) if QColor(px).rgb() == green) + width / 2
    assert abs(centre - strip.cell_center(1234)) <= 2


def test_the_sample_opens_unmodified(window: MainWindow, tmp_path: Path) -> None:
    clip = tmp_path / "bear"
    shutil.copytree(SAMPLE_CLIP, clip)
    assert window.open_sample(clip)
    assert window.doc.project.state(0) == FrameState.PAINTED
    assert not window.doc.project.modified
    assert "*" not in window.windowTitle()
    window.doc.session.paint_stroke(3, 1, [(100, 100)], 5)
    assert window.doc.project.modified and "*" in window.windowTitle()
