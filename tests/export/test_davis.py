"""DAVIS export/import: file layout, palette, exact round trip, atomic failure behaviour."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tracker_core.outputs as outputs_module
from tracker_core.errors import ExportError
from tracker_core.export import export_davis, import_davis
from tracker_core.labels import FrameLabels
from tracker_core.masks import davis_palette
from tracker_core.outputs import MANIFEST_NAME

NUM_FRAMES = 6


def _tree(root: Path) -> dict[str, bytes]:
    """Relative path -> content of every file below ``root`` (hidden ones included)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_export_writes_every_frame_as_indexed_png(tmp_path, labelled, masks, frame_hw):
    target = export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")

    assert target == tmp_path / "Annotations" / "bear"
    pngs = [f"{i:05d}.png" for i in range(NUM_FRAMES)]
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST_NAME, *pngs]
    for i in range(NUM_FRAMES):
        with Image.open(target / f"{i:05d}.png") as image:
            assert image.mode == "P"
            assert image.size == (frame_hw[1], frame_hw[0])
            expected = masks.get(i, np.zeros(frame_hw, np.uint8))
            np.testing.assert_array_equal(np.asarray(image), expected)


def test_png_palette_is_the_standard_davis_palette(tmp_path, labelled, frame_hw):
    target = export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")

    with Image.open(target / "00000.png") as image:
        palette = np.array(image.getpalette()[: 256 * 3], np.uint8).reshape(-1, 3)
    assert tuple(palette[0]) == (0, 0, 0)
    assert tuple(palette[1]) == (128, 0, 0)
    assert tuple(palette[2]) == (0, 128, 0)
    assert tuple(palette[7]) == (128, 128, 128)
    np.testing.assert_array_equal(palette, davis_palette())


def test_round_trip_is_exact(tmp_path, labelled, masks, frame_hw):
    target = export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")
    objects, frames = import_davis(target, frame_hw)

    assert [o.id for o in objects] == [1, 2, 7]
    assert [o.name for o in objects] == ["object 1", "object 2", "object 7"]
    assert [o.color for o in objects] == [(128, 0, 0), (0, 128, 0), (128, 128, 128)]
    assert all(o.kind == "mask" for o in objects)
    assert sorted(frames) == list(range(NUM_FRAMES))
    for i, labels in frames.items():
        assert labels.mask.dtype == np.uint8
        np.testing.assert_array_equal(labels.mask, masks.get(i, np.zeros(frame_hw, np.uint8)))
        assert labels.keypoints == {}
    assert frames[1].is_empty() and frames[3].is_empty() and not frames[0].is_empty()


def test_import_takes_the_size_from_the_files(tmp_path, labelled, frame_hw):
    target = export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")

    _, frames = import_davis(target, None)

    assert frames[0].mask.shape == frame_hw


def test_frames_without_mask_and_keypoints_only_give_empty_pngs(tmp_path, frame_hw):
    points = np.array([[3.0, 4.0, 1.0]], np.float32)
    frames = [(1, FrameLabels(mask=None, keypoints={9: points}))]

    target = export_davis(tmp_path, frames, 2, frame_hw, "v")

    _, back = import_davis(target, frame_hw)
    assert all(not labels.mask.any() for labels in back.values())
    assert sorted(back) == [0, 1]


def test_export_accepts_frames_in_any_order_and_reports_progress(tmp_path, labelled, frame_hw):
    calls: list[tuple[int, int]] = []

    export_davis(
        tmp_path,
        reversed(labelled),
        NUM_FRAMES,
        frame_hw,
        "bear",
        lambda d, t: calls.append((d, t)),
    )

    assert calls == [(k, NUM_FRAMES) for k in range(1, NUM_FRAMES + 1)]


def test_existing_export_is_replaced_and_nothing_else_left(tmp_path, labelled, frame_hw):
    old = export_davis(tmp_path, [], 10, frame_hw, "bear")

    new = export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")

    assert new == old
    pngs = [f"{i:05d}.png" for i in range(NUM_FRAMES)]
    assert sorted(p.name for p in new.iterdir()) == [MANIFEST_NAME, *pngs]
    assert [p.name for p in (tmp_path / "Annotations").iterdir()] == ["bear"]


def test_an_export_the_user_added_a_file_to_is_not_replaced(tmp_path, labelled, frame_hw):
    old = export_davis(tmp_path, [], 10, frame_hw, "bear")
    (old / "notes.txt").write_text("mine")
    before = _tree(tmp_path)

    with pytest.raises(ExportError, match=r"notes\.txt, which Trackpaint did not write"):
        export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")

    assert _tree(tmp_path) == before


def test_full_disk_raises_and_leaves_previous_export_intact(
    tmp_path, labelled, frame_hw, monkeypatch
):
    export_davis(tmp_path, [], 3, frame_hw, "bear")
    before = _tree(tmp_path)

    def full_disk(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(ExportError, match="No space left") as info:
        export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")

    assert "Annotations/bear" in str(info.value)
    assert info.value.path == tmp_path / "Annotations" / "bear"
    assert _tree(tmp_path) == before


def test_failed_first_export_leaves_no_files(tmp_path, labelled, frame_hw, no_space):
    with pytest.raises(ExportError):
        export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")

    assert _tree(tmp_path) == {}
    assert list(tmp_path.iterdir()) == []  # not even the Annotations/ folder it created


def test_failed_atomic_exchange_keeps_previous_export(tmp_path, labelled, frame_hw, monkeypatch):
    export_davis(tmp_path, [], 3, frame_hw, "bear")
    before = _tree(tmp_path)

    def exchange(a: Path, b: Path) -> bool:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(b))

    monkeypatch.setattr(outputs_module, "_exchange", exchange)
    with pytest.raises(ExportError, match="into place"):
        export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")
    assert _tree(tmp_path) == before


def test_failed_swap_keeps_previous_export(tmp_path, labelled, frame_hw, monkeypatch):
    export_davis(tmp_path, [], 3, frame_hw, "bear")
    before = _tree(tmp_path)
    real_rename = os.rename
    monkeypatch.setattr(outputs_module, "_exchange", lambda a, b: False)  # the fallback swap

    def rename(src: os.PathLike, dst: os.PathLike) -> None:
        if Path(src).name.endswith(".partial"):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(ExportError, match="into place"):
        export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")

    assert _tree(tmp_path) == before


def test_interrupted_fallback_swap_is_recovered(tmp_path, labelled, frame_hw, monkeypatch):
    export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")
    target = tmp_path / "Annotations" / "bear"
    before = _tree(target)
    os.rename(target, target.with_name(".bear.4242-0123456789ab.old"))  # a kill between renames
    _, frames = import_davis(target)
    assert frames and _tree(target) == before
    assert not list(target.parent.glob(".bear.*.old"))


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions"
)
def test_unwritable_folder_raises(tmp_path, labelled, frame_hw):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations").chmod(0o500)
    try:
        with pytest.raises(ExportError, match="Annotations"):
            export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")
        assert list((tmp_path / "Annotations").iterdir()) == []
    finally:
        (tmp_path / "Annotations").chmod(0o700)


def test_bad_frame_midway_raises_and_cleans_up(tmp_path, masks, frame_hw):
    def frames():
        yield 0, FrameLabels(mask=masks[0])
        yield 2, FrameLabels(mask=np.zeros((5, 5), np.uint8))

    with pytest.raises(ExportError, match="frame 2"):
        export_davis(tmp_path, frames(), NUM_FRAMES, frame_hw, "bear")

    assert _tree(tmp_path) == {}


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([(6, FrameLabels())], "out of range"),
        ([(-1, FrameLabels())], "out of range"),
        ([(1, FrameLabels()), (1, FrameLabels())], "given twice"),
        ([(0, FrameLabels(mask=np.zeros((24, 32), np.int32)))], "uint8"),
    ],
)
def test_invalid_frames_are_rejected(tmp_path, frame_hw, frames, message):
    with pytest.raises(ExportError, match=message):
        export_davis(tmp_path, frames, NUM_FRAMES, frame_hw, "bear")
    assert _tree(tmp_path) == {}


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", ".hidden"])
def test_invalid_video_name_is_rejected(tmp_path, frame_hw, name):
    with pytest.raises(ExportError, match="video name"):
        export_davis(tmp_path, [], 1, frame_hw, name)


def test_import_reads_frame_numbers_from_names(tmp_path, masks, frame_hw):
    Image.fromarray(masks[0], mode="L").save(tmp_path / "frame_0012.png")
    Image.fromarray(masks[2], mode="L").save(tmp_path / "frame_0003.png")
    (tmp_path / "readme.txt").write_text("ignored")

    objects, frames = import_davis(tmp_path, frame_hw)

    assert sorted(frames) == [3, 12]
    np.testing.assert_array_equal(frames[12].mask, masks[0])
    assert [o.id for o in objects] == [1, 2, 7]


def test_import_rejects_size_mismatch(tmp_path, labelled, frame_hw):
    target = export_davis(tmp_path, labelled, NUM_FRAMES, frame_hw, "bear")

    with pytest.raises(ExportError, match=r"00000\.png"):
        import_davis(target, (10, 10))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([], "no PNG masks"),
        (["mask.png"], "no frame number"),
        (["1.png", "001.png"], "frame 1 also in"),
        (["00000.png"], "invalid DAVIS mask"),
    ],
)
def test_import_rejects_bad_folders(tmp_path, files, message):
    for name in files:
        if name == "00000.png":
            (tmp_path / name).write_bytes(b"not a png")
        else:
            Image.fromarray(np.zeros((4, 4), np.uint8), mode="L").save(tmp_path / name)

    with pytest.raises(ExportError, match=message):
        import_davis(tmp_path, None)


def test_import_of_missing_folder_raises(tmp_path):
    with pytest.raises(ExportError, match="not a folder"):
        import_davis(tmp_path / "missing", None)
