"""Damaged frames in the window: marked on the timeline (colour, legend, tooltip), named on the
canvas instead of painted as garbage, refused for painting, and passed over by propagation the
way ``trackpaint propagate --skip-damaged`` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPoint
from PySide6.QtGui import QColor, QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from app.canvas import DAMAGED_BACKGROUND
from app.main_window import MainWindow
from app.timeline import DAMAGED_COLOR
from tests.fixtures_video import (
    corrupt_jpeg,
    make_moving_square_frames,
    truncate_file,
    write_frame_folder,
    write_video,
)
from tests.gui.helpers import drag, wait_idle
from tracker_core.project import FrameState

BAD = 5


def _pixel(image, x: int, y: int) -> QColor:
    return QColor(image.pixel(x, y))


def test_damaged_jpeg_is_marked_named_and_skipped(qtbot, window: MainWindow, tmp_path: Path):
    frames, masks = make_moving_square_frames(12, 64, 96)
    paths = write_frame_folder(tmp_path / "jpegs", frames, ".jpg")
    corrupt_jpeg(paths[BAD])
    assert window.open_path(tmp_path / "jpegs")
    doc = window.doc
    strip = window.timeline.strip
    assert strip.damaged_frames() == []  # not known until decoded

    spec = window.objects_panel.add_mask_object("square")
    doc.session.set_mask(0, np.where(masks[0] > 0, spec.id, 0).astype(np.uint8))
    window.commands["propagate_forward"].trigger()
    wait_idle(qtbot, window)
    states = doc.project.states()
    assert states[BAD] == FrameState.EMPTY  # no mask from its garbage pixels
    others = [t for t in range(1, 12) if t != BAD]
    assert (states[others] == FrameState.PROPAGATED).all()  # the run went on past it, not stale
    assert "skipped 1 damaged" in window.statusBar().currentMessage()

    # the timeline marks it, in its own colour, with the problem in the tooltip and the legend
    qtbot.waitUntil(lambda: strip.damaged_frames() == [BAD], timeout=5_000)
    assert strip.tooltip_for(BAD).startswith(f"frame {BAD}: damaged: corrupt image data")
    assert "1 damaged" in window.timeline.summary.text()
    strip.repaint()
    shot = strip.grab().toImage()
    assert _pixel(shot, round(strip.cell_center(BAD)), strip.height() // 2) == DAMAGED_COLOR
    assert _pixel(shot, round(strip.cell_center(BAD + 2)), strip.height() // 2) != DAMAGED_COLOR
    tip = QHelpEvent(
        QEvent.Type.ToolTip,
        QPoint(round(strip.cell_center(BAD)), 5),
        strip.mapToGlobal(QPoint(round(strip.cell_center(BAD)), 5)),
    )
    QApplication.sendEvent(strip, tip)
    assert QToolTip.text().startswith(f"frame {BAD}: damaged: corrupt image data")

    # the canvas says what is wrong instead of showing the pixels, and takes no strokes
    doc.set_frame(BAD)
    canvas = window.canvas
    assert canvas.damage_text().startswith(f"frame {BAD} is damaged: corrupt image data")
    assert paths[BAD].name in canvas.damage_text()
    assert "damaged" in window.timeline.frame_label.text()
    shown = canvas._frame_item.pixmap().toImage()
    assert _pixel(shown, 2, 2) == DAMAGED_BACKGROUND
    window.set_tool("brush")
    drag(qtbot, window, [(20, 20), (40, 30)])
    assert doc.project.state(BAD) == FrameState.EMPTY
    assert "is damaged" in window.statusBar().currentMessage()

    doc.set_frame(BAD + 1)
    assert canvas.damage_text() == ""
    assert canvas._frame_item.pixmap().toImage().pixel(2, 2) != DAMAGED_BACKGROUND.rgb()


def test_truncated_video_shows_its_missing_frames_at_open(qtbot, window: MainWindow, tmp_path):
    frames, _ = make_moving_square_frames(20, 64, 96)
    full = write_video(tmp_path / "full.avi", frames)
    cut = truncate_file(full, 0.3, tmp_path / "cut.avi")
    assert window.open_path(cut)
    assert window.doc.num_frames == 20  # the listed length, not the few frames that decode
    damaged = window.timeline.strip.damaged_frames()
    assert damaged and damaged[-1] == 19 and damaged == list(range(damaged[0], 20))
    assert "missing" in window.timeline.strip.tooltip_for(19)
    window.doc.set_frame(19)
    assert window.canvas.damage_text().startswith("frame 19 is damaged: missing")
