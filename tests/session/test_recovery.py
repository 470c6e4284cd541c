"""Crash recovery without Qt: the per-user recovery folder, keys, the meta row, which autosave is
offered (never another running instance's), wording, migration of old-style autosaves."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import platformdirs
import pytest

from tests.robustness.conftest import make_read_only
from tests.session.conftest import H, N, W, square_mask
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.project import FILE_FORMAT, FrameState, Project, autosave_path_for
from tracker_core.recovery import (
    AUTOSAVE_META_KEY,
    PROJECT_FORMAT,
    RECOVERY_ENV,
    Contents,
    RecoveryStore,
    busy_note,
    default_recovery_dir,
    describe_age,
    project_owner,
    read_autosave,
    video_owner,
)

ROOT = Path(__file__).resolve().parents[2]
CAR = ObjectSpec(1, "car", (200, 10, 10))
DOG = ObjectSpec(2, "dog", (10, 200, 10))


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A stand-in video file (projects only record its path; identity is size + mtime)."""
    path = tmp_path / "media" / "clip.avi"
    path.parent.mkdir()
    path.write_bytes(b"RIFF" + bytes(60))
    return path


def painted(video: Path, frames: tuple[int, ...] = (0,), **kwargs) -> Project:
    """An unsaved project on ``video`` with ``frames`` painted (car) and two objects."""
    project = Project.new(video, N, H, W, (CAR, DOG), **kwargs)
    for t in frames:
        project.set_frame(t, FrameLabels(square_mask(t)), FrameState.PAINTED)
    return project


def set_writer(autosave: Path, **writer: object) -> None:
    """Rewrite the writer recorded in an autosave's meta row (as another process would have)."""
    with sqlite3.connect(autosave) as db:
        (text,) = db.execute("SELECT value FROM meta WHERE key=?", (AUTOSAVE_META_KEY,)).fetchone()
        row = json.loads(text)
        row["writer"].update(writer)
        db.execute("UPDATE meta SET value=? WHERE key=?", (json.dumps(row), AUTOSAVE_META_KEY))


# --------------------------------------------------------------------------- the folder


def test_recovery_folder_is_per_user_and_overridable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, recovery_dir: Path
) -> None:
    assert default_recovery_dir() == recovery_dir  # the autouse fixture's override
    assert RecoveryStore(tmp_path / "x").folder == tmp_path / "x"  # constructor argument
    monkeypatch.delenv(RECOVERY_ENV)
    expected = Path(platformdirs.user_data_dir("Trackpaint", appauthor=False)) / "recovery"
    assert default_recovery_dir() == expected
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        assert default_recovery_dir() == tmp_path / "data" / "Trackpaint" / "recovery"
    assert PROJECT_FORMAT == FILE_FORMAT
    fresh = RecoveryStore(tmp_path / "fresh" / "recovery")
    fresh.prepare()
    if os.name == "posix":
        assert fresh.folder.stat().st_mode & 0o077 == 0  # private to the user


def test_autosaves_are_never_written_beside_the_video_or_project(
    video: Path, tmp_path: Path, recovery_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_read_only(monkeypatch, video.parent)  # read-only media (a DVD, a shared folder)
    project = painted(video)
    auto = project.autosave()
    assert auto.parent == recovery_dir and auto.exists()
    assert sorted(p.name for p in video.parent.iterdir()) == ["clip.avi"]
    monkeypatch.undo()
    target = project.save(tmp_path / "work.trackpaint")
    project.set_frame(3, FrameLabels(square_mask(3)), FrameState.PAINTED)
    project.autosave()
    assert not autosave_path_for(target).exists()
    assert [p.name for p in tmp_path.iterdir() if "autosave" in p.name] == []
    project.close()


def test_meta_row_records_owner_time_contents_and_writer(video: Path, tmp_path: Path) -> None:
    project = painted(video, (0, 4))
    project.set_frame(
        5, FrameLabels(square_mask(5)), FrameState.PROPAGATED, confidence=0.5, source=4
    )
    before = time.time()
    auto = project.autosave()
    after = time.time()
    found = read_autosave(auto)
    assert found is not None
    assert found.owner == video_owner(video) and found.owner.kind == "video"
    assert before <= found.written <= after
    assert found.writer.pid == os.getpid()
    assert found.contents == Contents(N, 2, 1, 0, ("car", "dog"))
    # a recovered autosave saved as a project carries no autosave row and a relative video path
    recovered = Project.recover(found)
    target = recovered.save(tmp_path / "saved.trackpaint")
    with sqlite3.connect(target) as db:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    assert AUTOSAVE_META_KEY not in meta and meta["video_path"] == "media/clip.avi"
    recovered.close()
    project.close()


# --------------------------------------------------------------------------- keys


def test_keys_follow_the_project_file_and_the_video_identity(
    video: Path, tmp_path: Path, frame_folder
) -> None:
    project = painted(video)
    auto = project.autosave()
    other = video.with_name("other.avi")
    other.write_bytes(video.read_bytes())
    with Project.new(other, N, H, W) as elsewhere:
        assert elsewhere.recovery_offer().autosave is None  # another video
    os.utime(video, ns=(1, 1))  # the video was replaced in place
    with Project.new(video, N, H, W) as changed:
        assert changed.recovery_offer().autosave is None
    assert auto.exists()  # not offered, and not deleted either
    # a saved project is keyed by its resolved path: a symlink to it finds the same autosave
    target = project.save(tmp_path / "work.trackpaint")
    project.set_frame(2, FrameLabels(square_mask(2)), FrameState.PAINTED)
    saved_auto = project.autosave()
    link = tmp_path / "link.trackpaint"
    link.symlink_to(target)
    with Project.open(link) as via_link:
        assert via_link.recovery_path() == saved_auto
    project.close()
    # a frame folder: stray files do not change its identity, a replaced frame does
    folder = frame_folder[0]
    key = video_owner(folder).key
    (folder / "notes.txt").write_text("hi")
    assert video_owner(folder).key == key
    shutil.copy(folder / "00000.png", folder / "00011.png")
    assert video_owner(folder).key != key


def test_save_removes_the_autosave_and_save_as_rekeys(video: Path, tmp_path: Path) -> None:
    project = painted(video)
    on_video = project.autosave()
    first = project.save(tmp_path / "a.trackpaint")
    assert not on_video.exists()  # superseded by the save
    project.set_frame(1, FrameLabels(square_mask(1)), FrameState.PAINTED)
    on_a = project.autosave()
    assert read_autosave(on_a).owner == project_owner(first)
    second = project.save(tmp_path / "b.trackpaint")
    assert not on_a.exists()  # the old key's autosave went with Save As
    project.set_frame(2, FrameLabels(square_mask(2)), FrameState.PAINTED)
    on_b = project.autosave()
    assert read_autosave(on_b).owner == project_owner(second)
    project.discard_autosave()  # the user discarded the changes
    assert not on_b.exists()
    project.close()


# --------------------------------------------------------------------------- other processes

_CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from tracker_core.labels import FrameLabels, ObjectSpec
    from tracker_core.project import FrameState, Project

    project = Project.new(sys.argv[1], 12, 24, 32, [ObjectSpec(1, "cat", (1, 2, 3))])
    project.set_frame(0, FrameLabels(np.ones((24, 32), np.uint8)), FrameState.PAINTED)
    print(project.autosave(), flush=True)
    sys.stdin.read()  # stay alive, editing, until killed
    """
)


def test_a_running_instance_keeps_its_autosave_and_a_killed_one_is_offered(
    video: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(video)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        theirs = Path(proc.stdout.readline().decode().strip())
        before = theirs.read_bytes()
        store = RecoveryStore()
        mine = painted(video, recovery=store)
        offer = mine.recovery_offer()
        assert offer.autosave is None  # another running instance's work is not a leftover
        assert [a.path for a in offer.busy] == [theirs]
        assert f"process {proc.pid}" in busy_note(offer.busy[0])
        store.discard(offer)
        own = mine.autosave()  # both instances autosave without clobbering each other
        assert own != theirs and theirs.read_bytes() == before
        mine.discard_autosave()

        proc.kill()  # SIGKILL; not yet reaped (a zombie) counts as gone too
        deadline = time.monotonic() + 10
        while mine.recovery_offer().autosave is None and time.monotonic() < deadline:
            time.sleep(0.05)
        offer = mine.recovery_offer()
        assert offer.autosave is not None and offer.autosave.path == theirs
        assert offer.autosave.contents.objects == ("cat",)
        proc.wait()
        with Project.recover(offer.autosave, recovery=store) as back:
            assert back.path is None and back.modified and back.keyframes() == [0]
            adopted = back.adopt(offer)
            assert adopted.exists() and not theirs.exists()
            assert read_autosave(adopted).writer.pid == os.getpid()
        mine.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_reused_process_ids_and_other_hosts(video: Path) -> None:
    project = painted(video)
    auto = project.autosave()
    parent_start = Path(f"/proc/{os.getppid()}/stat").read_text().rpartition(")")[2].split()[19]
    set_writer(auto, pid=os.getppid(), started=parent_start)  # a live other instance
    assert project.recovery_offer().autosave is None
    set_writer(auto, started="1")  # the id now belongs to a process started later: gone
    assert project.recovery_offer().autosave is not None
    set_writer(auto, host="another-machine", started=parent_start)  # cannot be probed: kept
    offer = project.recovery_offer()
    assert offer.autosave is None and "on another-machine" in busy_note(offer.busy[0])
    project.close()


def test_foreign_files_in_the_folder_are_never_offered_or_deleted(
    video: Path, recovery_dir: Path
) -> None:
    project = painted(video)
    key = project.autosave_owner().key
    junk = recovery_dir / f"clip.avi-{key}.1.autosave"
    junk.write_bytes(b"not ours")
    offer = project.recovery_offer()
    assert offer.autosave is None
    project.recovery.discard(offer)
    assert junk.read_bytes() == b"not ours"
    project.close()


# --------------------------------------------------------------------------- old-style files


def legacy_setup(tmp_path: Path, video: Path) -> tuple[Path, Path]:
    """A saved project (keyframe 0) and an earlier version's ``<project>.autosave`` beside it
    holding keyframes 0 and 6, newer than the project."""
    project = painted(video)
    target = project.save(tmp_path / "old.trackpaint")
    project.set_frame(6, FrameLabels(square_mask(6)), FrameState.PAINTED)
    legacy = autosave_path_for(target)
    project.save(tmp_path / "staging.trackpaint")
    os.replace(tmp_path / "staging.trackpaint", legacy)
    project.close()
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    return target, legacy


def test_old_style_autosave_is_offered_once_then_settled(video: Path, tmp_path: Path) -> None:
    target, legacy = legacy_setup(tmp_path, video)
    with Project.open(target) as opened:
        offer = opened.recovery_offer()
        found = offer.autosave
        assert found is not None and found.legacy and found.path == legacy
        assert found.contents == Contents(N, 2, 0, 0, ("car", "dog"))
        assert "earlier Trackpaint version" in opened.recovery.question(found)
        with Project.recover(found) as back:
            assert back.keyframes() == [0, 6] and back.path == target.resolve()
            own = back.adopt(offer)  # the state now lives in the recovery folder ...
        assert own.exists() and not legacy.exists()  # ... and the old file is settled
    with Project.open(target, from_autosave=True) as again:  # offered from its new place
        assert again.keyframes() == [0, 6]


def test_old_style_autosave_discarded_or_left_alone(video: Path, tmp_path: Path) -> None:
    target, legacy = legacy_setup(tmp_path, video)
    with Project.open(target) as opened:
        opened.recovery.discard(opened.recovery_offer())
    assert not legacy.exists()
    # older than the project (superseded), or not a project at all: not offered, untouched
    (tmp_path / "b").mkdir()
    target, legacy = legacy_setup(tmp_path / "b", video)
    os.utime(legacy, ns=(1, 1))
    with Project.open(target) as opened:
        assert opened.recovery_offer().autosave is None
    assert legacy.exists()
    legacy.write_bytes(b"someone else's file")
    with Project.open(target) as opened:
        assert opened.recovery_offer().autosave is None
    assert legacy.read_bytes() == b"someone else's file"


# --------------------------------------------------------------------------- wording


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-30, "just now"),
        (3, "just now"),
        (42, "42 seconds ago"),
        (60, "1 minute ago"),
        (180, "3 minutes ago"),
        (3600, "1 hour ago"),
        (2 * 3600 + 5 * 60, "2 hours 5 minutes ago"),
        (4 * 86400, "4 days ago"),
    ],
)
def test_age_wording(seconds: float, text: str) -> None:
    assert describe_age(seconds) == text


def test_question_says_whose_work_how_old_and_what(video: Path, tmp_path: Path) -> None:
    later = RecoveryStore(clock=lambda: time.time() + 180)
    project = painted(video, (0, 3))
    unsaved = read_autosave(project.autosave())
    text = later.question(unsaved)
    assert text.startswith("Unsaved work on clip.avi from ")
    assert "(3 minutes ago) was recovered: 2 painted frames, 2 objects (car, dog)" in text
    assert "never saved as a project" in text and "newer than the saved project" not in text

    target = project.save(tmp_path / "work.trackpaint")
    project.set_frame(5, FrameLabels(square_mask(5)), FrameState.PAINTED)
    saved = read_autosave(project.autosave())
    os.utime(target, (saved.written - 600, saved.written - 600))
    text = later.question(saved)
    assert text.startswith("Unsaved changes to work.trackpaint were autosaved 3 minutes ago (")
    assert "3 painted frames, 2 objects (car, dog)" in text
    assert "last saved 13 minutes ago" in text
    os.utime(target, (saved.written + 60, saved.written + 60))
    assert "may hold older work" in later.question(saved)
    assert Contents(1, 1, 0, 0, ()).describe() == "1 painted frame, 0 objects"
    project.close()
