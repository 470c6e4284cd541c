"""Propagation presets in the GUI (Model menu, remembered in QSettings) and the warm-up
feedback: the status bar says what it does before the first frame, and its ms/frame leaves the
warm-up out."""

from __future__ import annotations

import time

import numpy as np
import torch
from PySide6.QtCore import QSettings

from app.jobs import propagation_work
from app.main_window import PRESET_KEY, MainWindow
from tests.gui.helpers import wait_idle
from tracker_core.encoder import LabEncoder
from tracker_core.propagate import WarmupProgress

WARMUP_S = 0.5


class SlowStart(LabEncoder):
    """The Lab encoder, slow (``WARMUP_S``) on its first frame only: the warm-up."""

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "count", 0)

    def encode(self, frame: np.ndarray) -> torch.Tensor:
        object.__setattr__(self, "count", self.count + 1)
        if self.count == 1:
            time.sleep(WARMUP_S)
        return super().encode(frame)


def test_the_preset_is_chosen_in_the_model_menu_and_remembered(
    qtbot, make_window, frame_folder, settings: QSettings
) -> None:
    window = make_window()
    assert window.preset == "fast" and window.commands["preset_fast"].isChecked()
    folder, _frames, _masks = frame_folder
    assert window.open_path(folder)
    assert window.doc.session.preset == "fast"
    window.commands["preset_accurate"].trigger()
    assert window.commands["preset_accurate"].isChecked()
    assert not window.commands["preset_fast"].isChecked()
    assert window.doc.session.preset == "accurate"
    assert window.doc.session.propagator.name == "accurate"
    assert window.doc.session.propagator.config.n_recent == 7
    assert "(accurate)" in window.status.model.text()
    assert settings.value(PRESET_KEY) == "accurate"
    again: MainWindow = make_window()  # a new window (next start) reads the setting
    assert again.preset == "accurate" and again.commands["preset_accurate"].isChecked()
    settings.setValue(PRESET_KEY, "no-such-preset")
    assert make_window().preset == "fast"


def test_warmup_is_shown_and_left_out_of_the_speed(qtbot, make_window, frame_folder) -> None:
    window = make_window(SlowStart())
    folder, _frames, masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    window.doc.session.set_mask(0, masks[0])
    texts: list[str] = []
    window.status.speed.setText = lambda text: texts.append(text)  # type: ignore[method-assign]
    window.propagate("forward")
    wait_idle(qtbot, window)
    assert texts[0] == "encoding keyframes 1/1"
    speeds = [float(t.split()[0]) for t in texts if t.endswith("ms/frame")]
    # the slow warm-up encode (SlowLab's delay) is not in any frame's time
    assert speeds and max(speeds) < 1000 * WARMUP_S / 2
    assert window.doc.session.last_ms_per_frame < 1000 * WARMUP_S / 2


def test_the_worker_reports_warmup_before_frames(frame_folder, make_window) -> None:
    window = make_window()
    folder, _frames, masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    session = window.doc.session
    session.set_mask(0, masks[0])
    session.set_mask(11, masks[11])
    job = session.propagation_job(0, "forward")
    seen: list[object] = []
    assert propagation_work(job)(seen.append, lambda: False) == 10
    assert [(w.done, w.total) for w in seen[:2] if isinstance(w, WarmupProgress)] == [
        (1, 2),
        (2, 2),
    ]
    assert not any(isinstance(w, WarmupProgress) for w in seen[2:])
