"""Opening (dialog-free paths, drag & drop, recent files, the sample), saving, autosave and
recovery, and errors shown as dialogs instead of crashes."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from app.__main__ import choose_encoder, parse_args
from app.document import SAMPLE_CLIP, SAMPLE_DIR
from app.errors import install_excepthook
from app.main_window import MainWindow
from tracker_core.encoder import LabEncoder
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.project import FrameState, Project, autosave_path_for
from tracker_core.video import VideoSource


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
    qtbot, make_window, dialogs, tmp_path: Path, frame_folder, recovery_dir: Path
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
    assert window.doc.project.autosave_path().parent == recovery_dir

    # "crash": a second window opens the project while the first never saved
    dialogs.answer = QMessageBox.StandardButton.Yes
    other = make_window()
    assert other.open_path(target)
    ((title, text),) = dialogs.questions
    assert title == "Recover unsaved work?"
    assert text.startswith("Unsaved changes to p.trackpaint were autosaved just now (")
    assert "1 painted frame, 1 object (square)" in text
    assert other.doc.project.state(5) == FrameState.PAINTED
    assert other.doc.project.modified and other.doc.project.path == target

    dialogs.answer = QMessageBox.StandardButton.No  # discard: the autosave is deleted
    third = make_window()
    assert third.open_path(target)
    assert third.doc.project.state(5) == FrameState.EMPTY
    assert list(recovery_dir.iterdir()) == []
    fourth = make_window()
    assert fourth.open_path(target) and len(dialogs.questions) == 2  # nothing left to offer


def test_crash_after_save_as_offers_only_that_projects_autosave(
    qtbot, make_window, dialogs, tmp_path: Path, recovery_dir: Path
) -> None:
    """The issue's scenario on the bundled sample: Save As to a new path, edit, kill -9."""
    install = sorted(SAMPLE_DIR.rglob("*"))
    window = make_window()
    assert window.open_sample()  # the clip inside the install
    window.doc.session.paint_stroke(5, 1, [(100, 100)], 5)
    assert window.autosave()  # unsaved work on the sample ...
    target = tmp_path / "mine.trackpaint"
    assert window.save_as(target)  # ... saved as a new project
    window.doc.session.paint_stroke(9, 1, [(120, 90)], 5)
    assert window.autosave()
    # kill -9: the window is dropped, nothing is closed, saved or discarded
    assert sorted(SAMPLE_DIR.rglob("*")) == install  # nothing was written inside the install
    assert list(tmp_path.rglob("*.autosave")) == []

    dialogs.answer = QMessageBox.StandardButton.Yes
    plain = make_window()
    assert plain.open_sample()  # a plain relaunch (no argument) opens the sample
    assert dialogs.questions == []  # the new project's work is not offered under the sample
    assert plain.doc.project.path is None
    assert [plain.doc.project.state(t) for t in (5, 9)] == [FrameState.EMPTY] * 2

    from tracker_core.recovery import RecoveryStore

    later = make_window(recovery=RecoveryStore(recovery_dir, clock=lambda: time.time() + 185))
    assert later.open_path(target)  # Open, Open recent and the command line all end here
    ((_title, text),) = dialogs.questions
    assert text.startswith("Unsaved changes to mine.trackpaint were autosaved 3 minutes ago (")
    assert "3 painted frames, 1 object (bear)" in text
    assert "The project file was last saved 3 minutes ago." in text
    assert "newer than the saved project" not in text
    project = later.doc.project
    assert project.path == target and project.modified
    assert [project.state(t) for t in (0, 5, 9)] == [FrameState.PAINTED] * 3


def test_unsaved_work_on_a_video_is_offered_with_its_own_wording(
    qtbot, make_window, dialogs, frame_folder, recovery_dir: Path
) -> None:
    folder, _frames, masks = frame_folder
    window = make_window()
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    window.doc.session.set_mask(3, masks[3])
    assert window.autosave()  # and the app is killed
    (auto,) = recovery_dir.iterdir()

    dialogs.answer = QMessageBox.StandardButton.Cancel  # not now: nothing opens, file kept
    assert not make_window().open_path(folder)
    ((title, text),) = dialogs.questions
    assert title == "Recover unsaved work?"
    assert text.startswith("Unsaved work on frames from ")
    assert "was recovered: 1 painted frame, 1 object (square)" in text
    assert "never saved as a project" in text and "No deletes it and opens frames" in text
    assert "saved project" not in text
    assert auto.exists()

    dialogs.answer = QMessageBox.StandardButton.Yes
    restored = make_window()
    assert restored.open_path(folder)
    assert restored.doc.project.path is None and restored.doc.project.modified
    assert restored.doc.project.state(3) == FrameState.PAINTED
    assert restored.windowTitle().startswith("frames *")

    dialogs.answer = QMessageBox.StandardButton.No
    discarded = make_window()
    assert discarded.open_path(folder)
    assert discarded.doc.project.state(3) == FrameState.EMPTY
    assert list(recovery_dir.iterdir()) == []


def test_old_style_autosave_beside_a_project_is_offered_once(
    qtbot, make_window, dialogs, tmp_path: Path, frame_folder, recovery_dir: Path
) -> None:
    folder, _frames, masks = frame_folder
    target = tmp_path / "old.trackpaint"
    with VideoSource.open(folder) as video:
        project = Project.new(folder, len(video), video.height, video.width)
    project.set_objects([ObjectSpec(1, "square", (255, 0, 0))])
    project.save(target)
    project.set_frame(4, FrameLabels(masks[4]), FrameState.PAINTED)
    project.save(tmp_path / "staging.trackpaint")  # what an earlier version left beside it
    legacy = autosave_path_for(target)
    (tmp_path / "staging.trackpaint").replace(legacy)
    project.close()
    os.utime(target, (time.time() - 60, time.time() - 60))

    dialogs.answer = QMessageBox.StandardButton.Yes
    window = make_window()
    assert window.open_path(target)
    ((_title, text),) = dialogs.questions
    assert "earlier Trackpaint version" in text and str(legacy) in text
    assert window.doc.project.state(4) == FrameState.PAINTED
    assert not legacy.exists() and len(list(recovery_dir.iterdir())) == 1  # moved to ours
    assert window.close_document()  # Discard (the default answer) deletes our copy too
    assert list(recovery_dir.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_another_running_instance_keeps_its_autosave(
    qtbot, make_window, dialogs, tmp_path: Path, frame_folder
) -> None:
    folder, _frames, masks = frame_folder
    window = make_window()
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    window.doc.session.set_mask(3, masks[3])
    assert window.autosave()
    auto = window.doc.project.autosave_path()
    from tests.session.test_recovery import set_writer

    start = Path(f"/proc/{os.getppid()}/stat").read_text().rpartition(")")[2].split()[19]
    set_writer(auto, pid=os.getppid(), started=start)  # as if the parent process wrote it

    other = make_window()
    assert other.open_path(folder)
    assert dialogs.questions == []
    assert "another running Trackpaint" in other.statusBar().currentMessage()
    assert other.doc.project.state(3) == FrameState.EMPTY
    assert other.close_document() and auto.exists()  # not ours to delete


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


def test_relaunch_offers_the_autosave_of_what_the_command_line_opens(
    qtbot, monkeypatch, make_window, tmp_path: Path, frame_folder, dialogs
) -> None:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    import app.__main__ as entry

    folder, _frames, masks = frame_folder
    crashed = make_window()
    assert crashed.open_path(folder)
    crashed.objects_panel.add_mask_object("square")
    target = tmp_path / "work.trackpaint"
    assert crashed.save_as(target)
    crashed.doc.session.set_mask(2, masks[2])
    assert crashed.autosave()  # then kill -9

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
    dialogs.answer = QMessageBox.StandardButton.Yes
    try:
        assert entry.main(["--model", "lab"]) == 0  # no argument: the sample, nothing offered
        assert dialogs.questions == [] and created[0].doc.project.video_path == SAMPLE_CLIP
        assert entry.main([str(target), "--model", "lab"]) == 0
        ((_title, text),) = dialogs.questions
        assert text.startswith("Unsaved changes to work.trackpaint were autosaved")
        assert created[1].doc.project.state(2) == FrameState.PAINTED
    finally:
        for window in created:
            window.close_document(ask=False)
            window.close()
        QSettings.setDefaultFormat(QSettings.Format.NativeFormat)
