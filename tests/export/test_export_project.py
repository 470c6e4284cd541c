"""The one export entry point: ``export_project`` + the format registry (frame selection, naming,
the output rule), and one shared test every registered format must pass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tracker_core.errors import ExportError
from tracker_core.export import (
    FORMATS,
    ExportResult,
    describe_exports,
    export_project,
    export_target,
    import_coco,
    import_davis,
)
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.project import FrameState, Project

N, HW = 6, (24, 32)


@pytest.fixture
def project(tmp_path: Path, masks: dict[int, np.ndarray]):
    """A saved 6-frame project on the frame folder ``bear``: frame 0 painted, 2 propagated,
    3 stale (all-zero mask), 5 painted; 1 and 4 empty."""
    video = tmp_path / "bear"
    video.mkdir()
    for t in range(N):
        (video / f"{t:05d}.jpg").write_bytes(b"frame")
    objects = [ObjectSpec(1, "cat", (200, 10, 10)), ObjectSpec(2, "dog", (10, 200, 10))]
    objects.append(ObjectSpec(7, "ball", (10, 10, 200)))
    p = Project.new(video, N, *HW, objects)
    p.set_frame(0, FrameLabels(masks[0]), FrameState.PAINTED)
    p.set_frame(2, FrameLabels(masks[2]), FrameState.PROPAGATED, confidence=0.7, source=0)
    p.set_frame(3, FrameLabels(masks[3]), FrameState.STALE, confidence=0.2, source=0)
    p.set_frame(5, FrameLabels(masks[5]), FrameState.PAINTED)
    p.save(tmp_path / "bear.trackpaint")
    yield p
    p.close()


def test_davis_writes_every_frame_with_empty_ones_all_zero(tmp_path, project, masks):
    result = export_project(project, "davis", tmp_path / "out")

    assert result == ExportResult("davis", tmp_path / "out" / "Annotations" / "bear", N, 4)
    _, frames = import_davis(result.path, HW)
    assert sorted(frames) == list(range(N))
    for t in range(N):
        np.testing.assert_array_equal(frames[t].mask, masks.get(t, np.zeros(HW, np.uint8)))


@pytest.mark.parametrize("out_name", ["folder", "given.json", "GIVEN.JSON"])
def test_coco_gives_every_frame_an_image_and_names_the_file(tmp_path, project, masks, out_name):
    out = tmp_path / out_name
    result = export_project(project, "coco", out, polygons=True)

    expected = out / "bear.json" if out_name == "folder" else out
    assert result == ExportResult("coco", expected, N, 4)
    assert export_target(project, "coco", out) == expected
    document = json.loads(expected.read_text())
    assert [i["file_name"] for i in document["images"]] == [f"bear/{t:05d}.jpg" for t in range(N)]
    assert all(isinstance(a["segmentation"], list) for a in document["annotations"])
    _, frames, _ = import_coco(expected)
    assert sorted(frames) == [0, 2, 5]  # frame 3's labels are empty: an image, no annotation
    np.testing.assert_array_equal(frames[2].mask, masks[2])


def test_progress_and_the_users_message(tmp_path, project):
    calls: list[tuple[int, int]] = []
    davis = export_project(project, "davis", tmp_path, progress=lambda d, t: calls.append((d, t)))
    coco = export_project(project, "coco", tmp_path)
    assert calls[-1] == (N, N) and len(calls) == N
    assert describe_exports([davis, coco]) == (
        f"Exported {N} frames to {tmp_path / 'Annotations' / 'bear'} and {tmp_path / 'bear.json'}"
    )


def test_unknown_format_and_inputs_are_refused(tmp_path, project):
    with pytest.raises(ExportError, match="unknown export format 'png' \\(known: davis, coco\\)"):
        export_project(project, "png", tmp_path)
    video = project.video_path
    before = sorted(p.name for p in video.iterdir())
    for fmt in FORMATS:  # bear/bear.json, bear/Annotations/bear
        with pytest.raises(ExportError, match="lies inside the input video"):
            export_project(project, fmt, video)
    assert sorted(p.name for p in video.iterdir()) == before


# --------------------------------------------------------------------------- every format


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_replaces_its_own_output_and_nothing_else(tmp_path, project, fmt):
    out = tmp_path / "out"
    first = export_project(project, fmt, out)
    project.set_frame(1, FrameLabels(np.ones(HW, np.uint8)), FrameState.PAINTED)
    second = export_project(project, fmt, out)  # our own output: replaced
    assert second.path == first.path and second.labelled == 5
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    foreign = tmp_path / "foreign"
    target = export_target(project, fmt, foreign)
    target.parent.mkdir(parents=True)
    if fmt == "coco":
        target.write_text('{"images": []}')
    else:
        target.mkdir()
        (target / "00000.png").write_bytes(b"someone else's")
    theirs = {p: p.read_bytes() for p in foreign.rglob("*") if p.is_file()}
    with pytest.raises(ExportError, match="refusing to replace it") as info:
        export_project(project, fmt, foreign)
    assert str(info.value).startswith(f"{target}: ")
    assert {p: p.read_bytes() for p in foreign.rglob("*") if p.is_file()} == theirs
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == snapshot


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_keeps_the_previous_output_when_a_frame_fails(tmp_path, project, fmt):
    out = tmp_path / "out"
    export_project(project, fmt, out)
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    real_labels = project.labels

    def labels(t: int) -> FrameLabels:
        if t == 5:
            raise ExportError("frame 5 cannot be read")
        return real_labels(t)

    project.labels = labels  # type: ignore[method-assign]
    with pytest.raises(ExportError, match="frame 5"):
        export_project(project, fmt, out)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == snapshot
