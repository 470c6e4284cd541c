"""Opening (dialog-free paths, drag & drop, recent files, the sample), saving, autosave and
recovery, and errors shown as dialogs instead of crashes."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from app.__main__ import choose_encoder, parse_args
from app.document import SAMPLE_CLIP
from app.errors import install_excepthook
from app.main_window import MainWindow
from tracker_core.encoder import LabEncoder
from tracker_core.project import FrameState


def test_bad_files_show_a_dialog_and_the_app_keeps_working(
    window: MainWindow, dialogs, tmp_path: Path, frame_folder
) -> None:
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"this is not a video")
    assert not window.open_path(bad_video)
    assert len(dialogs.critical) == 1 and "broken.mp4" in dialogs.critical[0][1]
    bad_project = tmp_path / "junk.trackpaint"
    bad_project.write_bytes(b"junk" * 100)
    assert not window.open_path(bad_project)
    assert "junk.trackpaint" in dialogs.critical[1][1]
    assert not window.open_path(tmp_path / "missing")
    assert len(dialogs.critical) == 3
    assert window.doc is None
    # a guarded action with an error in the core also ends in a dialog, not a crash
    folder, _frames, _masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("a")
    window.doc.set_frame(2)
    window.commands["make_keyframe"].trigger()  # no-op on an empty frame
    window.commands["clear_frame"].trigger()
    assert len(dialogs.critical) == 3


def test_excepthook_shows_uncaught_errors(window: MainWindow, dialogs) -> None:
    previous = install_excepthook(lambda: window)
    try:
        try:
            raise ValueError("frame 99 is outside 0..11")
        except ValueError as exc:
            sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        sys.excepthook = previous
    assert dialogs.critical == [("Trackpaint", "frame 99 is outside 0..11")]


def test_save_open_and_recent_files(
    qtbot, make_window, dialogs, tmp_path: Path, frame_folder, settings
) -> None:
    window = make_window()
    folder, _frames, masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    window.doc.session.set_mask(3, masks[3])
    assert window.windowTitle().startswith("frames *")
    target = tmp_path / "work.trackpaint"
    assert window.save_as(target)
    assert target.exists() and not window.doc.project.modified
    assert window.windowTitle().startswith("work.trackpaint —")
    recent = window.recent.paths()
    assert recent[0] == target and folder in recent
    assert Path(settings.fileName()).parent == tmp_path  # isolated from the user's settings
    window.close()

    again = make_window()
    assert again.recent.menu.actions()[0].text() == str(target)
    again.recent.menu.actions()[0].trigger()
    assert again.doc is not None and again.doc.project.path == target
    np.testing.assert_array_equal(again.doc.project.labels(3).mask, masks[3])
    assert again.doc.project.state(3) == FrameState.PAINTED


def test_autosave_and_recovery_after_a_crash(
    qtbot, make_window, dialogs, tmp_path: Path, frame_folder
) -> None:
    window = make_window()
    folder, _frames, masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    target = tmp_path / "p.trackpaint"
    assert window.save_as(target)
    assert not window.autosave()  # nothing changed since the save
    window.doc.session.set_mask(5, masks[5])  # unsaved work ...
    assert window.autosave()  # ... reaches the recovery file
    assert window.doc.project.recovery_path() is not None

    # "crash": a second window opens the project while the first never saved
    dialogs.answer = QMessageBox.StandardButton.Yes
    other = make_window()
    assert other.open_path(target)
    assert dialogs.questions[-1][0] == "Recover unsaved work?"
    assert other.doc.project.state(5) == FrameState.PAINTED
    assert other.doc.project.modified

    dialogs.answer = QMessageBox.StandardButton.No
    third = make_window()
    assert third.open_path(target)
    assert third.doc.project.state(5) == FrameState.EMPTY


def test_autosave_timer_fires(qtbot, make_window, frame_folder) -> None:
    window = make_window()
    window.autosave_timer.setInterval(50)
    folder, _frames, masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    window.doc.session.set_mask(0, masks[0])
    auto = window.doc.project.autosave_path()
    qtbot.waitUntil(auto.exists, timeout=5000)


def test_drop_a_folder_opens_it(qtbot, window: MainWindow, frame_folder) -> None:
    folder, _frames, _masks = frame_folder
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder / "00003.png"))])  # a frame stands for its folder
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    assert window.doc is not None and window.doc.num_frames == 12


def test_video_file_opens(window: MainWindow, video_file) -> None:
    path, _frames, _masks = video_file
    assert window.open_path(path)
    assert window.doc.num_frames == 12
    assert window.canvas._frame_item.pixmap().width() == 96


def test_sample_opens_with_a_painted_bear(window: MainWindow, tmp_path: Path) -> None:
    clip = tmp_path / "bear"
    shutil.copytree(SAMPLE_CLIP, clip)
    assert window.open_sample(clip)
    project = window.doc.project
    assert [o.name for o in project.objects] == ["bear"]
    assert project.state(0) == FrameState.PAINTED
    assert project.labels(0).mask.sum() > 1000
    assert "press F" in window.status.hint.text()
    assert "model: lab" in window.status.model.text()


def test_modified_document_asks_before_closing(
    qtbot, make_window, dialogs, frame_folder, tmp_path: Path
) -> None:
    window = make_window()
    folder, _frames, _masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("a")
    dialogs.answer = QMessageBox.StandardButton.Cancel
    assert not window.close_document()
    assert window.doc is not None
    dialogs.answer = QMessageBox.StandardButton.Discard
    assert window.close_document() and window.doc is None


def test_entry_point_helpers(tmp_path: Path) -> None:
    args = parse_args(["clip.mp4", "--model", "lab"])
    assert args.path == "clip.mp4" and args.model == "lab"
    encoder, problem = choose_encoder(str(tmp_path / "missing.pt"))
    assert isinstance(encoder, LabEncoder) and "missing.pt" in problem
    encoder, problem = choose_encoder("lab")
    assert encoder.name == "lab" and problem is None


def test_untouched_sample_is_not_autosaved(
    window: MainWindow, tmp_path: Path, recovery_dir: Path
) -> None:
    clip = tmp_path / "bear"
    shutil.copytree(SAMPLE_CLIP, clip)
    assert window.open_sample(clip)
    assert not window.autosave()  # only the bundled keyframe: nothing to recover
    window.doc.session.paint_stroke(5, 1, [(100, 100)], 5)
    assert window.autosave()
    assert window.doc.project.autosave_path().parent == recovery_dir
    assert list(tmp_path.rglob("*.autosave")) == []  # nothing beside the clip


def test_main_opens_the_given_path(
    qtbot, monkeypatch, tmp_path: Path, frame_folder, dialogs
) -> None:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    import app.__main__ as entry

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    created: list[MainWindow] = []

    class Recorded(MainWindow):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, scratch_dir=tmp_path, **kwargs)
            created.append(self)

    monkeypatch.setattr(entry, "MainWindow", Recorded)
    monkeypatch.setattr(QApplication, "exec", lambda self: 0)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # main() installs its own
    try:
        assert entry.main([str(frame_folder[0]), "--model", "lab"]) == 0
        (window,) = created
        assert window.doc is not None and window.doc.num_frames == 12
        assert window.isVisible() and "model: lab" in window.status.model.text()
        assert sys.excepthook.__qualname__.startswith("install_excepthook")
    finally:
        for window in created:
            window.close_document(ask=False)
            window.close()
        QSettings.setDefaultFormat(QSettings.Format.NativeFormat)
