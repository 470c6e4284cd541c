"""Helpers for GUI tests: real mouse events on the canvas in image coordinates, waiting for
jobs, and a deliberately slow encoder."""

from __future__ import annotations

import time

import numpy as np
import torch
from PySide6.QtCore import QPoint, Qt

from app.main_window import MainWindow
from tracker_core.encoder import LabEncoder


class SlowLab(LabEncoder):
    """The Lab encoder with a fixed delay per frame, so a run can be cancelled midway."""

    def encode(self, frame: np.ndarray) -> torch.Tensor:
        time.sleep(0.05)
        return super().encode(frame)


def view_point(window: MainWindow, x: float, y: float) -> QPoint:
    return window.canvas.view_pos(x, y).toPoint()


def drag(qtbot, window: MainWindow, points, button=Qt.MouseButton.LeftButton, modifier=None):
    """Press at the first image point, move through the rest, release at the last."""
    viewport = window.canvas.viewport()
    mods = modifier or Qt.KeyboardModifier.NoModifier
    first = view_point(window, *points[0])
    qtbot.mousePress(viewport, button, mods, first)
    for p in points[1:]:
        qtbot.mouseMove(viewport, view_point(window, *p))
    qtbot.mouseRelease(viewport, button, mods, view_point(window, *points[-1]))


def click(
    qtbot, window: MainWindow, x: float, y: float, button=Qt.MouseButton.LeftButton, modifier=None
):
    mods = modifier or Qt.KeyboardModifier.NoModifier
    qtbot.mouseClick(window.canvas.viewport(), button, mods, view_point(window, x, y))


def wait_idle(qtbot, window: MainWindow, timeout: int = 60_000) -> None:
    """Wait for the running job to finish and its queued events to arrive."""
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=timeout)
    qtbot.wait(60)
