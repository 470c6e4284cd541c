"""Issue 9 through the real widgets: one rule for the uncertain marks and N, the threshold
setting, follow mode after a scrub, keyframe marks on long videos, the sample opening unmodified.
(Found case 1 and the per-object timeline: test_issue9_case1.py.)"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QInputDialog

from app.document import SAMPLE_CLIP
from app.main_window import THRESHOLD_KEY, MainWindow
from app.timeline import MIN_KEY_PX, STATE_COLORS, StateStrip
from tests.gui.helpers import SlowLab, wait_idle
from tests.gui.test_issue9_case1 import click_strip
from tracker_core.confidence import DEFAULT_UNCERTAIN_THRESHOLD, uncertain_frames
from tracker_core.labels import FrameLabels
from tracker_core.project import FrameState


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
    """0.05 s more per frame than SlowLab: a 12-frame run lasts over a second."""

    def encode(self, frame: np.ndarray):
        time.sleep(0.05)
        return super().encode(frame)


def test_follow_pauses_visibly_after_a_scrub_and_comes_back(
    qtbot, make_window, frame_folder
) -> None:
    window = make_window(SlowerLab())
    folder, _frames, masks = frame_folder
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
    qtbot.wait(150)
    assert window.doc.frame == 0 and window.runner.busy  # the view stays where the user went
    qtbot.mouseClick(window.status.resume_follow, Qt.MouseButton.LeftButton)
    assert window.following and not window.status.resume_follow.isVisible()
    assert window.doc.frame > 0  # back at the newest frame at once
    click_strip(qtbot, window, 0)  # scrub again and leave it paused ...
    assert window.status.resume_follow.isVisible()
    window.runner.cancel()
    wait_idle(qtbot, window)
    assert not window.status.resume_follow.isVisible()  # the run ended: nothing to resume
    assert window.doc.frame == 0
    assert window.propagate("forward") is not None  # ... the next run follows again
    assert window.following
    qtbot.waitUntil(lambda: window.doc.frame >= 2, timeout=30_000)
    window.runner.cancel()
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
