"""Masks: DAVIS palette, loading user masks, validation, atomic indexed PNG write/read."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from tracker_core.errors import ExportError, MaskError
from tracker_core.masks import (
    davis_palette,
    load_mask,
    read_indexed_png,
    validate_mask,
    write_indexed_png,
)

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "sample"


def _ids(h: int = 6, w: int = 7, seed: int = 0) -> np.ndarray:
    """``(h, w) uint8`` random ids covering the whole 0..255 range."""
    ids = np.random.default_rng(seed).integers(0, 256, size=(h, w), dtype=np.uint8)
    ids.flat[:2] = (0, 255)
    return ids


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    Image.fromarray(array).convert(mode or Image.fromarray(array).mode).save(path)
    return path


# --- palette -------------------------------------------------------------------------------------


def test_davis_palette_known_entries():
    palette = davis_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    expected = {
        0: (0, 0, 0),
        1: (128, 0, 0),
        2: (0, 128, 0),
        3: (128, 128, 0),
        4: (0, 0, 128),
        5: (128, 0, 128),
        6: (0, 128, 128),
        7: (128, 128, 128),
        8: (64, 0, 0),
        15: (192, 128, 128),
        255: (224, 224, 192),
    }
    for index, colour in expected.items():
        assert tuple(palette[index]) == colour, index
    assert len({tuple(c) for c in palette}) == 256


def test_davis_palette_is_a_fresh_array():
    davis_palette()[1] = 0
    assert tuple(davis_palette()[1]) == (128, 0, 0)


# --- write / read --------------------------------------------------------------------------------


def test_write_read_round_trip_with_davis_palette(tmp_path):
    ids = _ids(5, 9)
    path = tmp_path / "mask.png"
    write_indexed_png(path, ids)
    out = read_indexed_png(path)
    assert out.dtype == np.uint8 and np.array_equal(out, ids)
    image = Image.open(path)
    assert image.format == "PNG" and image.mode == "P"
    palette = np.array(image.getpalette(), dtype=np.uint8).reshape(-1, 3)
    assert np.array_equal(palette[:256], davis_palette())
    assert np.array_equal(load_mask(path), ids)
    # other tools that apply the palette see the DAVIS colours
    rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(rgb, davis_palette()[ids])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ids=arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_round_trip_property(tmp_path, ids):
    path = tmp_path / "p.png"
    write_indexed_png(path, ids)
    assert np.array_equal(read_indexed_png(path), ids)


def test_write_converts_bool_and_overwrites_atomically(tmp_path):
    path = tmp_path / "m.png"
    write_indexed_png(path, np.ones((3, 4), bool))
    write_indexed_png(path, np.eye(3, 4, dtype=bool))
    assert np.array_equal(read_indexed_png(path), np.eye(3, 4, dtype=np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.png"]


def test_written_file_respects_umask(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = tmp_path / "m.png"
    write_indexed_png(path, _ids())
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_to_missing_folder_raises_export_error(tmp_path):
    path = tmp_path / "missing" / "m.png"
    with pytest.raises(ExportError, match="cannot create file") as info:
        write_indexed_png(path, _ids())
    assert str(path) in str(info.value)


def test_write_under_a_file_raises_export_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ExportError, match=r"file\.txt/m\.png"):
        write_indexed_png(blocker / "m.png", _ids())


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_disk_full_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch, failing):
    path = tmp_path / "m.png"
    old = _ids(seed=1)
    write_indexed_png(path, old)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, failing, disk_full)
    with pytest.raises(ExportError, match="No space left") as info:
        write_indexed_png(path, _ids(seed=2))
    monkeypatch.undo()
    assert str(path) in str(info.value)
    assert np.array_equal(read_indexed_png(path), old)
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]


def test_write_rejects_invalid_mask(tmp_path):
    with pytest.raises(MaskError, match=r"0\.\.255"):
        write_indexed_png(tmp_path / "m.png", np.full((2, 2), 300))
    assert list(tmp_path.iterdir()) == []


def test_read_indexed_png_refuses_other_images(tmp_path):
    grey = _save(tmp_path / "grey.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(MaskError, match="not an indexed PNG") as info:
        read_indexed_png(grey)
    assert str(grey) in str(info.value)
    with pytest.raises(MaskError, match="does not exist"):
        read_indexed_png(tmp_path / "nope.png")


def test_non_ascii_paths(tmp_path):
    folder = tmp_path / "masques été" / "日本"
    folder.mkdir(parents=True)
    path = folder / "masque 1.png"
    write_indexed_png(path, _ids())
    assert np.array_equal(read_indexed_png(path), _ids())
    assert np.array_equal(load_mask(str(path)), _ids())


# --- load_mask -----------------------------------------------------------------------------------


def test_load_indexed_png_reads_indices_not_colours(tmp_path):
    ids = np.array([[0, 1, 2], [3, 200, 1]], np.uint8)
    image = Image.fromarray(ids, mode=None).convert("P")
    image.putpalette([255, 255, 255] * 256)  # every index looks white
    path = tmp_path / "p.png"
    image.save(path)
    assert np.array_equal(load_mask(path), ids)


def test_load_grey_values_and_binary_masks(tmp_path):
    grey = np.array([[0, 3, 7], [7, 0, 200]], np.uint8)
    assert np.array_equal(load_mask(_save(tmp_path / "g.png", grey)), grey)
    binary = np.array([[0, 255, 255], [0, 0, 255]], np.uint8)
    assert np.array_equal(load_mask(_save(tmp_path / "b.png", binary)), binary // 255)
    bilevel = _save(tmp_path / "1.png", binary, mode="1")
    assert Image.open(bilevel).mode == "1"
    assert np.array_equal(load_mask(bilevel), binary // 255)
    deep = (binary.astype(np.uint16) * 257).astype(np.uint16)  # 0 / 65535
    deep_path = tmp_path / "16.png"
    cv2.imwrite(str(deep_path), deep)
    assert np.array_equal(load_mask(deep_path), binary // 255)


def test_load_real_davis_style_annotation():
    mask = load_mask(SAMPLE / "bear_00000.png", expected_hw=(480, 854))
    assert set(np.unique(mask)) == {0, 1}
    assert 30_000 < int(mask.sum()) < 80_000  # the bear


def test_load_rgb_davis_colours_as_ids(tmp_path):
    ids = np.array([[0, 1, 2], [3, 17, 255]], np.uint8)
    path = _save(tmp_path / "rgb.png", davis_palette()[ids])
    assert np.array_equal(load_mask(path), ids)


def test_load_rgb_black_and_white_as_binary(tmp_path):
    binary = np.array([[0, 255], [255, 0]], np.uint8)
    path = _save(tmp_path / "bw.png", np.repeat(binary[..., None], 3, axis=2))
    assert np.array_equal(load_mask(path), binary // 255)


def test_load_other_rgb_raises(tmp_path):
    rgb = davis_palette()[np.zeros((3, 3), np.uint8)]
    rgb[1, 2] = (10, 200, 30)
    path = _save(tmp_path / "photo.png", rgb)
    with pytest.raises(MaskError, match=r"\(10, 200, 30\) at row 1, column 2") as info:
        load_mask(path)
    assert str(path) in str(info.value)


def test_load_refuses_jpeg_and_corrupt_and_missing(tmp_path):
    jpeg = tmp_path / "m.jpg"
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(jpeg)
    with pytest.raises(MaskError, match="JPEG"):
        load_mask(jpeg)
    corrupt = tmp_path / "c.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    with pytest.raises(MaskError) as info:
        load_mask(corrupt)
    assert str(corrupt) in str(info.value)
    with pytest.raises(MaskError, match="does not exist"):
        load_mask(tmp_path / "none.png")


def test_load_checks_size_and_id_range(tmp_path):
    path = tmp_path / "m.png"
    write_indexed_png(path, np.zeros((4, 5), np.uint8))
    with pytest.raises(MaskError, match="got 4x5, expected 6x7") as info:
        load_mask(path, expected_hw=(6, 7))
    assert str(path) in str(info.value)
    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.full((2, 2), 300, np.uint16))
    with pytest.raises(MaskError, match=r"0\.\.255"):
        load_mask(big)


# --- validate_mask -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mask",
    [
        np.array([[True, False], [False, True]]),
        np.array([[1, 0], [0, 1]], np.int64),
        np.array([[1, 0], [0, 1]], np.uint16),
        np.array([[1.0, 0.0], [-0.0, 1.0]], np.float32),
        np.array([[[1], [0]], [[0], [1]]], np.int32),
        [[1, 0], [0, 1]],
    ],
    ids=["bool", "int64", "uint16", "float", "HxWx1", "list"],
)
def test_validate_converts_to_uint8(mask):
    out = validate_mask(mask, expected_hw=(2, 2))
    assert out.dtype == np.uint8 and out.shape == (2, 2)
    assert np.array_equal(out, np.eye(2, dtype=np.uint8))


def test_validate_returns_valid_uint8_unchanged():
    ids = _ids()
    assert validate_mask(ids) is ids


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.array([[0, 256]]), r"0\.\.255, got values from 0 to 256"),
        (np.array([[-1, 3]]), r"0\.\.255, got values from -1 to 3"),
        (np.array([[0.5, 1.0]]), "non-integer"),
        (np.array([[np.nan, 1.0]]), "NaN"),
        (np.zeros((2, 2, 3), np.uint8), r"2-D \(H, W\)"),
        (np.zeros(4, np.uint8), r"2-D \(H, W\)"),
        (np.zeros((0, 3), np.uint8), "empty"),
        (np.array([["a", "b"]]), "unsupported mask dtype"),
        (np.array([[1 + 0j]]), "unsupported mask dtype"),
    ],
)
def test_validate_rejects(mask, message):
    with pytest.raises(MaskError, match=message):
        validate_mask(mask)


def test_validate_size_message():
    with pytest.raises(MaskError, match="got 2x3, expected 3x2"):
        validate_mask(np.zeros((2, 3), np.uint8), expected_hw=(3, 2))
