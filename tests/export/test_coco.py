"""COCO export/import: pycocotools compatibility, exact RLE, polygons, keypoints, failures."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

import tracker_core
from tracker_core.errors import ExportError
from tracker_core.export import export_coco, import_coco
from tracker_core.export.coco import mask_to_polygons
from tracker_core.labels import FrameLabels, ObjectSpec

NUM_FRAMES = 6
NAN = float("nan")


@pytest.fixture
def person() -> ObjectSpec:
    """A keypoint object with four points and a skeleton."""
    return ObjectSpec(
        9,
        "person",
        (255, 128, 0),
        kind="keypoints",
        keypoint_names=("head", "neck", "l_hand", "r_hand"),
        skeleton=((0, 1), (1, 2), (1, 3)),
    )


@pytest.fixture
def points() -> dict[int, np.ndarray]:
    """Keypoints of ``person`` per frame, ``(4, 3) float32``: visible, labelled-but-hidden and
    unplaced points; frame 4 has no placed point at all."""
    return {
        0: np.array([[3.5, 4.25, 1], [5, 9, 1], [1, 12, 0], [NAN, NAN, 0]], np.float32),
        3: np.array([[NAN, NAN, 0], [20.75, 7, 0], [NAN, NAN, 0], [31, 23, 1]], np.float32),
        4: np.full((4, 3), NAN, np.float32) * np.array([1, 1, 0], np.float32),
    }


@pytest.fixture
def objects(mask_objects, person) -> list[ObjectSpec]:
    return [*mask_objects, person]


@pytest.fixture
def frames(masks, points) -> dict[int, FrameLabels]:
    """Masks and keypoints together, frames 0..5 (frame 1 unlabelled)."""
    out: dict[int, FrameLabels] = {}
    for i in sorted(set(masks) | set(points)):
        kps = {9: points[i]} if i in points else {}
        out[i] = FrameLabels(mask=masks.get(i), keypoints=kps)
    return out


def _export(path: Path, objects, frames, frame_hw, **kwargs) -> Path:
    return export_coco(
        path,
        objects,
        frames.items() if isinstance(frames, dict) else frames,
        frame_hw,
        lambda i: f"frame_{i:04d}.jpg",
        NUM_FRAMES,
        **kwargs,
    )


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _assert_same_keypoints(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == np.float32 and actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)  # NaN == NaN for assert_array_equal


def test_pycocotools_loads_images_and_categories(tmp_path, objects, frames, frame_hw):
    path = _export(tmp_path / "out" / "coco.json", objects, frames, frame_hw, video_name="bear")
    coco = COCO(str(path))

    assert sorted(coco.getImgIds()) == list(range(1, NUM_FRAMES + 1))
    image = coco.loadImgs(3)[0]
    assert image == {
        "id": 3,
        "file_name": "frame_0002.jpg",
        "height": 24,
        "width": 32,
        "frame_index": 2,
    }
    assert sorted(coco.getCatIds()) == [1, 2, 7, 9]
    cat = coco.loadCats(9)[0]
    assert cat["name"] == "person"
    assert cat["keypoints"] == ["head", "neck", "l_hand", "r_hand"]
    assert cat["skeleton"] == [[1, 2], [2, 3], [2, 4]]
    assert "keypoints" not in coco.loadCats(1)[0]
    document = json.loads(path.read_text())
    assert document["info"]["version"] == tracker_core.__version__
    assert document["info"]["video"] == "bear"
    assert document["licenses"] == []


def test_rle_masks_round_trip_exactly_through_pycocotools(tmp_path, objects, frames, frame_hw):
    coco = COCO(str(_export(tmp_path / "coco.json", objects, frames, frame_hw)))

    for i, labels in frames.items():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[i + 1], catIds=[1, 2, 7]))
        present = (
            sorted(int(v) for v in np.unique(labels.mask) if v) if labels.mask is not None else []
        )
        assert sorted(a["category_id"] for a in anns) == present
        for ann in anns:
            expected = labels.mask == ann["category_id"]
            np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), expected)
            assert isinstance(ann["segmentation"]["counts"], str)
            assert ann["iscrowd"] == 0
            assert ann["area"] == expected.sum()
            rows, cols = np.nonzero(expected)
            x, y = cols.min(), rows.min()
            assert ann["bbox"] == [x, y, cols.max() - x + 1, rows.max() - y + 1]


def test_polygon_masks_round_trip_through_pycocotools(tmp_path, objects, frames, frame_hw):
    path = _export(tmp_path / "coco.json", objects, frames, frame_hw, polygons=True)
    coco = COCO(str(path))

    anns = coco.loadAnns(coco.getAnnIds(catIds=[1, 2, 7]))
    assert len(anns) == 7
    for ann in anns:
        labels = frames[coco.loadImgs(ann["image_id"])[0]["frame_index"]]
        expected = labels.mask == ann["category_id"]
        assert isinstance(ann["segmentation"], list)
        assert all(len(p) >= 8 and len(p) % 2 == 0 for p in ann["segmentation"])
        # the test masks have no holes, so the polygons give back exactly the same pixels
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), expected)
        assert ann["area"] == expected.sum()
        assert len(ann["bbox"]) == 4


def test_polygons_keep_holes_and_islands():
    rng = np.random.default_rng(0)
    blob = cv2.GaussianBlur(rng.random((60, 80)), (0, 0), 4) > 0.5
    ring = np.zeros((40, 40), np.uint8)
    cv2.circle(ring, (20, 20), 15, 1, -1)
    ring[14:26, 14:26] = 0  # a hole ...
    ring[18:21, 18:21] = 1  # ... with an island in it
    ring[5, 20] = 0  # a one-pixel hole
    noise = rng.random((30, 30)) < 0.6

    for binary in (blob, ring.astype(bool), noise):
        h, w = binary.shape
        polys = mask_to_polygons(binary)
        back = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w)))
        assert _iou(back.astype(bool), binary) > 0.95
        np.testing.assert_array_equal(back.astype(bool), binary)


def test_keypoints_follow_coco_conventions(tmp_path, objects, frames, frame_hw):
    coco = COCO(str(_export(tmp_path / "coco.json", objects, frames, frame_hw)))

    anns = coco.loadAnns(coco.getAnnIds(catIds=[9]))
    assert [a["image_id"] for a in anns] == [1, 4]  # frame 4: no placed point, no annotation
    first, second = anns
    assert first["keypoints"] == [3.5, 4.25, 2, 5, 9, 2, 1, 12, 1, 0, 0, 0]
    assert first["num_keypoints"] == 3
    assert first["bbox"] == [1, 4.25, 4, 7.75]
    assert first["area"] == 4 * 7.75
    assert second["keypoints"] == [0, 0, 0, 20.75, 7, 1, 0, 0, 0, 31, 23, 2]
    assert second["num_keypoints"] == 2
    assert "segmentation" not in first


def test_import_of_export_returns_the_same_labels(tmp_path, objects, frames, frame_hw, points):
    path = _export(tmp_path / "coco.json", objects, frames, frame_hw)

    back_objects, back_frames, back_hw = import_coco(path)

    assert back_hw == frame_hw
    assert back_objects == sorted(objects, key=lambda o: o.id)
    # frames 1 (unlabelled), 3 (empty mask, keypoints only) and 4 (no placed point) differ only
    # in carrying no information; only frames with annotations come back
    assert sorted(back_frames) == [0, 2, 3, 5]
    for i, labels in back_frames.items():
        original = frames[i]
        np.testing.assert_array_equal(labels.mask, original.mask)
        assert labels.mask.dtype == np.uint8
        assert set(labels.keypoints) == ({9} if i in (0, 3) else set())
        for obj_id, pts in labels.keypoints.items():
            _assert_same_keypoints(pts, original.keypoints[obj_id])


def test_import_of_polygon_export_matches(tmp_path, objects, frames, frame_hw):
    path = _export(tmp_path / "coco.json", objects, frames, frame_hw, polygons=True)

    _, back_frames, _ = import_coco(path)

    for i in (0, 2, 5):
        np.testing.assert_array_equal(back_frames[i].mask, frames[i].mask)


def test_keypoints_only_project_has_no_masks(tmp_path, person, points, frame_hw):
    frames = {0: FrameLabels(keypoints={9: points[0]})}
    _, back, _ = import_coco(_export(tmp_path / "c.json", [person], frames, frame_hw))

    assert list(back) == [0]
    assert back[0].mask is None
    _assert_same_keypoints(back[0].keypoints[9], points[0])


def test_output_does_not_depend_on_frame_order(tmp_path, objects, frames, frame_hw):
    a = _export(tmp_path / "a.json", objects, list(frames.items()), frame_hw)
    b = _export(tmp_path / "b.json", objects, list(reversed(frames.items())), frame_hw)

    doc_a, doc_b = json.loads(a.read_text()), json.loads(b.read_text())
    assert doc_a["annotations"] == doc_b["annotations"]
    assert [a["id"] for a in doc_a["annotations"]] == list(range(1, 10))


def test_empty_video_labels_give_images_but_no_annotations(tmp_path, objects, frame_hw):
    calls: list[tuple[int, int]] = []
    path = export_coco(
        tmp_path / "c.json",
        objects,
        [],
        frame_hw,
        [f"{i}.png" for i in range(3)],
        3,
        progress=lambda d, t: calls.append((d, t)),
    )

    document = json.loads(path.read_text())
    assert [img["file_name"] for img in document["images"]] == ["0.png", "1.png", "2.png"]
    assert document["annotations"] == []
    assert calls == [(3, 3)]
    assert import_coco(path)[1] == {}


def test_progress_is_reported_per_frame_and_at_the_end(tmp_path, objects, frames, frame_hw):
    calls: list[tuple[int, int]] = []
    _export(
        tmp_path / "c.json", objects, frames, frame_hw, progress=lambda d, t: calls.append((d, t))
    )

    assert calls == [(k, NUM_FRAMES) for k in range(1, len(frames) + 1)] + [(6, 6)]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (FrameLabels(mask=np.full((24, 32), 3, np.uint8)), r"mask ids \[3\]"),
        (FrameLabels(mask=np.full((24, 32), 9, np.uint8)), r"mask ids \[9\]"),
        (FrameLabels(mask=np.zeros((24, 31), np.uint8)), "24x32 uint8"),
        (FrameLabels(keypoints={1: np.zeros((4, 3), np.float32)}), "not a keypoint object"),
        (FrameLabels(keypoints={9: np.zeros((3, 3), np.float32)}), r"shape \(4, 3\)"),
    ],
)
def test_inconsistent_labels_are_rejected(tmp_path, objects, frame_hw, labels, message):
    path = tmp_path / "c.json"
    with pytest.raises(ExportError, match=message) as info:
        _export(path, objects, [(2, labels)], frame_hw)
    assert "frame 2" in str(info.value) and str(path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frames": [(6, FrameLabels())]}, "out of range"),
        ({"frames": [(0, FrameLabels()), (0, FrameLabels())]}, "given twice"),
        ({"file_names": ["a.png"]}, "need 6 image file names"),
        (
            {"objects": [ObjectSpec(1, "a", (0, 0, 0)), ObjectSpec(1, "b", (0, 0, 0))]},
            "two objects",
        ),
        ({"frame_hw": (0, 32)}, "positive"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, objects, frame_hw, kwargs, message):
    args = {
        "objects": objects,
        "frames": [],
        "frame_hw": frame_hw,
        "file_names": lambda i: f"{i}.png",
        "num_frames": NUM_FRAMES,
        **kwargs,
    }
    with pytest.raises(ExportError, match=message):
        export_coco(tmp_path / "c.json", **args)
    assert list(tmp_path.iterdir()) == []


def test_full_disk_raises_and_keeps_the_old_file(tmp_path, objects, frames, frame_hw, monkeypatch):
    path = tmp_path / "coco.json"
    _export(path, objects, {}, frame_hw)  # a previous export (an unrelated file is refused)
    old = path.read_bytes()

    def full_disk(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(ExportError, match="No space left") as info:
        _export(path, objects, frames, frame_hw)

    assert info.value.path == path
    assert [p.name for p in tmp_path.iterdir()] == ["coco.json"]
    assert path.read_bytes() == old


def test_failed_fsync_leaves_no_temp_file(tmp_path, objects, frames, frame_hw, monkeypatch):
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("os.fsync", failing_fsync)
    with pytest.raises(ExportError, match="Input/output error"):
        _export(tmp_path / "coco.json", objects, frames, frame_hw)
    assert list(tmp_path.iterdir()) == []


def _write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def _minimal(**changes: object) -> dict:
    """A valid two-image COCO document with one RLE and one keypoint annotation."""
    rle = mask_utils.encode(np.asfortranarray(np.eye(4, 5, dtype=np.uint8)))
    document = {
        "images": [
            {"id": 1, "file_name": "a", "height": 4, "width": 5},
            {"id": 2, "file_name": "b", "height": 4, "width": 5},
        ],
        "categories": [
            {"id": 3, "name": "thing"},
            {"id": 4, "name": "pt", "keypoints": ["p"], "skeleton": []},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 2,
                "category_id": 3,
                "segmentation": {"size": [4, 5], "counts": rle["counts"].decode()},
            },
            {"id": 2, "image_id": 1, "category_id": 4, "keypoints": [1, 2, 1]},
        ],
    }
    document.update(changes)
    return document


def test_import_of_a_foreign_file_without_frame_index(tmp_path):
    document = _minimal()
    document["images"][0]["id"], document["images"][1]["id"] = 20, 10
    document["annotations"][0]["image_id"] = 10
    document["annotations"][1]["image_id"] = 20
    document["annotations"].append(
        {"id": 3, "image_id": 20, "category_id": 3, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}
    )
    document["annotations"].append(
        {
            "id": 4,
            "image_id": 10,
            "category_id": 3,
            "segmentation": {"size": [4, 5], "counts": [18, 2]},
        }
    )

    objects, frames, hw = import_coco(_write(tmp_path / "c.json", document))

    assert hw == (4, 5)
    assert [(o.id, o.kind) for o in objects] == [(3, "mask"), (4, "keypoints")]
    assert objects[0].color == (128, 128, 0)  # DAVIS palette colour of id 3
    expected0 = (np.eye(4, 5) > 0) * 3
    expected0[2:4, 4] = 3  # uncompressed RLE: the last two pixels in column-major order
    np.testing.assert_array_equal(frames[0].mask, expected0)
    expected1 = np.zeros((4, 5), np.uint8)
    expected1[:2, :2] = 3
    np.testing.assert_array_equal(frames[1].mask, expected1)
    _assert_same_keypoints(frames[1].keypoints[4], np.array([[1, 2, 0]], np.float32))


def _broken(key: str, value: object) -> dict:
    """``_minimal()`` with one item replaced; key is 'path.to.item' with list indices."""
    document = _minimal()
    *parents, last = key.split(".")
    node = document
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return document


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1, 2], "not a JSON object"),
        (_broken("images", None), "missing key 'images'"),
        (_broken("annotations", {}), "'annotations' must be a list"),
        (_broken("images.0.height", None), "missing key 'height'"),
        (_broken("images.1.height", 5), "different sizes"),
        (_broken("images", []), "no images"),
        (_broken("categories.0.id", 300), "out of range"),
        (_broken("categories.1.skeleton", [[1, 2]]), "skeleton edge"),
        (_broken("annotations.0.segmentation", None), "missing key 'segmentation'"),
        (_broken("annotations.0.category_id", 5), "unknown category id 5"),
        (_broken("annotations.0.image_id", 7), "unknown image id 7"),
        (_broken("annotations.0.segmentation.size", [5, 4]), "RLE size"),
        (_broken("annotations.0.segmentation.counts", ""), "do not sum"),
        (_broken("annotations.0.segmentation.counts", "!!"), "invalid character"),
        (_broken("annotations.0.segmentation.counts", [3, 4]), "sum to 20"),
        (_broken("annotations.0.segmentation", [[1, 2, 3, 4]]), "at least 3"),
        (_broken("annotations.0.segmentation", "x"), "polygon list or an RLE"),
        (_broken("annotations.1.keypoints", [1, 2]), "list of 3 numbers"),
        (_broken("annotations.1.keypoints", [1, 2, 5]), "visibility"),
    ],
)
def test_malformed_files_raise_export_error(tmp_path, document, message):
    path = _write(tmp_path / "bad.json", document)

    with pytest.raises(ExportError, match=message) as info:
        import_coco(path)
    assert str(info.value).startswith(f"{path}: ")


def test_invalid_json_and_missing_file_raise_export_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")

    with pytest.raises(ExportError, match="not valid JSON"):
        import_coco(bad)
    with pytest.raises(ExportError, match="cannot read"):
        import_coco(tmp_path / "missing.json")


def test_duplicate_keypoint_annotations_are_rejected(tmp_path):
    document = _minimal()
    document["annotations"].append(dict(document["annotations"][1], id=9))

    with pytest.raises(ExportError, match="two annotations of keypoint object 4"):
        import_coco(_write(tmp_path / "c.json", document))


@settings(max_examples=30, deadline=None)
@given(
    mask=arrays(
        np.uint8,
        st.tuples(st.integers(1, 9), st.integers(1, 9)),
        elements=st.sampled_from([0, 1, 2, 7]),
    ),
    polygons=st.booleans(),
)
def test_random_masks_round_trip(tmp_path_factory, mask, polygons):
    path = tmp_path_factory.mktemp("coco") / "c.json"
    objects = [ObjectSpec(i, f"o{i}", (0, 0, i)) for i in (1, 2, 7)]

    export_coco(path, objects, [(0, FrameLabels(mask=mask))], mask.shape, ["f"], 1, polygons)
    coco = COCO(str(path))
    _, frames, _ = import_coco(path)

    if not mask.any():
        assert frames == {}
        return
    for ann in coco.loadAnns(coco.getAnnIds()):
        expected = mask == ann["category_id"]
        np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), expected)
    np.testing.assert_array_equal(frames[0].mask, mask)


def test_frame_file_names_follow_the_frame_folder_or_the_video_name(tmp_path):
    from tracker_core.export import frame_file_names

    folder = tmp_path / "clip"
    folder.mkdir()
    for name in ("2.png", "10.png", "1.png"):
        (folder / name).write_bytes(b"")
    assert frame_file_names(folder, 3) == ["clip/1.png", "clip/2.png", "clip/10.png"]
    assert frame_file_names(tmp_path / "walk.mp4", 2) == ["walk/00000.jpg", "walk/00001.jpg"]
