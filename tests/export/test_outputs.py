"""The output rule (``tracker_core/outputs.py``) on its own: inputs, ownership, staging, swap and
the clean-up of dead runs' leftovers. The export and propagate paths are covered end to end in
``tests/robustness/test_output_safety.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import tracker_core.outputs as outputs
from tracker_core.errors import ExportError
from tracker_core.export import coco_problem, export_coco, export_davis
from tracker_core.labels import FrameLabels
from tracker_core.outputs import (
    MANIFEST_NAME,
    StagedFile,
    StagedFolder,
    check_not_input,
    clean_stale,
    folder_problem,
    read_manifest,
)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _write(staging: Path, names: list[str]) -> None:
    for name in names:
        (staging / name).write_bytes(name.encode())


# --------------------------------------------------------------------------- inputs


def test_an_output_may_not_be_inside_equal_to_or_around_an_input(tmp_path: Path) -> None:
    video = tmp_path / "frames"
    video.mkdir()
    (video / "00000.png").write_bytes(b"frame")
    link = tmp_path / "link"
    link.symlink_to(video)
    cases = {
        video: "is the input video itself",
        tmp_path / "frames" / ".." / "frames": "is the input video itself",
        link: "is the input video itself",  # through a symbolic link
        link / "masks": "lies inside the input video",
        video / "a" / "b": "lies inside the input video",
        tmp_path: "would contain the input video",
    }
    for target, fragment in cases.items():
        with pytest.raises(ExportError, match=fragment) as info:
            check_not_input(target, [("input video", video)])
        assert str(info.value).startswith(f"{target}: ")
    check_not_input(tmp_path / "frames-out", [("input video", video), ("project file", None)])
    check_not_input(tmp_path / "framesX" / "y", [("input video", video)])


def test_an_input_reached_by_another_name_is_recognised(tmp_path: Path) -> None:
    """Device + inode identity: a hard link to the input file is the input."""
    video = tmp_path / "clip.avi"
    video.write_bytes(b"video")
    other = tmp_path / "other name.avi"
    os.link(video, other)
    with pytest.raises(ExportError, match="input video itself"):
        check_not_input(other, [("input video", video)])


# --------------------------------------------------------------------------- ownership


def test_what_may_be_replaced(tmp_path: Path) -> None:
    assert folder_problem(tmp_path / "absent") is None
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"finder")  # OS clutter is not the user's work
    assert folder_problem(empty) is None
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "00000.png").write_bytes(b"x")
    assert "not a Trackpaint output" in str(folder_problem(foreign))
    (foreign / MANIFEST_NAME).write_text("{not json")
    assert "not a Trackpaint output" in str(folder_problem(foreign))
    (foreign / MANIFEST_NAME).write_text(json.dumps({"trackpaint_output": 1, "kind": "x"}))
    assert "not a Trackpaint output" in str(folder_problem(foreign))  # no file list


def test_an_output_stays_ours_only_while_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with StagedFolder(target, "test") as staging:
        _write(staging, ["00000.png", "00001.png"])
    manifest = read_manifest(target)
    assert manifest is not None and manifest["kind"] == "test"
    assert sorted(manifest["files"]) == ["00000.png", "00001.png"]
    assert folder_problem(target) is None

    (target / "00001.png").unlink()  # removing our files takes nothing of the user's
    assert folder_problem(target) is None
    (target / "00000.png").write_bytes(b"0000X.png")  # same size, other bytes
    assert "00000.png was changed" in str(folder_problem(target))
    (target / "00000.png").write_bytes(b"00000.png")
    (target / "sub").mkdir()
    assert "holds sub, which Trackpaint did not write" in str(folder_problem(target))


def test_a_symbolic_link_or_a_file_at_a_folder_target_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(ExportError, match="symbolic link"):
        StagedFolder(link, "test").prepare()
    file = tmp_path / "file"
    file.write_text("mine")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        StagedFolder(file, "test").prepare()
    with pytest.raises(ExportError, match="is a file, not a folder") as info:
        StagedFolder(file / "a" / "b", "test").prepare()
    assert info.value.path == file
    assert link.resolve() == real and file.read_text() == "mine"


def test_a_foreign_file_appearing_during_the_write_is_not_deleted(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with StagedFolder(target, "test") as staging:
        _write(staging, ["00000.png"])
    before = _tree(target)
    with pytest.raises(ExportError, match=r"mine\.txt, which Trackpaint did not write"):
        with StagedFolder(target, "test") as staging:
            _write(staging, ["00000.png"])
            (target / "mine.txt").write_text("saved while the export ran")
    assert _tree(target) == {**before, "mine.txt": b"saved while the export ran"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_davis_export_does_not_delete_a_file_saved_into_it_while_exporting(
    tmp_path: Path,
) -> None:
    """Through the DAVIS exporter: the target is checked again just before the swap."""
    target = export_davis(tmp_path, [], 3, (8, 8), "bear")

    def frames():
        (target / "mine.txt").write_text("notes")
        yield 0, FrameLabels(np.ones((8, 8), np.uint8))

    with pytest.raises(ExportError, match=r"mine\.txt"):
        export_davis(tmp_path, frames(), 3, (8, 8), "bear")
    assert (target / "mine.txt").read_text() == "notes"
    assert len(list(target.glob("*.png"))) == 3


def test_a_failed_write_removes_staging_and_the_folders_it_created(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with StagedFolder(target, "test") as staging:
            _write(staging, ["00000.png"])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="boom"):
        with StagedFile(tmp_path / "c" / "x.json", lambda p: None) as tmp:
            tmp.write_text("{}")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_the_fallback_swap_keeps_an_output_visible(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "out"
    with StagedFolder(target, "test") as staging:
        _write(staging, ["old.png"])
    monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)  # no renameat2
    with StagedFolder(target, "test") as staging:
        _write(staging, ["new.png"])
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST_NAME, "new.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --------------------------------------------------------------------------- COCO proof


def test_coco_proof_detects_any_edit(tmp_path: Path) -> None:
    path = export_coco(tmp_path / "c.json", [], [], (4, 4), "{}.jpg".format, 2)
    assert coco_problem(path) is None
    document = json.loads(path.read_text())
    assert next(iter(document["info"])) == "trackpaint"
    data = path.read_bytes()
    path.write_bytes(data.replace(b'"height":4', b'"height":5'))  # prefix and size intact
    assert coco_problem(path) == "was changed after Trackpaint wrote it"
    path.write_bytes(data + b" ")
    assert coco_problem(path) == "was changed after Trackpaint wrote it"
    path.write_bytes(data)
    assert coco_problem(path) is None
    path.write_text(json.dumps({"info": {"trackpaint": {"kind": "coco"}}}))  # forged, no hash
    assert coco_problem(path) is not None


# --------------------------------------------------------------------------- leftovers


def test_clean_stale_removes_only_dead_runs_leftovers_of_this_target(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    dead, alive, me = _dead_pid(), os.getppid(), os.getpid()
    hour_ago = time.time() - 3600
    names = {
        f".out.{dead}-0123456789ab.partial": True,
        f".out.{dead}-0123456789ab.old": True,
        f".out.{dead}-0123456789ab.tmp": True,
        f".out.{dead}-0123456789ab.tmp-journal": True,
        f"..out.{dead}-0123456789ab.tmp.{'d' * 32}.tmp": True,  # Project.save's own temp
        f"..out.{dead}-0123456789ab.tmp.{'d' * 32}.tmp-journal": True,  # and its journal
        f"..out.{dead}-0123456789ab.tmp.{dead}-0123456789ab.tmp": True,  # the same, named by pid
        f".out.{'a' * 32}.partial": True,  # Trackpaint 0.1.0, untouched for an hour
        f".out.{'b' * 32}.tmp": False,  # Trackpaint 0.1.0, recent: may still be running
        f".out.{alive}-0123456789ab.partial": False,  # a running process
        f".out.{me}-0123456789ab.partial": False,  # this process (another thread's export)
        f".out.{dead}-xyz.partial": False,  # not Trackpaint's naming
        f".outer.{dead}-0123456789ab.partial": False,  # another target
        f"..out.{dead}-0123456789ab.partial": False,
    }
    for name in names:
        path = tmp_path / name
        if name.endswith(".partial") or name.endswith(".old"):
            path.mkdir()
            (path / "x.png").write_bytes(b"x")
        else:
            path.write_bytes(b"x")
        if "a" * 32 in name:
            os.utime(path, (hour_ago, hour_ago))

    removed = clean_stale(target)

    left = {p.name for p in tmp_path.iterdir()}
    assert removed == sum(names.values())
    assert left == {"out", *(n for n, gone in names.items() if not gone)}


def test_a_backup_is_never_cleaned_while_the_target_is_missing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    backup = tmp_path / f".out.{_dead_pid()}-0123456789ab.old"
    backup.mkdir()
    (backup / "00000.png").write_bytes(b"the only copy")
    outputs.write_manifest(backup, "test")  # a previous output renamed aside by a swap
    assert clean_stale(target) == 0 and backup.exists()
    with StagedFolder(target, "test") as staging:  # recovers the backup, then replaces it
        _write(staging, ["00000.png"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
