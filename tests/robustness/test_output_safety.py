"""Output safety through the command line, as fault-injection regression tests (issue 8).

Trackpaint deletes or replaces only outputs it wrote itself and can prove it, never writes at or
inside an input, writes every output atomically, and cleans up what dead runs left behind
(``tracker_core/outputs.py``). Every case ran against the code before that rule and failed there.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fixtures_video import make_moving_square_frames, write_frame_folder
from tests.robustness.conftest import _inside
from tracker_core.cli import main
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.masks import davis_palette, read_indexed_png
from tracker_core.project import FrameState, Project
from tracker_core.session import Session
from tracker_core.video import VideoSource

ROOT = Path(__file__).resolve().parents[2]
N, H, W = 10, 64, 96
FAST = ["--model", "lab", "--radius", "2", "--keyframe-radius", "3", "--n-recent", "2"]
needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


# --------------------------------------------------------------------------- helpers


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run ``trackpaint -q ARGV...`` in-process; return (status, stdout, stderr)."""
    capsys.readouterr()
    status = main(["-q", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return status, out, err


def assert_refused(status: int, err: str, path: Path, fragment: str = "") -> None:
    """Exit status 2 and exactly one ``trackpaint: error: <path>: ...`` line."""
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"trackpaint: error: {path}: "), err
    assert fragment in lines[0], err


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes), hidden ones included."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def dead_pid() -> int:
    """The id of a process that has just exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def fail_fsync_after(
    monkeypatch: pytest.MonkeyPatch, folder: Path, k: int, error: Callable[[], BaseException]
) -> list[str]:
    """Let the first ``k`` fsyncs of files inside ``folder`` pass, then raise ``error()`` (a
    disk filling up, or Ctrl+C, after ``k`` frames). Returns the files it failed."""
    real_fsync = os.fsync
    seen: list[str] = []
    failed: list[str] = []

    def fake_fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if _inside(target, folder.absolute()) and Path(target).is_file():
            seen.append(target)
            if len(seen) > k:
                failed.append(target)
                raise error()
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fake_fsync)
    return failed


def _contents(path: Path) -> object:
    """What is at ``path``: a folder's snapshot, a file's bytes, or None."""
    if path.is_dir():
        return snapshot(path)
    return path.read_bytes() if path.exists() else None


def _pngs(folder: Path) -> dict[str, bytes]:
    """The visible ``*.png`` files of ``folder`` (name -> bytes)."""
    return {p.name: p.read_bytes() for p in folder.glob("*.png")}


def masks_of(folder: Path) -> list[np.ndarray]:
    """The ``NNNNN.png`` masks of a propagate output, in order."""
    return [read_indexed_png(p) for p in sorted(folder.glob("*.png"))]


@pytest.fixture
def clip(tmp_path: Path) -> tuple[Path, Path, Path]:
    """``(frame folder, init mask with id 1, init mask with id 2)`` of a 10-frame clip; runs
    from the two masks give different outputs."""
    frames, masks = make_moving_square_frames(N, H, W)
    folder = write_frame_folder(tmp_path / "frames", frames)[0].parent
    init_a, init_b = tmp_path / "init_a.png", tmp_path / "init_b.png"
    cv2.imwrite(str(init_a), masks[0])
    cv2.imwrite(str(init_b), masks[0] * 2)
    return folder, init_a, init_b


def _project_on(folder: Path, path: Path, painted: dict[int, np.ndarray]) -> Path:
    """Save a project on the frame folder with ``painted`` keyframes; return its path."""
    n = len(list(folder.glob("*.*")))
    project = Project.new(folder, n, H, W, [ObjectSpec(1, "square", (200, 0, 0))])
    for t, mask in painted.items():
        project.set_frame(t, FrameLabels(mask=mask), FrameState.PAINTED)
    project.save(path)
    project.close()
    return path


# --------------------------------------------------------------------------- DAVIS export


def test_davis_export_never_deletes_the_videos_own_frames_at_annotations_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found case 1: frames in X/Annotations/clip/*.jpg, a project on that folder, export to X."""
    frames, masks = make_moving_square_frames(N, H, W)
    folder = tmp_path / "X" / "Annotations" / "clip"
    write_frame_folder(folder, frames, ".jpg")
    before = snapshot(folder)
    project = _project_on(folder, tmp_path / "p.trackpaint", {0: masks[0]})

    status, _, err = run_cli(
        capsys, "export", project, "--format", "davis", "--out", tmp_path / "X"
    )

    assert_refused(status, err, folder, "input video itself")
    assert snapshot(folder) == before  # every JPEG intact, nothing added


def test_davis_export_refuses_a_foreign_folder_at_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path]
) -> None:
    folder = clip[0]
    _, masks = make_moving_square_frames(N, H, W)
    project = _project_on(folder, tmp_path / "p.trackpaint", {0: masks[0]})
    target = tmp_path / "X" / "Annotations" / "frames"
    (target / "sub").mkdir(parents=True)
    (target / "README").write_text("my notes")
    (target / "sub" / "00000.jpg").write_bytes(b"\xff\xd8 my frame")
    before = snapshot(tmp_path / "X")

    status, _, err = run_cli(
        capsys, "export", project, "--format", "davis", "--out", tmp_path / "X"
    )

    assert_refused(status, err, target, "is not a Trackpaint output")
    assert snapshot(tmp_path / "X") == before


def test_davis_export_refuses_an_export_whose_mask_the_user_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path]
) -> None:
    _, masks = make_moving_square_frames(N, H, W)
    project = _project_on(clip[0], tmp_path / "p.trackpaint", {0: masks[0]})
    out = tmp_path / "X"
    status, _, err = run_cli(capsys, "export", project, "--format", "davis", "--out", out)
    assert status == 0, err
    edited = out / "Annotations" / "frames" / "00004.png"
    edited_mask = read_indexed_png(edited)
    edited_mask[:5, :5] = 1  # the user fixed a frame by hand
    cv2.imwrite(str(edited), edited_mask)
    before = snapshot(out)

    status, _, err = run_cli(capsys, "export", project, "--format", "davis", "--out", out)

    assert_refused(status, err, out / "Annotations" / "frames", "00004.png was changed")
    assert snapshot(out) == before


@needs_proc
def test_failed_davis_export_leaves_no_empty_annotations_folder(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clip: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, masks = make_moving_square_frames(N, H, W)
    project = _project_on(clip[0], tmp_path / "p.trackpaint", {0: masks[0]})
    out = tmp_path / "X"
    out.mkdir()
    fail_fsync_after(monkeypatch, out, 3, lambda: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    status, _, err = run_cli(capsys, "export", project, "--format", "davis", "--out", out)

    monkeypatch.undo()
    assert_refused(status, err, out / "Annotations" / "frames", "No space left on device")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("command", ["export", "propagate"])
def test_out_naming_an_existing_file_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path], command: str
) -> None:
    folder, init, _ = clip
    _, masks = make_moving_square_frames(N, H, W)
    blocker = tmp_path / "results.txt"
    blocker.write_text("user data")
    if command == "export":
        project = _project_on(folder, tmp_path / "p.trackpaint", {0: masks[0]})
        status, _, err = run_cli(capsys, "export", project, "--format", "davis", "--out", blocker)
    else:
        status, _, err = run_cli(
            capsys, "propagate", folder, "--init", init, "--out", blocker, *FAST
        )
    assert_refused(status, err, blocker, "is a file, not a folder")
    assert "not writable" not in err and "File exists" not in err
    assert blocker.read_text() == "user data"


# --------------------------------------------------------------------------- propagate --out


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_propagate_out_equal_to_the_source_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ext: str
) -> None:
    """Found case 2: PNG frames were overwritten with masks; JPEG frames got masks mixed in."""
    frames, masks = make_moving_square_frames(N, H, W)
    folder = tmp_path / "frames"
    write_frame_folder(folder, frames, ext)
    init = tmp_path / "init.png"
    cv2.imwrite(str(init), masks[0])
    before = snapshot(folder)

    status, _, err = run_cli(capsys, "propagate", folder, "--init", init, "--out", folder, *FAST)

    assert_refused(status, err, folder, "input video itself")
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "init.png"]


@pytest.mark.parametrize("where", ["inside the frames", "the video file", "holding the mask"])
def test_propagate_out_inside_or_around_an_input_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path], where: str
) -> None:
    folder, init, _ = clip
    source, init_frame = folder, 0
    if where == "inside the frames":
        out = folder / "masks"
        fragment = "lies inside the input video"
    elif where == "the video file":
        frames, _ = make_moving_square_frames(N, H, W)
        from tests.fixtures_video import write_video

        source = out = write_video(tmp_path / "clip.avi", frames)
        fragment = "input video itself"
    else:  # a previous result's mask as the new initial mask, writing over that result
        out = tmp_path / "prev"
        status, _, err = run_cli(capsys, "propagate", folder, "--init", init, "--out", out, *FAST)
        assert status == 0, err
        init, init_frame = out / "00004.png", 4
        fragment = "would contain the initial mask"
    before = {p: _contents(p) for p in (source, out, init)}

    status, _, err = run_cli(
        capsys, "propagate", source, "--init", init, "--init-frame", init_frame, "--out", out, *FAST
    )

    assert_refused(status, err, out, fragment)
    assert {p: _contents(p) for p in before} == before


@needs_proc
@pytest.mark.parametrize("failure", ["disk full", "Ctrl+C"])
def test_propagate_failing_midway_keeps_the_previous_complete_output(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clip: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    """Found case 4: a failure mid-run left old and new masks mixed in --out."""
    folder, init_a, init_b = clip
    out = tmp_path / "out"
    status, _, err = run_cli(capsys, "propagate", folder, "--init", init_a, "--out", out, *FAST)
    assert status == 0, err
    old = snapshot(out)
    if failure == "disk full":
        error: Callable[[], BaseException] = lambda: OSError(  # noqa: E731
            errno.ENOSPC, os.strerror(errno.ENOSPC)
        )
    else:
        error = KeyboardInterrupt
    failed = fail_fsync_after(monkeypatch, tmp_path, 4, error)  # after 4 of the 10 frames

    status, _, err = run_cli(capsys, "propagate", folder, "--init", init_b, "--out", out, *FAST)

    monkeypatch.undo()
    assert failed, "the failure was never injected"
    if failure == "disk full":
        assert_refused(status, err, out / "00004.png", "No space left on device")
    else:
        assert status == 130 and err.strip() == "trackpaint: interrupted"
    assert snapshot(out) == old  # the previous complete result, nothing mixed in
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frames",
        "init_a.png",
        "init_b.png",
        "out",
    ]


def test_sigkill_mid_propagate_keeps_the_old_output_and_the_next_run_cleans_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames, masks = make_moving_square_frames(16, H, W)
    folder = tmp_path / "frames"
    write_frame_folder(folder, frames)
    init_a, init_b = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(init_a), masks[0])
    cv2.imwrite(str(init_b), masks[0] * 2)
    out = tmp_path / "out"
    status, _, err = run_cli(capsys, "propagate", folder, "--init", init_a, "--out", out, *FAST)
    assert status == 0, err
    old = snapshot(out)
    _pngs_before = _pngs(out)
    args = ["-q", "propagate", folder, "--init", init_b, "--out", out, *FAST]
    child = subprocess.Popen(
        [sys.executable, "-m", "tracker_core.cli", *(str(a) for a in args)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while child.poll() is None and time.monotonic() < deadline:
            staged = [p for p in tmp_path.glob(".out.*") if len(list(p.glob("*.png"))) >= 3]
            if staged or _pngs(out) != _pngs_before:  # new masks are being written somewhere
                break
            time.sleep(0.002)
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        assert child.stderr is not None
        stderr = child.stderr.read().decode()
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL, f"finished before the kill: {stderr}"
    assert snapshot(out) == old  # the previous complete output, untouched
    assert [p.name.split(".")[-1] for p in tmp_path.glob(".out.*")] == ["partial"]

    status, _, err = run_cli(capsys, "propagate", folder, "--init", init_b, "--out", out, *FAST)

    assert status == 0, err
    assert list(tmp_path.glob(".out.*")) == []  # the dead run's staging folder is gone
    new = masks_of(out)
    assert len(new) == 16 and all(set(np.unique(m)) <= {0, 2} for m in new)


# --------------------------------------------------------------------------- stale leftovers


def test_dead_runs_leftovers_are_cleaned_when_the_target_is_next_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path]
) -> None:
    """Found case 6: killed exports left hidden staging folders and temp files forever."""
    folder, init, _ = clip
    _, masks = make_moving_square_frames(N, H, W)
    project = _project_on(folder, tmp_path / "p.trackpaint", {0: masks[0]})
    out = tmp_path / "X"
    annotations = out / "Annotations"
    annotations.mkdir(parents=True)
    dead, alive = dead_pid(), os.getppid()
    hour_ago = time.time() - 3600

    def leftover(path: Path, folder: bool = True, old: bool = False) -> Path:
        if folder:
            path.mkdir()
            (path / "00000.png").write_bytes(b"partial")
        else:
            path.write_bytes(b"partial")
        if old:
            os.utime(path, (hour_ago, hour_ago))
        return path

    gone = [
        leftover(annotations / f".frames.{dead}-0123456789ab.partial"),
        leftover(annotations / f".frames.{'a' * 32}.partial", old=True),  # Trackpaint 0.1.0
        leftover(out / f".c.json.{dead}-0123456789ab.tmp", folder=False),
        leftover(out / f".c.json.{'b' * 32}.tmp", folder=False, old=True),
        leftover(tmp_path / f".m.{dead}-0123456789ab.partial"),
    ]
    kept = [
        leftover(annotations / f".frames.{alive}-0123456789ab.partial"),  # a running export
        leftover(annotations / f".frames.{'c' * 32}.partial"),  # recent: may be running
        leftover(annotations / ".frames.notes.partial"),  # not Trackpaint's naming
        leftover(out / f".c.json.{alive}-0123456789ab.tmp", folder=False),
        leftover(annotations / f".other.{dead}-0123456789ab.partial"),  # another target's
    ]

    for argv in (
        ["export", project, "--format", "davis", "--out", out],
        ["export", project, "--format", "coco", "--out", out / "c.json"],
        ["propagate", folder, "--init", init, "--out", tmp_path / "m", *FAST],
    ):
        status, _, err = run_cli(capsys, *argv)
        assert status == 0, err

    assert [p for p in gone if os.path.lexists(p)] == []
    assert [p for p in kept if not p.exists()] == []


# --------------------------------------------------------------------------- COCO export


def test_coco_export_refuses_an_unrelated_json_and_replaces_only_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path]
) -> None:
    """Found case 8: an unrelated .json at --out was silently replaced."""
    folder = clip[0]
    _, masks = make_moving_square_frames(N, H, W)
    project = _project_on(folder, tmp_path / "p.trackpaint", {0: masks[0]})
    theirs = tmp_path / "dataset.json"
    theirs.write_text(json.dumps({"info": {}, "images": [], "annotations": [], "categories": []}))
    before = theirs.read_bytes()

    status, _, err = run_cli(capsys, "export", project, "--format", "coco", "--out", theirs)
    assert_refused(status, err, theirs, "not a COCO file written by Trackpaint")
    assert theirs.read_bytes() == before

    ours = tmp_path / "ours.json"
    status, _, err = run_cli(capsys, "export", project, "--format", "coco", "--out", ours)
    assert status == 0, err
    assert len(json.loads(ours.read_text())["annotations"]) == 1
    project = _project_on(folder, tmp_path / "p.trackpaint", {0: masks[0], 5: masks[5]})
    status, _, err = run_cli(capsys, "export", project, "--format", "coco", "--out", ours)
    assert status == 0, err  # our own, unchanged file is replaced
    document = json.loads(ours.read_text())
    assert len(document["annotations"]) == 2 and document["info"]["trackpaint"]["kind"] == "coco"

    ours.write_text(json.dumps(document, indent=2))  # the user edited it (a pretty-printer)
    before = ours.read_bytes()
    status, _, err = run_cli(capsys, "export", project, "--format", "coco", "--out", ours)
    assert_refused(status, err, ours, "COCO file written by Trackpaint")
    assert ours.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob(".*")) == []


def test_coco_export_refuses_the_project_file_and_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path]
) -> None:
    _, masks = make_moving_square_frames(N, H, W)
    project = _project_on(clip[0], tmp_path / "p.json", {0: masks[0]})  # an odd project name
    before = project.read_bytes()
    status, _, err = run_cli(capsys, "export", project, "--format", "coco", "--out", project)
    assert_refused(status, err, project, "project file itself")
    assert project.read_bytes() == before
    folder_json = tmp_path / "x.json"
    folder_json.mkdir()
    status, _, err = run_cli(capsys, "export", project, "--format", "coco", "--out", folder_json)
    assert_refused(status, err, folder_json, "is a folder")


# --------------------------------------------------------------------------- --project


def test_propagate_project_opens_for_correction_with_provenance(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path]
) -> None:
    folder, _, _ = clip
    _, masks = make_moving_square_frames(N, H, W)
    init = tmp_path / "mid.png"
    cv2.imwrite(str(init), masks[3])
    out, path = tmp_path / "out", tmp_path / "pre label.trackpaint"
    argv = ["propagate", folder, "--init", init, "--init-frame", 3, "--out", out]
    status, stdout, err = run_cli(capsys, *argv, "--project", path, *FAST)
    assert status == 0, err
    assert str(path) in stdout

    with Project.open(path) as project, VideoSource.open(project.video_path) as video:
        assert project.video_path == folder.absolute() and project.num_frames == N
        assert [(o.id, o.name, o.color) for o in project.objects] == [
            (1, "object 1", tuple(int(c) for c in davis_palette()[1]))
        ]
        states, conf = project.states(), project.confidences()
        assert project.state(3) == FrameState.PAINTED and project.keyframes() == [3]
        others = [t for t in range(N) if t != 3]
        assert all(states[t] == FrameState.PROPAGATED for t in others)
        assert np.isfinite(conf[others]).all() and ((conf[others] >= 0) & (conf[others] <= 1)).all()
        assert all(project.source(t) == 3 for t in others)
        for t, mask in enumerate(masks_of(out)):  # the same masks as the --out folder
            np.testing.assert_array_equal(project.labels(t).mask, mask)
        # the GUI's model: correcting frame 6 turns the frames propagated through it stale
        session = Session(project, video)
        session.set_mask(6, masks[6])
        states = project.states()
        assert (states[7:] == FrameState.STALE).all()
        assert (states[[0, 1, 2, 4, 5]] == FrameState.PROPAGATED).all()


def test_propagate_project_alone_replaces_its_own_but_never_a_corrected_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path]
) -> None:
    folder, init_a, init_b = clip
    path = tmp_path / "p.trackpaint"
    status, _, err = run_cli(
        capsys, "propagate", folder, "--init", init_a, "--project", path, *FAST
    )
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frames",
        "init_a.png",
        "init_b.png",
        "p.trackpaint",
    ]  # --out is optional with --project

    status, _, err = run_cli(
        capsys, "propagate", folder, "--init", init_b, "--project", path, *FAST
    )
    assert status == 0, err  # an unchanged output of ours is replaced
    with Project.open(path) as project:
        assert project.mask_object_ids() == (2,)
        corrected = np.array(project.labels(5).mask)
        corrected[:4, :4] = 2
        session = Session(project)
        session.set_mask(5, corrected)
        session.save()
    before = path.read_bytes()

    status, _, err = run_cli(
        capsys, "propagate", folder, "--init", init_a, "--project", path, *FAST
    )

    assert_refused(status, err, path, "changed since (corrections are yours)")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob(".*")) == []


@pytest.mark.parametrize("case", ["foreign file", "GUI project", "inside --out", "the video"])
def test_propagate_project_refuses_what_is_not_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clip: tuple[Path, Path, Path], case: str
) -> None:
    folder, init, _ = clip
    out = tmp_path / "out"
    path = tmp_path / "p.trackpaint"
    fragment = "not a project written by trackpaint propagate"
    if case == "foreign file":
        path.write_text("my notes")
    elif case == "GUI project":
        _, masks = make_moving_square_frames(N, H, W)
        _project_on(folder, path, {0: masks[0]})
    elif case == "inside --out":
        path = out / "p.trackpaint"
        fragment = "lies inside the mask output folder"
    else:
        path = folder / "00000.png"
        fragment = "lies inside the input video"
    before = snapshot(tmp_path)

    status, _, err = run_cli(
        capsys, "propagate", folder, "--init", init, "--out", out, "--project", path, *FAST
    )

    assert_refused(status, err, path, fragment)
    assert snapshot(tmp_path) == before
    assert not out.exists()  # refused before anything was computed or written


def test_propagate_project_failing_midway_keeps_the_previous_project(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    clip: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tracker_core import prelabel

    folder, init_a, init_b = clip
    path, out = tmp_path / "p.trackpaint", tmp_path / "out"
    argv = ["propagate", folder, "--out", out, "--project", path, *FAST]
    status, _, err = run_cli(capsys, *argv, "--init", init_a)
    assert status == 0, err
    before = snapshot(tmp_path)
    real_add = prelabel.PropagationWriter.add
    calls = []

    def add(self: prelabel.PropagationWriter, *args: object) -> None:
        calls.append(args[0])
        if len(calls) > 4:
            raise KeyboardInterrupt
        real_add(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(prelabel.PropagationWriter, "add", add)
    status, _, err = run_cli(capsys, *argv, "--init", init_b)
    monkeypatch.undo()

    assert status == 130, err
    assert snapshot(tmp_path) == before  # the old project and masks, and no leftovers
