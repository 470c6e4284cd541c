"""The bad-input catalogue through the command line: ``tracker_core.cli.main`` in-process.

Each bad input must give a non-zero exit status and exactly one stderr line
``trackpaint: error: <file>: <problem>`` naming the offending file, with no traceback, and must
leave the user's files (inputs, a previous export) untouched.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.fixtures_video import make_moving_square_frames, write_frame_folder, write_video
from tests.robustness.conftest import H, N, W, make_disk_full, make_read_only
from tracker_core.cli import main
from tracker_core.masks import read_indexed_png
from tracker_core.project import SCHEMA_VERSION, Project
from tracker_core.session import Session


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run ``trackpaint -q ARGV...`` in-process; return (status, stdout, stderr)."""
    capsys.readouterr()
    status = main(["-q", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return status, out, err


def assert_cli_error(status: int, err: str, path: Path, fragment: str = "") -> None:
    """Non-zero status and one stderr line ``trackpaint: error: ...`` naming ``path``."""
    assert status != 0
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("trackpaint: error: "), err
    assert str(path) in lines[0], err
    assert fragment in lines[0], err


@pytest.fixture
def good_mask(tmp_path: Path) -> Path:
    """A valid first-frame mask file (grey PNG, id 1 on the square)."""
    _, masks = make_moving_square_frames(N, H, W)
    path = tmp_path / "init mask.png"
    cv2.imwrite(str(path), masks[0])
    return path


def _bad_video(tmp_path: Path, case: str) -> Path:
    frames, _ = make_moving_square_frames(N, H, W)
    if case == "mixed sizes":
        folder = tmp_path / "mixed"
        write_frame_folder(folder, frames[:8])
        cv2.imwrite(str(folder / "00008.png"), np.zeros((H // 2, W, 3), np.uint8))
        return folder / "00008.png"  # the file the message must name
    if case == "zero frames":
        path = tmp_path / "zero.avi"
        writer = cv2.VideoWriter(
            str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H)
        )
        writer.release()
        return path
    avi = write_video(tmp_path / "ok.avi", frames).read_bytes()
    data = {
        "empty": b"",
        "random bytes": np.random.default_rng(2).bytes(30_000),
        "unknown fourcc": avi.replace(b"MJPG", b"ZQX9"),
    }[case]
    path = tmp_path / f"{case}.mp4"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "case", ["empty", "random bytes", "unknown fourcc", "zero frames", "mixed sizes"]
)
def test_propagate_bad_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good_mask: Path, case: str
) -> None:
    named = _bad_video(tmp_path, case)
    source = named.parent if case == "mixed sizes" else named
    out = tmp_path / "out"
    status, _, err = run_cli(
        capsys, "propagate", source, "--init", good_mask, "--out", out, "--model", "lab"
    )
    assert_cli_error(status, err, named)


def _bad_mask(tmp_path: Path, case: str) -> tuple[Path, str]:
    path = tmp_path / f"{case}.png"
    if case == "wrong size":
        cv2.imwrite(str(path), np.ones((H + 2, W), np.uint8))
        return path, "size mismatch"
    if case == "ids > 255":
        cv2.imwrite(str(path), np.full((H, W), 1000, np.uint16))
        return path, "0..255"
    if case == "empty":
        cv2.imwrite(str(path), np.zeros((H, W), np.uint8))
        return path, "empty"
    if case == "corrupt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
        return path, "corrupt"
    return tmp_path / "missing.png", "does not exist"


@pytest.mark.parametrize("case", ["wrong size", "ids > 255", "empty", "corrupt", "missing"])
def test_propagate_bad_initial_mask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    frames, _ = make_moving_square_frames(N, H, W)
    video = write_video(tmp_path / "clip.avi", frames)
    mask, fragment = _bad_mask(tmp_path, case)
    out = tmp_path / "out"
    status, _, err = run_cli(
        capsys, "propagate", video, "--init", mask, "--out", out, "--model", "lab"
    )
    assert_cli_error(status, err, mask, fragment)
    assert not out.exists()  # nothing written before the inputs were checked


def test_propagate_read_only_output(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    good_mask: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames, _ = make_moving_square_frames(N, H, W)
    video = write_video(tmp_path / "clip.avi", frames)
    out = tmp_path / "locked"
    out.mkdir()
    make_read_only(monkeypatch, out)
    status, _, err = run_cli(
        capsys, "propagate", video, "--init", good_mask, "--out", out, "--model", "lab"
    )
    assert_cli_error(status, err, out, "not writable")


def test_propagate_non_ascii_paths_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames, masks = make_moving_square_frames(N, H, W)
    video = write_video(tmp_path / "vidéo 動画.avi", frames)
    mask = tmp_path / "masque initial ü.png"
    cv2.imwrite(str(mask), masks[0])
    out = tmp_path / "sortie é" / "masques"
    status, _, err = run_cli(
        capsys, "propagate", video, "--init", mask, "--out", out, "--model", "lab"
    )
    assert status == 0, err
    written = sorted(out.glob("*.png"))
    assert [p.name for p in written] == [f"{t:05d}.png" for t in range(N)]
    np.testing.assert_array_equal(read_indexed_png(written[0]), masks[0])
    assert all(read_indexed_png(p).shape == (H, W) for p in written)


# --------------------------------------------------------------------------- export


@pytest.fixture
def project_file(tmp_path: Path) -> Path:
    """A saved project with one object painted on frames 0 and 5 (video path with spaces)."""
    frames, masks = make_moving_square_frames(N, H, W)
    video = write_video(tmp_path / "my clip é.avi", frames)
    project = Project.new(video, N, H, W)
    session = Session(project)
    session.add_object("square")
    session.set_mask(0, masks[0])
    session.set_mask(5, masks[5])
    path = project.save(tmp_path / "projet été.trackpaint")
    project.close()
    return path


def _broken_project(tmp_path: Path, good: Path, case: str) -> tuple[Path, str]:
    import sqlite3

    data = good.read_bytes()
    path = tmp_path / f"{case}.trackpaint"
    if case == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return path, "truncated"
    if case == "not a project":
        path.write_text("{}")
        return path, "not a Trackpaint project"
    path.write_bytes(data)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 5),))
    db.close()
    return path, "newer Trackpaint"


@pytest.mark.parametrize("case", ["truncated", "not a project", "future version"])
@pytest.mark.parametrize("fmt", ["davis", "coco"])
def test_export_broken_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project_file: Path, case: str, fmt: str
) -> None:
    path, fragment = _broken_project(tmp_path, project_file, case)
    before = path.read_bytes()
    out = tmp_path / ("out" if fmt == "davis" else "out.json")
    status, _, err = run_cli(capsys, "export", path, "--format", fmt, "--out", out)
    assert_cli_error(status, err, path, fragment)
    assert path.read_bytes() == before
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["davis", "coco"])
@pytest.mark.parametrize("failure", ["read-only", "disk full"])
def test_export_unwritable_target_keeps_previous_export(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    project_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    failure: str,
) -> None:
    out_dir = tmp_path / "exports ü"
    out = out_dir if fmt == "davis" else out_dir / "anno.json"
    status, _, err = run_cli(capsys, "export", project_file, "--format", fmt, "--out", out)
    assert status == 0, err
    before = {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()}
    assert before
    if failure == "read-only":
        make_read_only(monkeypatch, out_dir)
        fragment = "Permission denied"
    else:
        make_disk_full(monkeypatch, out_dir)
        fragment = "No space left on device"
    status, _, err = run_cli(capsys, "export", project_file, "--format", fmt, "--out", out)
    monkeypatch.undo()
    assert_cli_error(status, err, out, fragment)
    after = {p: p.read_bytes() for p in out_dir.rglob("*") if p.is_file()}
    assert after == before


def test_export_non_ascii_paths_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], project_file: Path
) -> None:
    _, masks = make_moving_square_frames(N, H, W)
    out = tmp_path / "données exportées"
    status, _, err = run_cli(capsys, "export", project_file, "--format", "davis", "--out", out)
    assert status == 0, err
    folder = out / "Annotations" / "my clip é"
    assert len(list(folder.glob("*.png"))) == N
    np.testing.assert_array_equal(read_indexed_png(folder / "00005.png"), masks[5])
    coco = out / "coco ü.json"
    status, _, err = run_cli(capsys, "export", project_file, "--format", "coco", "--out", coco)
    assert status == 0, err
    from tracker_core.export import import_coco

    _, frames, _ = import_coco(coco)
    np.testing.assert_array_equal(frames[0].mask, masks[0])


def test_propagate_disk_full_names_the_output(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    good_mask: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames, _ = make_moving_square_frames(N, H, W)
    video = write_video(tmp_path / "clip.avi", frames)
    out = tmp_path / "full disk"
    out.mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    make_disk_full(monkeypatch, tmp_path)  # the whole disk: the masks are staged beside out
    status, _, err = run_cli(
        capsys, "propagate", video, "--init", good_mask, "--out", out, "--model", "lab"
    )
    monkeypatch.undo()
    assert_cli_error(status, err, out / "00000.png", "No space left on device")
    assert [p.name for p in out.iterdir()] == []  # no temp file left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nor a staging folder


def test_propagate_init_frame_out_of_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good_mask: Path
) -> None:
    frames, _ = make_moving_square_frames(N, H, W)
    video = write_video(tmp_path / "clip.avi", frames)
    status, _, err = run_cli(
        capsys,
        "propagate",
        video,
        "--init",
        good_mask,
        "--init-frame",
        N,
        "--out",
        tmp_path / "out",
        "--model",
        "lab",
    )
    assert_cli_error(status, err, video, f"outside 0..{N - 1}")
