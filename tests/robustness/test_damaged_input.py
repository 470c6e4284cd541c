"""Damaged input is named, never decoded to garbage; every error is one line.

Fault injection on generated clips: a JPEG with corrupted bytes mid-sequence, MJPG AVI and MKV
files cut to 30 %, PNGs with a malformed colour profile, incomplete DAVIS roots and missing
BADJA files. The command line runs in a subprocess where the point is what reaches the terminal
(libjpeg, libpng and FFmpeg write to file descriptor 2, which in-process capture cannot see), and
in-process elsewhere.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fixtures_video import (
    add_bad_iccp_chunk,
    corrupt_jpeg,
    make_moving_square_frames,
    truncate_file,
    write_frame_folder,
    write_video,
)
from tests.robustness.conftest import H, W
from tracker_core.cli import main
from tracker_core.errors import FrameDamaged
from tracker_core.labels import FrameLabels
from tracker_core.masks import read_indexed_png
from tracker_core.project import FrameState, Project
from tracker_core.propagate import PropagationConfig, propagate
from tracker_core.session import Session
from tracker_core.video import VideoSource

ROOT = Path(__file__).resolve().parents[2]
N = 8  # frames of the test clip (short: the command line runs whole propagations)
BAD = 4  # the corrupted frame of the JPEG sequence
LONG = 20  # frames of the clips that are cut short


def run_cli_process(*argv: object) -> tuple[int, str, str]:
    """``python -m tracker_core.cli -q ARGV...`` in a child process: (status, stdout, stderr)
    exactly as a terminal would get them, native libraries' output included."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}  # only native noise is under test
    done = subprocess.run(
        [sys.executable, "-m", "tracker_core.cli", "-q", *(str(a) for a in argv)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """``trackpaint -q ARGV...`` in-process; return (status, stdout, stderr)."""
    capsys.readouterr()
    status = main(["-q", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(status: int, err: str, path: Path, fragment: str) -> str:
    """Exit 2 and stderr is exactly ``trackpaint: error: <path>: ...<fragment>...``."""
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"trackpaint: error: {path}: "), err
    assert fragment in lines[0], err
    return lines[0]


@pytest.fixture
def clip() -> tuple[list[np.ndarray], list[np.ndarray]]:
    return make_moving_square_frames(N, H, W)


@pytest.fixture
def init_mask(tmp_path: Path, clip) -> Path:
    path = tmp_path / "init.png"
    cv2.imwrite(str(path), clip[1][0])
    return path


@pytest.fixture
def corrupt_jpegs(tmp_path: Path, clip) -> tuple[Path, Path]:
    """A JPEG frame folder whose frame BAD has corrupted bytes: (folder, that file)."""
    folder = tmp_path / "jpegs"
    paths = write_frame_folder(folder, clip[0], ".jpg")
    return folder, corrupt_jpeg(paths[BAD])


def _video_or_skip(path: Path, frames: list[np.ndarray], fourcc: str = "MJPG") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), 25, (W, H))
    if not writer.isOpened():
        pytest.skip(f"this OpenCV cannot write {fourcc} into {path.suffix}")
    writer.release()
    return write_video(path, frames, fourcc)


def _truncated(tmp_path: Path, suffix: str) -> Path:
    """A 20-frame clip cut to 30 % (the issue's case: 7 of 20 frames, the last half there)."""
    frames, _ = make_moving_square_frames(LONG, H, W)  # frame 0 is the short clip's frame 0
    full = _video_or_skip(tmp_path / f"full{suffix}", frames)
    return truncate_file(full, 0.3, tmp_path / f"cut to 30 %{suffix}")


# --------------------------------------------------------------------------- one line on stderr


def test_corrupt_jpeg_mid_sequence_is_one_error_line(tmp_path: Path, corrupt_jpegs, init_mask):
    folder, bad = corrupt_jpegs
    status, _, err = run_cli_process(
        "propagate", folder, "--init", init_mask, "--out", tmp_path / "out", "--model", "lab"
    )
    line = one_error_line(status, err, bad, f"frame {BAD}: corrupt image data")
    assert "Corrupt JPEG data" in line  # libjpeg's words, folded into the message
    assert "--skip-damaged" in line


@pytest.mark.parametrize("suffix", [".avi", ".mkv"])
def test_truncated_video_is_one_error_line_before_anything_is_written(
    tmp_path: Path, clip, init_mask, suffix: str
):
    cut = _truncated(tmp_path, suffix)
    out = tmp_path / "out"
    status, _, err = run_cli_process(
        "propagate", cut, "--init", init_mask, "--out", out, "--model", "lab"
    )
    with VideoSource.open(cut) as video:
        first = video.damaged[0]
    assert 1 <= first.index < LONG
    line = one_error_line(status, err, cut, f"frame {first.index}: ")
    assert "truncated" in line or "missing" in line
    assert not out.exists()  # the truncation is known at open: refused before any write


def test_png_with_bad_colour_profile_works_without_noise(tmp_path: Path, clip, init_mask):
    folder = tmp_path / "pngs"
    for path in write_frame_folder(folder, clip[0], ".png"):
        add_bad_iccp_chunk(path)
    check = subprocess.run(  # the fixture really provokes libpng's warning
        [sys.executable, "-c", f"import cv2; cv2.imread({str(folder / '00000.png')!r})"],
        capture_output=True,
        text=True,
    )
    assert "libpng warning: iCCP" in check.stderr
    out = tmp_path / "out"
    status, stdout, err = run_cli_process(
        "propagate", folder, "--init", init_mask, "--out", out, "--model", "lab"
    )
    assert status == 0 and err == "", err
    assert f"wrote {N} masks" in stdout
    assert len(list(out.glob("*.png"))) == N


def test_unopenable_video_folds_ffmpeg_into_the_line(tmp_path: Path, init_mask):
    path = tmp_path / "random.mp4"
    path.write_bytes(np.random.default_rng(2).bytes(30_000))
    status, _, err = run_cli_process(
        "propagate", path, "--init", init_mask, "--out", tmp_path / "out", "--model", "lab"
    )
    one_error_line(status, err, path, "cannot open as a video")


def test_skip_damaged_lists_the_frames_on_stderr_only(tmp_path: Path, corrupt_jpegs, init_mask):
    folder, bad = corrupt_jpegs
    out = tmp_path / "out"
    status, stdout, err = run_cli_process(
        "propagate", folder, "--init", init_mask, "--out", out, "--model", "lab", "--skip-damaged"
    )
    assert status == 0, err
    [line] = err.splitlines()
    assert re.fullmatch(
        rf"trackpaint: warning: {re.escape(str(bad))}: frame {BAD}: corrupt image data "
        r"\(Corrupt JPEG data: \d+ extraneous bytes before marker 0xd9\) \(skipped: no mask\)",
        line,
    ), line
    assert f"wrote {N - 1} masks" in stdout


# --------------------------------------------------------------------------- --skip-damaged


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_skip_damaged_gives_no_mask_to_the_damaged_frame_and_keeps_tracking(
    tmp_path: Path, capsys, clip, corrupt_jpegs, init_mask
):
    folder, bad = corrupt_jpegs
    out = tmp_path / "out"
    status, _, err = run_cli(
        capsys,
        "propagate",
        folder,
        "--init",
        init_mask,
        "--out",
        out,
        "--model",
        "lab",
        "--skip-damaged",
    )
    assert status == 0, err
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"{t:05d}.png" for t in range(N) if t != BAD]
    masks = clip[1]
    for t in (BAD - 1, BAD + 1, N - 1):  # the frames around it are tracked from clean memory
        assert _iou(read_indexed_png(out / f"{t:05d}.png") > 0, masks[t] > 0) > 0.6
    assert f"{bad}: frame {BAD}:" in err


def test_skip_damaged_on_a_truncated_avi_writes_the_decodable_frames(
    tmp_path: Path, capsys, clip, init_mask
):
    cut = _truncated(tmp_path, ".avi")
    out = tmp_path / "out"
    status, _, err = run_cli(
        capsys, "propagate", cut, "--init", init_mask, "--out", out, "--model", "lab",
        "--skip-damaged",
    )  # fmt: skip
    assert status == 0, err
    with VideoSource.open(cut) as video:
        damaged = video.damaged
    missing = [d.index for d in damaged if d.problem.startswith("missing")]
    good = [t for t in range(LONG) if t not in {d.index for d in damaged}]
    assert missing and missing[-1] == LONG - 1 and good == list(range(len(good)))
    assert sorted(p.name for p in out.glob("*.png")) == [f"{t:05d}.png" for t in good]
    lines = err.splitlines()
    assert any(f"frames {missing[0]}-{LONG - 1}: missing" in line for line in lines), err
    assert len(lines) <= 2  # one line per run of frames, not one per missing frame


def test_damaged_initial_frame_is_an_error_even_when_skipping(
    tmp_path: Path, capsys, corrupt_jpegs, init_mask
):
    folder, bad = corrupt_jpegs
    status, _, err = run_cli(
        capsys, "propagate", folder, "--init", init_mask, "--init-frame", BAD,
        "--out", tmp_path / "out", "--model", "lab", "--skip-damaged",
    )  # fmt: skip
    line = one_error_line(status, err, bad, f"frame {BAD}: ")
    assert "initial mask must decode" in line


def test_propagator_skips_damaged_frames_only_when_asked(corrupt_jpegs, clip):
    from tracker_core.encoder import LabEncoder

    folder, _ = corrupt_jpegs
    refs = {0: FrameLabels(mask=clip[1][0])}
    with VideoSource.open(folder) as video:
        results = propagate(video.frame, 0, N, refs, {}, LabEncoder(), PropagationConfig())
        with pytest.raises(FrameDamaged, match=f"frame {BAD}: corrupt image data"):
            indices = [r.index for r in results]
        skipping = PropagationConfig(skip_damaged=True)
        indices = [r.index for r in propagate(video.frame, 0, N, refs, {}, LabEncoder(), skipping)]
    assert indices == [t for t in range(1, N) if t != BAD]


def test_session_propagation_leaves_damaged_frames_empty(corrupt_jpegs, clip):
    from tracker_core.encoder import LabEncoder

    folder, _ = corrupt_jpegs
    with VideoSource.open(folder) as video:
        project = Project.new(folder, len(video), video.height, video.width)
        session = Session(project, video, encoder=LabEncoder())
        oid = session.add_object("square").id
        session.set_mask(0, np.where(clip[1][0] > 0, oid, 0).astype(np.uint8))
        session.propagation_job(0, "forward").run()
        states = project.states()
        assert states[BAD] == FrameState.EMPTY
        others = [t for t in range(1, N) if t != BAD]
        assert (states[others] == FrameState.PROPAGATED).all()  # not stale: the run went on
        assert [d.index for d in video.damaged] == [BAD]
        project.close()


# --------------------------------------------------------------------------- eval


def _davis_root(root: Path, clip, n: int = 6) -> Path:
    frames, masks = clip
    write_frame_folder(root / "JPEGImages" / "480p" / "clip", frames[:n], ".jpg")
    ann = root / "Annotations" / "480p" / "clip"
    ann.mkdir(parents=True)
    for t in range(n):
        cv2.imwrite(str(ann / f"{t:05d}.png"), masks[t])
    return root


def test_eval_on_a_missing_root(tmp_path: Path, capsys):
    root = tmp_path / "no DAVIS here"
    status, _, err = run_cli(capsys, "eval", root, "--model", "lab")
    one_error_line(status, err, root, "no such DAVIS root")


def test_eval_on_a_root_without_frames(tmp_path: Path, capsys, clip):
    root = _davis_root(tmp_path / "davis", clip)
    frames = root / "JPEGImages" / "480p"
    frames.rename(root / "JPEGImages" / "1080p")
    status, _, err = run_cli(capsys, "eval", root, "--model", "lab")
    one_error_line(status, err, frames, "not a DAVIS root")


def test_eval_with_fewer_annotations_than_frames(tmp_path: Path, capsys, clip):
    root = _davis_root(tmp_path / "davis", clip)
    ann = root / "Annotations" / "480p" / "clip"
    for name in ("00004.png", "00005.png"):
        (ann / name).unlink()
    status, _, err = run_cli(capsys, "eval", root, "--model", "lab")
    one_error_line(status, err, ann, "4 annotations for the 6 frames")


def test_eval_of_a_sequence_without_annotations(tmp_path: Path, capsys, clip):
    root = _davis_root(tmp_path / "davis", clip)
    status, _, err = run_cli(capsys, "eval", root, "--sequences", "other", "--model", "lab")
    one_error_line(status, err, root / "Annotations" / "480p" / "other", "no such annotation")


def test_eval_runs_on_a_complete_root(tmp_path: Path, capsys, clip):
    root = _davis_root(tmp_path / "davis", clip)
    status, out, err = run_cli(capsys, "eval", root, "--model", "lab")
    assert status == 0, err
    assert "J&F" in out


@pytest.mark.parametrize("case", ["missing file", "empty folder", "not json", "wrong shape"])
def test_eval_keypoints_bad_files(tmp_path: Path, capsys, clip, case: str):
    root = _davis_root(tmp_path / "davis", clip)
    target = tmp_path / "clip.json"
    if case == "empty folder":
        target = tmp_path / "badja"
        target.mkdir()
    elif case == "not json":
        target.write_text("{ not json")
    elif case == "wrong shape":
        target.write_text('[{"image_path": "00000.jpg"}]')
    status, _, err = run_cli(
        capsys, "eval-keypoints", target, "--davis-root", root, "--model", "lab"
    )
    one_error_line(status, err, target, "")


def test_eval_keypoints_missing_frames(tmp_path: Path, capsys, clip):
    root = _davis_root(tmp_path / "davis", clip)
    target = tmp_path / "other.json"
    target.write_text("[]")
    status, _, err = run_cli(
        capsys, "eval-keypoints", target, "--davis-root", root, "--model", "lab"
    )
    one_error_line(status, err, root / "JPEGImages" / "480p" / "other", "no such video")
