"""Project document: round trip, atomic save, autosave, broken files, validation, memory."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.session.conftest import H, N, W, square_mask
from tracker_core.errors import MaskError, ProjectError
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.project import (
    SCHEMA_VERSION,
    FrameState,
    Project,
    autosave_path_for,
    decode_keypoints,
    encode_keypoints,
)

CAR = ObjectSpec(1, "car", (200, 10, 10))
DOG = ObjectSpec(3, "dog", (10, 200, 10))
PERSON = ObjectSpec(
    5, "person", (0, 0, 255), "keypoints", ("head", "hand", "foot"), ((0, 1), (1, 2))
)


def kp(*rows: tuple[float, float, float]) -> np.ndarray:
    return np.array(rows, np.float32)


def filled_project(tmp_path: Path) -> Project:
    """A project with masks, keypoints and all four provenance states."""
    video = tmp_path / "media" / "clip.avi"
    proj = Project.new(video, N, H, W, (CAR, DOG, PERSON))
    mask = square_mask(2)
    mask[0:3, 0:3] = 3
    pts = kp((1.5, 2.25, 1.0), (math.nan, math.nan, 0.0), (7.0, 8.0, 0.0))
    proj.set_frame(0, FrameLabels(mask, {5: pts}), FrameState.PAINTED)
    proj.set_frame(
        1, FrameLabels(square_mask(3), {}), FrameState.PROPAGATED, confidence=0.75, source=0
    )
    proj.set_frame(2, FrameLabels(square_mask(4), {}), FrameState.STALE, confidence=0.25, source=0)
    return proj


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    proj = filled_project(tmp_path)
    path = proj.save(tmp_path / "a.trackpaint")
    assert path == (tmp_path / "a.trackpaint").absolute() and path.exists()
    assert not proj.modified
    expected = [proj.labels(t) for t in range(3)]
    proj.close()

    with Project.open(tmp_path / "a.trackpaint") as back:
        assert back.objects == (CAR, DOG, PERSON)
        assert (back.num_frames, back.height, back.width) == (N, H, W)
        assert back.video_path == (tmp_path / "media" / "clip.avi").absolute()
        assert back.states()[:4].tolist() == [1, 2, 3, 0]
        assert back.keyframes() == [0]
        conf = back.confidences()
        assert math.isnan(conf[0]) and conf[1] == 0.75 and conf[2] == 0.25
        assert np.isnan(conf[3:]).all()
        assert back.sources()[:4].tolist() == [-1, 0, 0, -1]
        for t in range(3):
            np.testing.assert_array_equal(back.labels(t).mask, expected[t].mask)
        np.testing.assert_array_equal(
            back.labels(0).keypoints[5], expected[0].keypoints[5], strict=True
        )
        empty = back.labels(7)
        assert not empty.mask.any() and np.isnan(empty.keypoints[5][:, :2]).all()
        assert not back.modified


def test_video_path_is_stored_relative(tmp_path: Path) -> None:
    proj = filled_project(tmp_path)
    proj.save(tmp_path / "a.trackpaint")
    proj.close()
    with sqlite3.connect(tmp_path / "a.trackpaint") as db:
        (stored,) = db.execute("SELECT value FROM meta WHERE key='video_path'").fetchone()
    assert stored == "media/clip.avi"
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    os.rename(tmp_path, moved)
    try:
        with Project.open(moved / "a.trackpaint") as back:
            assert back.video_path == moved / "media" / "clip.avi"
    finally:
        os.rename(moved, tmp_path)


def test_labels_are_read_only_and_mask_none_without_mask_objects(tmp_path: Path) -> None:
    with Project.new(tmp_path / "v.avi", 3, H, W, (PERSON,)) as proj:
        labels = proj.labels(0)
        assert labels.mask is None
        assert not labels.keypoints[5].flags.writeable
    with filled_project(tmp_path) as proj:
        with pytest.raises(ValueError):
            proj.labels(0).mask[0, 0] = 1


def test_keypoint_json_round_trip() -> None:
    pts = {5: kp((1.0, 2.0, 1.0), (math.nan, math.nan, 0.0))}
    back = decode_keypoints(encode_keypoints(pts))
    np.testing.assert_array_equal(back[5], pts[5])
    assert encode_keypoints({5: kp((math.nan, math.nan, 0.0))}) is None


def test_save_needs_a_path(project: Project) -> None:
    with pytest.raises(ProjectError, match="never been saved"):
        project.save()


def test_failed_save_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proj = filled_project(tmp_path)
    target = proj.save(tmp_path / "a.trackpaint")
    before = target.read_bytes()
    proj.set_frame(5, FrameLabels(square_mask(9), {}), FrameState.PAINTED)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ProjectError, match="No space left") as info:
        proj.save()
    assert str(target) in str(info.value)
    assert target.read_bytes() == before
    assert proj.modified  # the edit is still pending, nothing lost
    assert [p.name for p in tmp_path.iterdir()] == ["a.trackpaint"]  # no temp file left
    monkeypatch.undo()
    proj.save()
    proj.close()
    with Project.open(target) as back:
        assert back.keyframes() == [0, 5]


def test_save_writes_a_complete_temp_file_then_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = filled_project(tmp_path)
    target = proj.save(tmp_path / "a.trackpaint")
    old_bytes = target.read_bytes()
    proj.set_frame(9, FrameLabels(square_mask(9), {}), FrameState.PAINTED)
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def spy_fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    def spy_replace(src: str, dst: str) -> None:
        calls.append("replace")
        assert Path(src).parent == target.parent and Path(dst) == target
        assert target.read_bytes() == old_bytes  # the old file is untouched until the rename
        with Project.open(src) as complete:  # the temp file is already a whole project
            assert complete.keyframes() == [0, 9]
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", spy_fsync)
    monkeypatch.setattr(os, "replace", spy_replace)
    proj.save()
    assert calls == ["fsync", "replace", "fsync"]  # file synced, renamed, directory synced
    proj.close()


def test_autosave_and_recovery(tmp_path: Path, recovery_dir: Path) -> None:
    proj = filled_project(tmp_path)
    target = proj.save(tmp_path / "a.trackpaint")
    assert proj.recovery_path() is None
    proj.set_frame(6, FrameLabels(square_mask(1), {}), FrameState.PAINTED)
    auto = proj.autosave()
    assert auto.parent == recovery_dir and auto.exists()  # the per-user folder, not beside
    assert not autosave_path_for(target).exists()
    assert proj.modified and proj.path == target
    proj.close()

    with Project.open(target) as old:
        assert old.recovery_path() == auto
        assert old.keyframes() == [0]
    with Project.open(target, from_autosave=True) as rec:
        assert rec.keyframes() == [0, 6]
        assert rec.path == target and rec.modified
        rec.save()
        assert not auto.exists()  # a save makes the recovery file obsolete
    with Project.open(target) as saved:
        assert saved.keyframes() == [0, 6] and saved.recovery_path() is None


def test_unsaved_project_autosaves_in_the_recovery_folder(
    project: Project, tmp_path: Path, recovery_dir: Path
) -> None:
    auto = project.autosave()
    assert auto.parent == recovery_dir and auto.name.startswith("clip.avi")
    assert list(tmp_path.iterdir()) == []  # nothing beside the video
    assert project.recovery_path() == auto


def test_save_as_then_crash_offers_only_the_new_projects_autosave(
    tmp_path: Path, recovery_dir: Path
) -> None:
    """Issue 8 case 9: unsaved work on a video is autosaved, saved as a new project, edited and
    autosaved again, then the process dies. Nothing was written beside the video; the video
    offers nothing; the new project offers its own autosave."""
    video = tmp_path / "media" / "clip.avi"
    video.parent.mkdir()
    video.write_bytes(b"RIFF" + bytes(60))
    first = Project.new(video, N, H, W, (CAR,))
    first.set_frame(0, FrameLabels(square_mask(0)), FrameState.PAINTED)
    first.autosave()
    (tmp_path / "elsewhere").mkdir()
    new_path = first.save(tmp_path / "elsewhere" / "new.trackpaint")
    first.set_frame(7, FrameLabels(square_mask(7)), FrameState.PAINTED)
    auto = first.autosave()  # ... killed here: nothing is closed or discarded
    assert auto.parent == recovery_dir
    assert sorted(p.name for p in video.parent.iterdir()) == ["clip.avi"]

    with Project.new(video, N, H, W) as plain:
        assert plain.recovery_path() is None  # the work moved to new.trackpaint
    with Project.open(new_path) as saved:
        assert saved.recovery_path() == auto
    with Project.open(new_path, from_autosave=True) as back:
        assert back.path == new_path and back.modified and back.keyframes() == [0, 7]
    first.close()


def write_db(path: Path, statements: list[str]) -> Path:
    with sqlite3.connect(path) as db:
        for sql in statements:
            db.execute(sql)
    return path


def corrupt_variants(tmp_path: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """Broken files and the message fragment each must produce."""
    data = good.read_bytes()
    cases: dict[str, tuple[Path, str]] = {}
    (tmp_path / "text.trackpaint").write_text("hello, I am not a database\n" * 10)
    cases["text"] = (tmp_path / "text.trackpaint", "not an SQLite database")
    (tmp_path / "empty.trackpaint").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.trackpaint", "not an SQLite database")
    (tmp_path / "trunc.trackpaint").write_bytes(data[: len(data) // 2])
    cases["truncated"] = (tmp_path / "trunc.trackpaint", "truncated")
    cases["tables"] = (
        write_db(tmp_path / "other.trackpaint", ["CREATE TABLE t (x)"]),
        "missing tables",
    )
    cases["missing"] = (tmp_path / "nope.trackpaint", "no such project file")
    return cases


def edited_copy(tmp_path: Path, good: Path, name: str, sql: str) -> Path:
    path = tmp_path / name
    path.write_bytes(good.read_bytes())
    write_db(path, [sql])
    return path


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    proj = filled_project(tmp_path)
    path = proj.save(tmp_path / "good.trackpaint")
    proj.close()
    return path


@pytest.mark.parametrize("case", ["text", "empty", "truncated", "tables", "missing"])
def test_broken_files_raise_project_error(tmp_path: Path, good_file: Path, case: str) -> None:
    path, fragment = corrupt_variants(tmp_path, good_file)[case]
    with pytest.raises(ProjectError, match=fragment) as info:
        Project.open(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        (f"UPDATE meta SET value='{SCHEMA_VERSION + 1}' WHERE key='schema_version'", "newer"),
        ("UPDATE meta SET value='[{\"id\": 1' WHERE key='objects'", "inconsistent"),
        (
            'UPDATE meta SET value=\'[{"id": 900, "name": "x", "color": [1, 2, 3]}]\' '
            "WHERE key='objects'",
            "inconsistent",
        ),
        ("UPDATE meta SET value='abc' WHERE key='num_frames'", "inconsistent"),
        ("DELETE FROM meta WHERE key='height'", "lacks"),
        ("UPDATE meta SET value='something-else' WHERE key='format'", "not a Trackpaint"),
        ("UPDATE frames SET idx=999 WHERE idx=1", "outside"),
        ("UPDATE frames SET state=9 WHERE idx=1", "malformed"),
        ("UPDATE frames SET ids='[7]' WHERE idx=1", "not mask objects"),
    ],
)
def test_hand_edited_files_raise_project_error(
    tmp_path: Path, good_file: Path, sql: str, fragment: str
) -> None:
    path = edited_copy(tmp_path, good_file, "edited.trackpaint", sql)
    with pytest.raises(ProjectError, match=fragment) as info:
        Project.open(path)
    assert str(path) in str(info.value)


def test_corrupt_frame_blob_is_reported_on_read(tmp_path: Path, good_file: Path) -> None:
    path = edited_copy(tmp_path, good_file, "blob.trackpaint", "UPDATE frames SET mask=x'00ff'")
    with Project.open(path) as proj, pytest.raises(ProjectError, match="frame 0"):
        proj.labels(0)


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        (FrameLabels(np.zeros((H, W + 1), np.uint8)), "size"),
        (FrameLabels(np.full((H, W), 0.5, np.float32)), "non-integer"),
        (FrameLabels(square_mask(2, object_id=2)), r"\[2\]"),
        (FrameLabels(square_mask(2, object_id=5)), r"\[5\]"),  # a keypoint object's id
        (FrameLabels(None, {5: np.zeros((2, 3), np.float32)}), r"\(3, 3\)"),
        (FrameLabels(None, {1: np.zeros((3, 3), np.float32)}), "not a keypoint object"),
        (FrameLabels(None, {5: np.full((3, 3), 0.5, np.float32)}), "visibility"),
    ],
)
def test_set_frame_validates(tmp_path: Path, labels: FrameLabels, fragment: str) -> None:
    with filled_project(tmp_path) as proj:
        with pytest.raises(MaskError, match=fragment):
            proj.set_frame(4, labels, FrameState.PAINTED)
        assert proj.state(4) == FrameState.EMPTY


def test_object_edits(tmp_path: Path) -> None:
    with filled_project(tmp_path) as proj:
        assert proj.next_object_id() == 2
        with pytest.raises(ValueError, match="already used"):
            proj.add_object(ObjectSpec(1, "again", (1, 1, 1)))
        with pytest.raises(ValueError, match="fixed"):
            proj.replace_object(ObjectSpec(1, "car", (1, 1, 1), "keypoints", ("a",)))
        proj.replace_object(ObjectSpec(1, "truck", (1, 2, 3)))
        assert proj.object(1).name == "truck"
        assert proj.frames_with_object(1) == [0, 1, 2]
        assert proj.frames_with_object(5) == [0]
        assert proj.remove_object(1) == [0, 1, 2]
        assert not (proj.labels(0).mask == 1).any() and (proj.labels(0).mask == 3).sum() == 9
        assert not proj.labels(1).mask.any()
        assert proj.states()[:3].tolist() == [1, 2, 3]  # provenance is kept
        proj.remove_object(5)
        assert proj.labels(0).keypoints == {}
        with pytest.raises(KeyError):
            proj.object(5)


def test_memory_stays_bounded_on_a_long_project(tmp_path: Path) -> None:
    n, size = 2000, 256
    obj = ObjectSpec(1, "blob", (255, 0, 0))
    with Project.new(tmp_path / "long.avi", n, size, size, (obj,), cache_size=8) as proj:
        for t in range(n):
            mask = np.zeros((size, size), np.uint8)
            mask[t % 200 : t % 200 + 40, 30:90] = 1
            proj.set_frame(t, FrameLabels(mask), FrameState.PROPAGATED, confidence=0.5, source=0)
            assert proj.cache_len <= 8
        path = proj.save(tmp_path / "long.trackpaint")
    assert path.stat().st_size < n * size * size // 50  # PNG-compressed, not raw
    with Project.open(path, cache_size=8) as back:
        assert back.cache_len == 0
        assert (back.states() == FrameState.PROPAGATED).all()
        for t in range(0, n, 7):
            assert back.labels(t).mask[t % 200, 50] == 1
            assert back.cache_len <= 8


KILLER = """
import sys, numpy as np
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.project import FrameState, Project
proj = Project.new("v.avi", 40, 128, 128, (ObjectSpec(1, "a", (1, 2, 3)),))
rng = np.random.default_rng(0)
for t in range(40):
    m = rng.integers(0, 2, (128, 128), dtype=np.uint8)
    proj.set_frame(t, FrameLabels(m), FrameState.PAINTED)
proj.save(sys.argv[1])
print("ready", flush=True)
while True:  # rewrite every frame with a different density so the file layout changes
    for t in range(40):
        m = (rng.random((128, 128)) < rng.random()).astype(np.uint8)
        proj.set_frame(t, FrameLabels(m), FrameState.PAINTED)
    proj.save()
"""


def test_sigkill_during_save_leaves_a_complete_file(tmp_path: Path) -> None:
    target = tmp_path / "k.trackpaint"
    alone = tmp_path / "alone" / "k.trackpaint"  # the file by itself, without any journal
    alone.parent.mkdir()
    root = Path(__file__).resolve().parents[2]
    scratch = tmp_path / "scratch"  # the killed writers' scratch copies land here
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(root), "TMPDIR": str(scratch)}
    for delay in (0.05, 0.2, 0.35):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLER, str(target)], stdout=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        alone.write_bytes(target.read_bytes())
        with Project.open(alone) as back:
            assert (back.states() == FrameState.PAINTED).all()
            assert all(back.labels(t).mask.shape == (128, 128) for t in range(40))


def test_scratch_folders_of_dead_processes_are_swept(tmp_path):
    import os
    import subprocess
    import sys

    from tracker_core.project import SCRATCH_PREFIX, Project

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = tmp_path / f"{SCRATCH_PREFIX}{int(child.stdout)}-abc"
    alive = tmp_path / f"{SCRATCH_PREFIX}{os.getppid()}-def"
    unrelated = tmp_path / "someone-else"
    for folder in (dead, alive, unrelated):
        folder.mkdir()
        (folder / "work.sqlite").write_bytes(b"x")
    with Project.new(tmp_path / "v.mp4", 3, 8, 8, scratch_dir=tmp_path) as project:
        assert project.num_frames == 3
        assert not dead.exists()
        assert alive.exists() and unrelated.exists()
        mine = [p for p in tmp_path.glob(f"{SCRATCH_PREFIX}{os.getpid()}-*")]
        assert len(mine) == 1  # the open project's own scratch folder is kept
