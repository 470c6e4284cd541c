"""Bad-input catalogue: every odd file a user can feed Trackpaint, one test each.

Each case must raise a :class:`~tracker_core.errors.TrackpaintError` subclass whose message is a
single line naming the file, and must not cost the user any work: their input files are left
byte-for-byte untouched, a previous project file or export stays intact, and the open document
still holds every edit so it can be saved elsewhere.

Read-only folders and full disks are simulated by monkeypatching the ``os`` calls the writers
use (tests run as root, where ``chmod`` does not block writes); one test also provokes a real
write failure in a child process with ``RLIMIT_FSIZE``, which reaches SQLite's own C writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.fixtures_video import make_moving_square_frames, write_frame_folder, write_video
from tests.robustness.conftest import (
    H,
    N,
    W,
    annotate,
    assert_holds,
    assert_one_line_naming,
    exported_frames,
    make_disk_full,
    make_read_only,
)
from tracker_core.errors import ExportError, FrameDamaged, MaskError, ProjectError, VideoError
from tracker_core.export import export_coco, export_davis, import_coco, import_davis
from tracker_core.masks import load_mask
from tracker_core.project import SCHEMA_VERSION, FrameState, Project, autosave_path_for
from tracker_core.session import Session
from tracker_core.video import VideoSource

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes), hidden ones included."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _all_files(folder: Path) -> list[str]:
    """Names of every entry under ``folder`` (to spot leftover temp/staging files)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --------------------------------------------------------------------------- videos


def _video_variants(folder: Path) -> dict[str, Path]:
    """Unopenable video files: the case name -> the file."""
    frames, _ = make_moving_square_frames(N, H, W)
    avi = write_video(folder / "good.avi", frames).read_bytes()
    mp4 = write_video(folder / "good.mp4", frames, "mp4v").read_bytes()
    cases = {
        "empty.mp4": b"",
        "random bytes.mp4": np.random.default_rng(1).bytes(40_000),
        "header only.avi": avi[:300],
        # a valid AVI container whose stream codec (fourcc) no decoder knows
        "unknown fourcc.avi": avi.replace(b"MJPG", b"ZQX9"),
        # an mp4 cut before its index ('moov' atom at the end for OpenCV's writer)
        "cut.mp4": mp4[: len(mp4) * 2 // 3],
    }
    out = {}
    for name, data in cases.items():
        path = folder / name
        path.write_bytes(data)
        out[name] = path
    return out


@pytest.mark.parametrize(
    "name", ["empty.mp4", "random bytes.mp4", "header only.avi", "unknown fourcc.avi", "cut.mp4"]
)
def test_unopenable_video_is_refused_and_left_untouched(tmp_path: Path, name: str) -> None:
    path = _video_variants(tmp_path)[name]
    before = path.read_bytes()
    with pytest.raises(VideoError) as info:
        VideoSource.open(path)
    assert_one_line_naming(info.value, path)
    assert path.read_bytes() == before


def test_zero_frame_video(tmp_path: Path) -> None:
    path = tmp_path / "zero frames.avi"
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"MJPG"), 25, (W, H))
    writer.release()
    assert path.stat().st_size > 0  # a real container with no frames
    with pytest.raises(VideoError, match="no decodable frames") as info:
        VideoSource.open(path)
    assert_one_line_naming(info.value, path)


def test_truncated_video_opens_and_names_its_cut_and_missing_frames(tmp_path: Path) -> None:
    frames, _ = make_moving_square_frames(N, H, W)
    data = write_video(tmp_path / "full.avi", frames).read_bytes()
    path = tmp_path / "truncated.avi"
    path.write_bytes(data[: len(data) // 2])
    with VideoSource.open(path) as video:
        assert len(video) == N  # the listed count; the frames past the cut are damaged
        damaged = {d.index: d for d in video.damaged}
        first_bad = min(damaged)
        assert 1 <= first_bad < N and set(damaged) == set(range(first_bad, N))
        assert [f.shape for f in map(video.frame, range(first_bad))] == [(H, W, 3)] * first_bad
        with pytest.raises(FrameDamaged) as info:
            video.frame(N - 1)
        message = assert_one_line_naming(info.value, path)
        assert f"frame {N - 1}: missing" in message


def test_frame_folder_with_mixed_sizes_names_the_odd_file(tmp_path: Path) -> None:
    frames, _ = make_moving_square_frames(6, H, W)
    folder = tmp_path / "mixed sizes"
    write_frame_folder(folder, frames)
    odd = folder / "00006.png"
    cv2.imwrite(str(odd), np.zeros((H // 2, W // 2, 3), np.uint8))
    with VideoSource.open(folder) as video:
        assert len(video) == 7
        video.frame(5)
        with pytest.raises(VideoError, match="expected 64x96") as info:
            video.frame(6)
    assert_one_line_naming(info.value, odd)


def test_frame_folder_ignores_other_files_and_names_a_non_image(tmp_path: Path) -> None:
    frames, _ = make_moving_square_frames(5, H, W)
    folder = tmp_path / "frames"
    write_frame_folder(folder, frames)
    (folder / "notes.txt").write_text("shot on a phone")
    (folder / "Thumbs.db").write_bytes(b"\x00" * 64)
    fake = folder / "00005.png"
    fake.write_text("I am not a PNG")
    with VideoSource.open(folder) as video:
        assert len(video) == 6
        with pytest.raises(VideoError, match="frame 5: cannot decode") as info:
            video.frame(5)
    assert_one_line_naming(info.value, fake)


# --------------------------------------------------------------------------- masks


def _write_mask_variants(folder: Path) -> dict[str, tuple[Path, str]]:
    """Bad mask files: case -> (file, message fragment)."""
    cases: dict[str, tuple[Path, str]] = {}
    small = folder / "small.png"
    cv2.imwrite(str(small), np.ones((H // 2, W // 2), np.uint8))
    cases["wrong size"] = (small, "size mismatch: got 32x48, expected 64x96")
    many = folder / "uint16 ids.png"
    ids16 = np.zeros((H, W), np.uint16)
    ids16[:, W // 2 :] = 300  # more than 255 objects' worth of ids
    cv2.imwrite(str(many), ids16)
    cases["ids > 255"] = (many, "0..255")
    floats = folder / "float.tiff"
    Image.fromarray(np.full((H, W), 0.5, np.float32), mode="F").save(floats)
    cases["float dtype"] = (floats, "non-integer")
    rgb = folder / "rgb.png"
    colours = np.zeros((H, W, 3), np.uint8)
    colours[5, 7] = (12, 200, 3)
    Image.fromarray(colours).save(rgb)
    cases["off-palette colour"] = (rgb, r"\(12, 200, 3\) at row 5, column 7")
    jpeg = folder / "mask.jpg"
    cv2.imwrite(str(jpeg), np.zeros((H, W), np.uint8))
    cases["jpeg"] = (jpeg, "lossy")
    text = folder / "mask.png"
    text.write_text("not an image")
    cases["not an image"] = (text, "corrupt")
    return cases


@pytest.mark.parametrize(
    "case", ["wrong size", "ids > 255", "float dtype", "off-palette colour", "jpeg", "not an image"]
)
def test_bad_mask_file(tmp_path: Path, case: str) -> None:
    path, fragment = _write_mask_variants(tmp_path)[case]
    with pytest.raises(MaskError, match=fragment) as info:
        load_mask(path, (H, W))
    assert_one_line_naming(info.value, path)


def test_uint16_mask_within_id_range_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "uint16 ok.png"
    ids = np.zeros((H, W), np.uint16)
    ids[4:9, 4:9] = 255
    ids[20:30, 20:30] = 7
    cv2.imwrite(str(path), ids)
    mask = load_mask(path, (H, W))
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, ids.astype(np.uint8))


def test_uint16_mask_with_only_id_255_keeps_the_id(tmp_path: Path) -> None:
    path = tmp_path / "uint16 id 255.png"
    ids = np.zeros((H, W), np.uint16)
    ids[4:9, 4:9] = 255
    cv2.imwrite(str(path), ids)
    assert load_mask(path, (H, W)).max() == 255


@pytest.mark.parametrize(
    ("mask", "fragment"),
    [
        (np.zeros((H + 1, W), np.uint8), "size mismatch"),
        (np.full((H, W), 300, np.uint16), "0..255"),
        (np.full((H, W), 0.25, np.float64), "non-integer"),
        (np.full((H, W), 7, np.uint8), r"\[7\]"),  # not one of the project's objects
        (np.zeros((H, W, 3), np.uint8), "2-D"),
    ],
)
def test_session_refuses_a_bad_mask_and_loses_nothing(
    session: Session, mask: np.ndarray, fragment: str
) -> None:
    project = session.project
    before = [project.stored(t) for t in range(N)]
    undo = session.undo_label
    with pytest.raises(MaskError, match=fragment) as info:
        session.set_mask(1, mask)
    assert "\n" not in str(info.value)
    assert [project.stored(t) for t in range(N)] == before
    assert session.undo_label == undo


def test_empty_initial_mask_is_refused_for_propagation(tmp_path: Path, clip: Path) -> None:
    path = tmp_path / "empty mask.png"
    cv2.imwrite(str(path), np.zeros((H, W), np.uint8))
    mask = load_mask(path, (H, W))  # a valid file: all background
    assert not mask.any()
    with VideoSource.open(clip) as video:
        project = Project.new(clip, len(video), H, W)
        try:
            session = Session(project, video)
            session.add_object("thing")
            assert session.set_mask(0, mask) is False  # nothing painted, nothing recorded
            assert project.state(0) == FrameState.EMPTY
            with pytest.raises(ValueError, match="frame 0 has no labels"):
                session.propagation_job(0)
        finally:
            project.close()


# --------------------------------------------------------------------------- project files


def _project_variants(folder: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """Broken copies of a good project file: case -> (file, message fragment)."""
    import sqlite3

    data = good.read_bytes()
    cases: dict[str, tuple[Path, str]] = {}

    def put(name: str, content: bytes) -> Path:
        path = folder / name
        path.write_bytes(content)
        return path

    cases["truncated half"] = (put("half.trackpaint", data[: len(data) // 2]), "truncated")
    cases["truncated header"] = (put("head.trackpaint", data[:60]), "not an SQLite")
    cases["truncated odd"] = (put("odd.trackpaint", data[:-1]), "truncated")
    cases["zeroed tail"] = (
        put("zeroed.trackpaint", data[: len(data) // 2] + bytes(len(data) - len(data) // 2)),
        "corrupt|readable|malformed",
    )

    def edited(name: str, sql: str) -> Path:
        path = put(name, data)
        with sqlite3.connect(path) as db:
            db.execute(sql)
        db.close()
        return path

    future = f"UPDATE meta SET value='{SCHEMA_VERSION + 1}' WHERE key='schema_version'"
    cases["future version"] = (edited("future.trackpaint", future), "newer Trackpaint")
    cases["objects json"] = (
        edited("objects.trackpaint", "UPDATE meta SET value='[{' WHERE key='objects'"),
        "inconsistent",
    )
    cases["negative size"] = (
        edited("size.trackpaint", "UPDATE meta SET value='-5' WHERE key='height'"),
        "inconsistent video size",
    )
    cases["row ids"] = (
        edited("ids.trackpaint", "UPDATE frames SET ids='not json' WHERE idx=0"),
        "malformed",
    )
    return cases


@pytest.mark.parametrize(
    "case",
    [
        "truncated half",
        "truncated header",
        "truncated odd",
        "zeroed tail",
        "future version",
        "objects json",
        "negative size",
        "row ids",
    ],
)
def test_broken_project_file_is_refused_and_untouched(
    tmp_path: Path, session: Session, case: str
) -> None:
    good = session.project.path
    assert good is not None
    path, fragment = _project_variants(tmp_path, good)[case]
    before = path.read_bytes()
    with pytest.raises(ProjectError, match=fragment) as info:
        Project.open(path)
    assert_one_line_naming(info.value, path)
    assert path.read_bytes() == before


def test_truncated_project_is_recovered_from_its_autosave(session: Session) -> None:
    project = session.project
    path = project.path
    assert path is not None
    masks = [project.labels(t).mask.copy() for t in range(3)]
    session.autosave()
    path.write_bytes(path.read_bytes()[:1000])  # the disk lost the tail of the main file
    with pytest.raises(ProjectError, match="truncated"):
        Project.open(path)
    with Project.open(path, from_autosave=True) as back:
        assert back.modified and back.path == path
        assert_holds(back, masks)
        back.save()  # repairs the main file; the autosave is then obsolete
    assert not autosave_path_for(path).exists()
    with Project.open(path) as again:
        assert_holds(again, masks)


# --------------------------------------------------------------------------- unwritable targets


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


def test_read_only_project_folder(
    tmp_path: Path, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = session.project
    path = project.path
    assert path is not None
    saved = path.read_bytes()
    session.paint_stroke(5, 1, [(10, 10), (40, 30)], 4)
    wanted = [project.labels(t).mask.copy() for t in range(6)]
    make_read_only(monkeypatch, path.parent)
    with pytest.raises(ProjectError, match="Permission denied") as info:
        session.save()
    assert_one_line_naming(info.value, path)
    session.autosave()  # autosaves go to the per-user recovery folder, not beside the project
    assert project.recovery_path() == project.autosave_path()
    assert not autosave_path_for(path).exists()
    make_read_only(monkeypatch, project.recovery.folder)
    with pytest.raises(ProjectError, match="Permission denied") as info:
        session.autosave()
    assert_one_line_naming(info.value, project.autosave_path())
    monkeypatch.undo()
    assert path.read_bytes() == saved  # the previous save is intact
    assert project.modified  # and the edits are still in the open document
    elsewhere = tmp_path / "elsewhere" / "rescued.trackpaint"
    elsewhere.parent.mkdir()
    session.save(elsewhere)
    with Project.open(elsewhere) as back:
        for t, mask in enumerate(wanted):
            np.testing.assert_array_equal(back.labels(t).mask, mask)


def test_read_only_export_folder(
    tmp_path: Path, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = session.project
    out = tmp_path / "exports"
    frames = exported_frames(project)
    davis = export_davis(out, frames, N, (H, W), "clip")
    coco = export_coco(out / "clip.json", project.objects, frames, (H, W), "{:05d}.jpg".format, N)
    before = _snapshot(out)
    session.paint_stroke(7, 1, [(50, 30)], 6)
    frames = exported_frames(project)
    make_read_only(monkeypatch, out)
    with pytest.raises(ExportError, match="Permission denied") as info:
        export_davis(out, frames, N, (H, W), "clip")
    assert_one_line_naming(info.value, out / "Annotations")
    with pytest.raises(ExportError, match="Permission denied") as info:
        export_coco(coco, project.objects, frames, (H, W), "{:05d}.jpg".format, N)
    assert_one_line_naming(info.value, coco)
    monkeypatch.undo()
    assert _snapshot(out) == before  # previous exports intact, nothing half-written beside them
    assert import_davis(davis)[1].keys() == set(range(N))


@needs_proc
def test_disk_full_during_export(
    tmp_path: Path, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = session.project
    out = tmp_path / "exports"
    frames = exported_frames(project)
    davis = export_davis(out, frames, N, (H, W), "clip")
    coco = export_coco(out / "clip.json", project.objects, frames, (H, W), "{:05d}.jpg".format, N)
    before = _snapshot(out)
    session.paint_stroke(7, 1, [(50, 30)], 6)
    frames = exported_frames(project)
    hits = make_disk_full(monkeypatch, out)
    with pytest.raises(ExportError, match="No space left on device") as info:
        export_davis(out, frames, N, (H, W), "clip")
    assert_one_line_naming(info.value, davis)
    with pytest.raises(ExportError, match="No space left on device") as info:
        export_coco(coco, project.objects, frames, (H, W), "{:05d}.jpg".format, N)
    assert_one_line_naming(info.value, coco)
    assert len(hits) == 2
    monkeypatch.undo()
    assert _snapshot(out) == before
    assert _all_files(out) == sorted(
        ["Annotations", "Annotations/clip", "Annotations/clip/.trackpaint-output.json"]
        + ["clip.json"]
        + [f"Annotations/clip/{t:05d}.png" for t in range(N)]
    )


@needs_proc
def test_disk_full_during_save_keeps_the_old_file(
    tmp_path: Path, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = session.project
    path = project.path
    assert path is not None
    saved = path.read_bytes()
    session.paint_stroke(9, 1, [(5, 5), (60, 40)], 3)
    wanted = project.labels(9).mask.copy()
    hits = make_disk_full(monkeypatch, path.parent)
    with pytest.raises(ProjectError, match="No space left on device") as info:
        session.save()
    assert_one_line_naming(info.value, path)
    assert hits
    monkeypatch.undo()
    assert path.read_bytes() == saved
    assert sorted(p.name for p in path.parent.glob(".*")) == []  # no temp file left behind
    session.save()  # space freed: the same document saves with every edit
    with Project.open(path) as back:
        np.testing.assert_array_equal(back.labels(9).mask, wanted)


_FSIZE_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    import numpy as np
    from tracker_core.errors import TrackpaintError
    from tracker_core.export import export_coco, export_davis
    from tracker_core.labels import FrameLabels, ObjectSpec
    from tracker_core.project import FrameState, Project

    out = Path(sys.argv[1])
    rng = np.random.default_rng(0)
    project = Project.new(out / "clip.avi", 30, 120, 160, [ObjectSpec(1, "noise", (255, 0, 0))])
    frames = []
    for t in range(30):  # incompressible masks: the files are far larger than the limit
        mask = (rng.random((120, 160)) < 0.5).astype(np.uint8)
        project.set_frame(t, FrameLabels(mask), FrameState.PAINTED)
        noise = rng.integers(0, 256, (120, 160), dtype=np.uint8)  # one PNG > 8 KiB
        frames.append((t, FrameLabels(noise)))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
    results = {}
    for name, act in {
        "save": lambda: project.save(out / "big.trackpaint"),
        "davis": lambda: export_davis(out, frames, 30, (120, 160), "clip"),
        "coco": lambda: export_coco(
            out / "big.json",
            project.objects,
            [(t, project.labels(t)) for t in range(30)],
            (120, 160),
            "{}.jpg".format,
            30,
        ),
    }.items():
        try:
            act()
            results[name] = "ok"
        except TrackpaintError as exc:
            results[name] = type(exc).__name__ + ": " + str(exc)
        except BaseException as exc:
            results[name] = "UNEXPECTED " + type(exc).__name__ + ": " + str(exc)
    print(json.dumps(results))
    """
)


def test_real_write_failures_in_sqlite_and_png_writers(tmp_path: Path) -> None:
    """A child whose file-size limit makes every big write fail inside SQLite, PIL and json."""
    out = tmp_path / "tiny quota"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", _FSIZE_CHILD, str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["save"].startswith("ProjectError: "), results
    assert str(out / "big.trackpaint") in results["save"]
    assert results["davis"].startswith("ExportError: "), results
    assert results["coco"].startswith("ExportError: "), results
    assert str(out / "big.json") in results["coco"]
    # no partial project, no staging folder, no temp JSON, not even the Annotations/ parent
    # the failed DAVIS export created
    assert _all_files(out) == []


# --------------------------------------------------------------------------- odd paths


@pytest.mark.parametrize("as_folder", [False, True], ids=["video file", "frame folder"])
def test_non_ascii_and_space_paths_end_to_end(tmp_path: Path, as_folder: bool) -> None:
    frames, _ = make_moving_square_frames(N, H, W)
    media = tmp_path / "vidéos d'été" / "動画 クリップ"
    media.mkdir(parents=True)
    if as_folder:
        source = media / "frames ñ"
        write_frame_folder(source, frames)
    else:
        source = write_video(media / "my clip é.avi", frames)
    project_file = tmp_path / "проекты 2026" / "projet n°1.trackpaint"
    project_file.parent.mkdir()
    out = tmp_path / "sortie ü" / "données"

    with VideoSource.open(source) as video:
        project = Project.new(source, len(video), video.height, video.width)
        session = Session(project, video)
        masks = annotate(session)
        session.autosave()
        session.save(project_file)
        project.close()

    with Project.open(project_file) as back:
        assert back.video_path == source.absolute()
        assert_holds(back, masks)
        with VideoSource.open(back.video_path) as video:
            assert len(video) == back.num_frames == N
        frames_out = exported_frames(back)
        davis = export_davis(out, frames_out, N, (H, W), "clip été")
        coco = export_coco(
            out / "anno tations é.json", back.objects, frames_out, (H, W), "{:05d}.jpg".format, N
        )
    _, davis_back = import_davis(davis, (H, W))
    objects, coco_back, hw = import_coco(coco)
    assert hw == (H, W) and [o.name for o in objects] == ["square"]
    for t, mask in enumerate(masks):
        np.testing.assert_array_equal(davis_back[t].mask, mask)
        np.testing.assert_array_equal(coco_back[t].mask, mask)
