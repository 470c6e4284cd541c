"""GUI fixtures: an isolated QSettings file, recorded (non-blocking) message boxes, a main
window on a tiny synthetic clip, and a check that no worker thread outlives a test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from app.jobs import running_threads
from app.main_window import MainWindow
from tracker_core.encoder import LabEncoder


@dataclass
class Dialogs:
    """Message boxes shown during a test; ``answer`` is what ``question`` returns."""

    critical: list[tuple[str, str]] = field(default_factory=list)
    questions: list[tuple[str, str]] = field(default_factory=list)
    answer: QMessageBox.StandardButton = QMessageBox.StandardButton.Discard


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> Dialogs:
    record = Dialogs()

    def critical(_parent, title, text, *args, **kwargs):
        record.critical.append((title, text))
        return QMessageBox.StandardButton.Ok

    def question(_parent, title, text, *args, **kwargs):
        record.questions.append((title, text))
        return record.answer

    monkeypatch.setattr(QMessageBox, "critical", staticmethod(critical))
    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda *a, **k: None))
    return record


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    """A private settings file: tests never read or write the user's real settings."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, tmp_path: Path, settings: QSettings, dialogs: Dialogs):
    """Factory for main windows (encoder optional, other MainWindow options as keywords); every
    window is closed at teardown and no worker thread may still run afterwards. Autosaves go to
    the test's private recovery folder (``recovery_dir``)."""
    windows: list[MainWindow] = []

    def make(encoder=None, **options) -> MainWindow:
        window = MainWindow(
            encoder or LabEncoder(),
            scratch_dir=tmp_path,
            autosave_ms=3_600_000,
            settings=settings,
            **options,
        )
        qtbot.addWidget(window)
        window.resize(1000, 700)
        window.show()
        windows.append(window)
        return window

    yield make
    dialogs.answer = QMessageBox.StandardButton.Discard
    for window in windows:
        window.close()
    assert running_threads() == [], "a worker thread outlived its window"


@pytest.fixture
def window(make_window) -> MainWindow:
    return make_window()


@pytest.fixture
def clip_window(window: MainWindow, frame_folder) -> Iterator[MainWindow]:
    """A window with the 12-frame moving-square folder open."""
    folder, _frames, _masks = frame_folder
    assert window.open_path(folder)
    yield window
