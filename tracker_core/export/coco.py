"""COCO JSON export/import of masks (RLE or polygons) and keypoints.

One COCO *image* per video frame (``id = frame index + 1``, with an extra ``"frame_index"``),
one *category* per object (``id = object id``; keypoint objects carry ``"keypoints"`` and a
1-based ``"skeleton"``; every category carries a non-standard ``"color"`` so a round trip keeps
colours), and *annotations*:

- a mask object present in a frame -> one instance annotation, ``iscrowd`` 0, with the mask as
  compressed RLE (``counts`` as str) or, with ``polygons=True``, as polygons traced so that
  pycocotools rasterises them back to exactly the same pixels, holes included (see
  :func:`mask_to_polygons`). ``area``/``bbox`` always come from the exact mask.
- a keypoint object with at least one placed point -> one annotation with ``keypoints`` as flat
  ``[x, y, v, ...]`` (v = 0 unplaced, 1 placed but not visible, 2 visible), ``num_keypoints``
  (points with v > 0), and ``bbox``/``area`` of the placed points. Objects whose points are all
  unplaced get no annotation.

Annotations are sorted by (image id, category id) and numbered from 1, so the output does not
depend on the order the frames are given in.

Proof of authorship: the file starts with ``{"info":{"trackpaint":{...}`` -- a block
``{"kind": "coco", "version", "created", "sha256"}`` first in ``info``, where ``sha256`` is the
SHA-256 of every byte after that block and its comma. An existing file at the target is replaced
only when it passes this check (:func:`coco_problem`): an unrelated ``.json``, or one of ours
edited since, is refused with an ExportError and left as it is. The JSON is written atomically
through :class:`tracker_core.outputs.StagedFile` (temp file beside the target + fsync +
``os.replace``), and never at or inside an input (``inputs``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from tracker_core import __version__
from tracker_core.errors import ExportError
from tracker_core.export.checks import check_frame_hw, check_frame_index
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.masks import davis_palette
from tracker_core.outputs import Inputs, StagedFile
from tracker_core.video import list_frame_files

ProgressFn = Callable[[int, int], None]
Json = dict[str, Any]
COCO_KIND = "coco"
_MARKER_PREFIX = b'{"info":{"trackpaint":'


def export_coco(
    path: Path,
    objects: Sequence[ObjectSpec],
    frames: Iterable[tuple[int, FrameLabels]],
    frame_hw: tuple[int, int],
    file_names: Callable[[int], str] | Sequence[str],
    num_frames: int,
    polygons: bool = False,
    video_name: str = "video",
    progress: ProgressFn | None = None,
    inputs: Inputs = (),
) -> Path:
    """Write the labels of a video as one COCO JSON file and return its path.

    Args:
        path: the JSON file to write (its folder is created if missing).
        objects: all objects of the project; ids must be unique.
        frames: ``(frame index, labels)`` pairs in any order, each index at most once; masks are
            ``(H, W) uint8`` ids, keypoints ``(P, 3) float32`` per keypoint object.
        frame_hw: ``(H, W)`` of the video.
        file_names: image file name of frame ``i``: a function of ``i`` or a sequence of length
            ``num_frames``.
        num_frames: length of the video; every frame gets an image entry.
        polygons: store masks as polygons instead of RLE.
        video_name: recorded in ``info``.
        progress: called as ``progress(frames_done, num_frames)`` after each labelled frame and
            once with ``(num_frames, num_frames)`` when the file is written.
        inputs: ``(label, path)`` of the files the export reads (video, project); the file may
            not be, or lie inside, any of them.

    Raises:
        ExportError: inconsistent labels (unknown ids, wrong shapes, bad indices), a target
            that is an input or an existing file Trackpaint did not write, or the file cannot
            be written; the message names the path, and no partial file is left.
    """
    path = Path(path)
    hw = check_frame_hw(frame_hw, path)
    if num_frames < 0:
        raise ExportError(f"number of frames must be >= 0, got {num_frames}", path)
    with StagedFile(path, coco_problem, inputs) as tmp:  # refuses a foreign target first
        document = _document(
            objects, frames, hw, file_names, num_frames, polygons, video_name, path, progress
        )
        _write_json(tmp, document, path)
    if progress is not None:
        progress(num_frames, num_frames)
    return path


def _document(
    objects: Sequence[ObjectSpec],
    frames: Iterable[tuple[int, FrameLabels]],
    hw: tuple[int, int],
    file_names: Callable[[int], str] | Sequence[str],
    num_frames: int,
    polygons: bool,
    video_name: str,
    path: Path,
    progress: ProgressFn | None,
) -> Json:
    """The COCO document (without the authorship block); see :func:`export_coco`."""
    name_of = _file_name_function(file_names, num_frames, path)
    by_id = _objects_by_id(objects, path)
    annotations: list[Json] = []
    seen: set[int] = set()
    for index, labels in frames:
        i = check_frame_index(index, num_frames, seen, path)
        seen.add(i)
        try:
            annotations += _frame_annotations(i, labels, by_id, hw, polygons)
        except ValueError as exc:
            raise ExportError(f"frame {i}: {exc}", path) from exc
        if progress is not None:
            progress(len(seen), num_frames)
    document = {
        "info": _info(video_name),
        "licenses": [],
        "images": [_image_entry(i, name_of(i), hw) for i in range(num_frames)],
        "annotations": _numbered(annotations),
        "categories": [_category(obj) for obj in sorted(by_id.values(), key=lambda o: o.id)],
    }
    return document


def import_coco(path: Path) -> tuple[list[ObjectSpec], dict[int, FrameLabels], tuple[int, int]]:
    """Read a COCO JSON file (as written by :func:`export_coco`, or a compatible one).

    Images map to frames by their ``"frame_index"`` when every image has one, else by the
    order of their ids. Categories with a ``"keypoints"`` list become keypoint objects (their
    segmentations are ignored), the others mask objects; a category's colour is its ``"color"``
    or the DAVIS palette entry of its id. Only frames with at least one annotation are returned;
    their mask is ``(H, W) uint8`` (zeros if the frame has no mask annotation) when there are mask
    objects, else None. Overlapping masks: the later annotation wins.

    Returns:
        ``(objects sorted by id, {frame index: FrameLabels}, (H, W))``.

    Raises:
        ExportError: unreadable or malformed JSON, missing keys, images of different sizes,
            unknown image/category ids, or undecodable segmentations/keypoints (the message
            names the path and what is wrong).
    """
    path = Path(path)
    document = _load_json(path)
    try:
        images = _require_list(document, "images")
        categories = _require_list(document, "categories")
        annotations = _require_list(document, "annotations")
        hw = _image_size(images)
        frame_of_image = _frame_indices(images)
        objects = [_object_from_category(c) for c in categories]
        frames = _frames_from_annotations(annotations, frame_of_image, objects, hw)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:  # int(Infinity) overflows
        raise ExportError(f"malformed COCO file: {_describe(exc)}", path) from exc
    return sorted(objects, key=lambda o: o.id), frames, hw


# --- export helpers ---------------------------------------------------------------------------


def _file_name_function(
    file_names: Callable[[int], str] | Sequence[str], num_frames: int, path: Path
) -> Callable[[int], str]:
    """Normalise ``file_names`` to a function ``frame index -> file name``."""
    if callable(file_names):
        return lambda i: str(file_names(i))
    if isinstance(file_names, str) or len(file_names) != num_frames:
        raise ExportError(f"need {num_frames} image file names, got {len(file_names)}", path)
    names = list(file_names)
    return lambda i: str(names[i])


def _objects_by_id(objects: Sequence[ObjectSpec], path: Path) -> dict[int, ObjectSpec]:
    """Map object id -> ObjectSpec, rejecting duplicate ids."""
    by_id: dict[int, ObjectSpec] = {}
    for obj in objects:
        if obj.id in by_id:
            raise ExportError(f"two objects with id {obj.id}", path)
        by_id[obj.id] = obj
    return by_id


def _frame_annotations(
    index: int,
    labels: FrameLabels,
    objects: Mapping[int, ObjectSpec],
    frame_hw: tuple[int, int],
    polygons: bool,
) -> list[Json]:
    """The annotations (without ``id``) of one frame; raises ValueError on inconsistent labels."""
    image_id = index + 1
    annotations: list[Json] = []
    if labels.mask is not None:
        for obj_id, binary in _object_masks(labels.mask, objects, frame_hw):
            annotations.append(_mask_annotation(image_id, obj_id, binary, polygons))
    for obj_id, points in labels.keypoints.items():
        spec = objects.get(int(obj_id))
        if spec is None or spec.kind != "keypoints":
            raise ValueError(f"keypoints for id {obj_id}, which is not a keypoint object")
        annotation = _keypoint_annotation(image_id, spec, points)
        if annotation is not None:
            annotations.append(annotation)
    return annotations


def _object_masks(
    mask: np.ndarray, objects: Mapping[int, ObjectSpec], frame_hw: tuple[int, int]
) -> list[tuple[int, np.ndarray]]:
    """Split an ``(H, W) uint8`` id mask into ``(id, (H, W) bool)`` for each id present."""
    mask = np.asarray(mask)
    if mask.dtype != np.uint8 or mask.shape != frame_hw:
        raise ValueError(
            f"mask must be {frame_hw[0]}x{frame_hw[1]} uint8, got shape {mask.shape} {mask.dtype}"
        )
    present = [int(i) for i in np.flatnonzero(np.bincount(mask.ravel(), minlength=256)) if i]
    unknown = [i for i in present if i not in objects or objects[i].kind != "mask"]
    if unknown:
        raise ValueError(f"mask ids {unknown} are not mask objects")
    return [(i, mask == i) for i in present]


def _mask_annotation(image_id: int, obj_id: int, binary: np.ndarray, polygons: bool) -> Json:
    """Instance annotation of one ``(H, W) bool`` mask: RLE or polygons, exact area and bbox."""
    rle = mask_utils.encode(np.asfortranarray(binary, dtype=np.uint8))
    if polygons:
        segmentation: Any = mask_to_polygons(binary)
    else:
        segmentation = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}
    return {
        "image_id": image_id,
        "category_id": obj_id,
        "segmentation": segmentation,
        "area": float(mask_utils.area(rle)),
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
        "iscrowd": 0,
    }


def mask_to_polygons(binary: np.ndarray) -> list[list[float]]:
    """COCO polygons ``[[x0, y0, x1, y1, ...], ...]`` of a ``(H, W) bool`` mask.

    The mask is upsampled 2x and traced with ``cv2.findContours`` (outer borders and holes);
    contour points ``(X, Y)`` map back to ``((X + 0.5) / 2, (Y + 0.5) / 2)``, a quarter pixel
    inside the outer pixel corners. pycocotools fills a pixel when its centre lies inside, so the
    polygons rasterise back to exactly the same pixels, and a single pixel still gives a valid
    4-point polygon. COCO merges polygons by union, so each hole is spliced into its outer
    polygon through a bridge walked there and back (a "keyhole"): the bridge cancels out under
    both the even-odd and the non-zero fill rule, and the hole stays empty.
    """
    up = np.repeat(np.repeat(binary.astype(np.uint8), 2, axis=0), 2, axis=1)
    contours, hierarchy = cv2.findContours(up, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return []
    outers: list[int] = []
    holes: dict[int, list[int]] = {}
    for k, (_, _, _, parent) in enumerate(hierarchy[0]):
        if parent < 0:
            outers.append(k)
        else:
            holes.setdefault(int(parent), []).append(k)
    polygons = []
    for k in outers:
        outer = contours[k].reshape(-1, 2)
        parts = [outer]
        for h in holes.get(k, []):
            hole = contours[h].reshape(-1, 2)
            parts += [outer[:1], hole, hole[:1]]
        points = (np.concatenate(parts).astype(np.float64) + 0.5) / 2
        polygons.append([float(v) for v in points.ravel()])
    return polygons


def _keypoint_annotation(image_id: int, spec: ObjectSpec, points: np.ndarray) -> Json | None:
    """Annotation of one keypoint object's ``(P, 3)`` points, or None if none is placed."""
    pts = np.asarray(points, dtype=np.float64)
    n = len(spec.keypoint_names)
    if pts.shape != (n, 3):
        raise ValueError(f"object {spec.id} needs keypoints of shape ({n}, 3), got {pts.shape}")
    placed = np.isfinite(pts[:, 0]) & np.isfinite(pts[:, 1])
    if not placed.any():
        return None
    flat: list[float] = []
    for (x, y, visible), ok in zip(pts, placed):
        flat += [float(x), float(y), 2 if visible > 0 else 1] if ok else [0, 0, 0]
    x0, y0 = pts[placed, :2].min(axis=0)
    x1, y1 = pts[placed, :2].max(axis=0)
    return {
        "image_id": image_id,
        "category_id": spec.id,
        "keypoints": flat,
        "num_keypoints": int(placed.sum()),
        "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
        "area": float((x1 - x0) * (y1 - y0)),
        "iscrowd": 0,
    }


def _numbered(annotations: list[Json]) -> list[Json]:
    """Sort annotations by (image id, category id) and give them ids 1, 2, ..."""
    ordered = sorted(annotations, key=lambda a: (a["image_id"], a["category_id"]))
    return [{"id": k, **a} for k, a in enumerate(ordered, start=1)]


def _info(video_name: str) -> Json:
    """The COCO ``info`` block, naming Trackpaint and its version."""
    now = dt.datetime.now(dt.timezone.utc)
    return {
        "description": f"Trackpaint annotations of {video_name}",
        "video": video_name,
        "version": __version__,
        "contributor": f"Trackpaint {__version__}",
        "year": now.year,
        "date_created": now.isoformat(timespec="seconds"),
        "url": "",
    }


def _image_entry(index: int, file_name: str, frame_hw: tuple[int, int]) -> Json:
    """The COCO image entry of frame ``index``."""
    return {
        "id": index + 1,
        "file_name": file_name,
        "height": frame_hw[0],
        "width": frame_hw[1],
        "frame_index": index,
    }


def _category(obj: ObjectSpec) -> Json:
    """The COCO category of one object (keypoint objects: names and 1-based skeleton)."""
    category: Json = {
        "id": obj.id,
        "name": obj.name,
        "supercategory": "object",
        "color": [int(c) for c in obj.color],
    }
    if obj.kind == "keypoints":
        category["keypoints"] = list(obj.keypoint_names)
        category["skeleton"] = [[a + 1, b + 1] for a, b in obj.skeleton]
    return category


def coco_text(document: Json) -> bytes:
    """The file bytes of ``document``: compact JSON with the authorship block first in ``info``
    (see the module docstring). ``document["info"]`` must be a non-empty object."""
    text = json.dumps(document, separators=(",", ":")).encode("utf-8")
    opening = _MARKER_PREFIX[: -len(b'"trackpaint":')]  # b'{"info":{'
    if not text.startswith(opening) or text[len(opening) :].startswith(b"}"):
        raise ValueError("the COCO document must start with a non-empty info object")
    body = text[len(opening) :]
    marker = {
        "kind": COCO_KIND,
        "version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return _MARKER_PREFIX + json.dumps(marker, separators=(",", ":")).encode() + b"," + body


def coco_problem(path: Path) -> str | None:
    """None when ``path`` is a COCO file Trackpaint wrote and nobody changed since, else why
    not (the proof is described in the module docstring)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_MARKER_PREFIX) + 4096)
            if not head.startswith(_MARKER_PREFIX):
                return 'is not a COCO file written by Trackpaint (no "trackpaint" block in info)'
            decoder = json.JSONDecoder()
            rest = head[len(_MARKER_PREFIX) :].decode("utf-8", errors="replace")
            try:
                marker, end = decoder.raw_decode(rest)
            except ValueError:
                return "is not a COCO file written by Trackpaint (malformed trackpaint block)"
            if not isinstance(marker, dict) or marker.get("kind") != COCO_KIND:
                return "is not a COCO file written by Trackpaint (malformed trackpaint block)"
            offset = len(_MARKER_PREFIX) + len(rest[:end].encode("utf-8"))
            f.seek(offset)
            if f.read(1) != b",":
                return "is not a COCO file written by Trackpaint (malformed trackpaint block)"
            digest = hashlib.sha256()
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if digest.hexdigest() != marker.get("sha256"):
        return "was changed after Trackpaint wrote it"
    return None


def _write_json(tmp: Path, document: Json, path: Path) -> None:
    """Write the COCO bytes of ``document`` to the new file ``tmp`` and fsync it; OSError ->
    ExportError naming the target ``path``."""
    data = coco_text(document)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise ExportError(f"cannot write COCO file ({exc.strerror or exc})", path) from exc


# --- import helpers ---------------------------------------------------------------------------


def _load_json(path: Path) -> Json:
    """Parse the file as a JSON object; OSError / bad JSON -> ExportError."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except OSError as exc:
        raise ExportError(f"cannot read COCO file ({exc.strerror or exc})", path) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"not valid JSON ({exc})", path) from exc
    if not isinstance(document, dict):
        raise ExportError("not a COCO file (top level is not a JSON object)", path)
    return document


def _describe(exc: Exception) -> str:
    """One-line description of a parsing error (KeyError -> 'missing key ...')."""
    if isinstance(exc, KeyError):
        return f"missing key {exc.args[0]!r}"
    return str(exc)


def _require_list(document: Json, key: str) -> list[Any]:
    """``document[key]``, which must be a list."""
    if key not in document:
        raise KeyError(key)
    value = document[key]
    if not isinstance(value, list):
        raise TypeError(f"'{key}' must be a list")
    return value


def _image_size(images: list[Json]) -> tuple[int, int]:
    """The common ``(H, W)`` of all images."""
    sizes = {(int(img["height"]), int(img["width"])) for img in images}
    if not sizes:
        raise ValueError("no images")
    if len(sizes) > 1:
        raise ValueError(f"images have different sizes {sorted(sizes)}")
    h, w = sizes.pop()
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {h}x{w}")
    return h, w


def _frame_indices(images: list[Json]) -> dict[int, int]:
    """Map image id -> frame index (``frame_index`` if all images have one, else id order)."""
    ids = [int(img["id"]) for img in images]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate image ids")
    if all("frame_index" in img for img in images):
        frames = [int(img["frame_index"]) for img in images]
        if len(set(frames)) != len(frames) or min(frames) < 0:
            raise ValueError("frame_index values must be unique and >= 0")
        return dict(zip(ids, frames))
    return {image_id: k for k, image_id in enumerate(sorted(ids))}


def _object_from_category(category: Json) -> ObjectSpec:
    """The ObjectSpec of one COCO category (ValueError if ObjectSpec rejects it)."""
    obj_id = int(category["id"])
    names = category.get("keypoints") or []
    if not isinstance(names, list):
        raise TypeError(f"category {obj_id}: 'keypoints' must be a list")
    skeleton = tuple((int(a) - 1, int(b) - 1) for a, b in category.get("skeleton") or [])
    return ObjectSpec(
        id=obj_id,
        name=str(category["name"]),
        color=_category_color(category, obj_id),
        kind="keypoints" if names else "mask",
        keypoint_names=tuple(str(n) for n in names),
        skeleton=skeleton if names else (),
    )


def _category_color(category: Json, obj_id: int) -> tuple[int, int, int]:
    """The category's ``"color"`` if it is three ints in 0..255, else the DAVIS palette colour."""
    color = category.get("color")
    if (
        isinstance(color, list)
        and len(color) == 3
        and all(isinstance(c, int) and 0 <= c <= 255 for c in color)
    ):
        return color[0], color[1], color[2]
    if not 0 <= obj_id <= 255:
        raise ValueError(f"category id {obj_id} out of range 1..255")
    r, g, b = (int(c) for c in davis_palette()[obj_id])
    return r, g, b


def _frames_from_annotations(
    annotations: list[Json],
    frame_of_image: Mapping[int, int],
    objects: Sequence[ObjectSpec],
    frame_hw: tuple[int, int],
) -> dict[int, FrameLabels]:
    """Rebuild per-frame masks ``(H, W) uint8`` and keypoints ``(P, 3) float32``."""
    by_id = {obj.id: obj for obj in objects}
    has_masks = any(obj.kind == "mask" for obj in objects)
    masks: dict[int, np.ndarray] = {}
    keypoints: dict[int, dict[int, np.ndarray]] = {}
    for ann in annotations:
        image_id, obj_id = int(ann["image_id"]), int(ann["category_id"])
        if image_id not in frame_of_image:
            raise ValueError(f"annotation {ann.get('id')}: unknown image id {image_id}")
        if obj_id not in by_id:
            raise ValueError(f"annotation {ann.get('id')}: unknown category id {obj_id}")
        frame, spec = frame_of_image[image_id], by_id[obj_id]
        kps = keypoints.setdefault(frame, {})
        if has_masks and frame not in masks:
            masks[frame] = np.zeros(frame_hw, dtype=np.uint8)
        if spec.kind == "keypoints":
            if obj_id in kps:
                raise ValueError(
                    f"image {image_id} has two annotations of keypoint object {obj_id}"
                )
            kps[obj_id] = coco_to_keypoints(ann["keypoints"], len(spec.keypoint_names))
        else:
            masks[frame][decode_segmentation(ann["segmentation"], frame_hw)] = obj_id
    return {
        frame: FrameLabels(mask=masks.get(frame), keypoints=keypoints[frame])
        for frame in sorted(keypoints)
    }


def coco_to_keypoints(flat: Sequence[float], num_points: int) -> np.ndarray:
    """COCO ``[x, y, v, ...]`` -> ``(P, 3) float32`` rows ``(x, y, visible)``.

    v = 0 -> unplaced ``(nan, nan, 0)``; v = 1 -> ``(x, y, 0)``; v = 2 -> ``(x, y, 1)``.
    """
    if not isinstance(flat, list) or len(flat) != 3 * num_points:
        raise ValueError(f"'keypoints' must be a list of {3 * num_points} numbers")
    triplets = np.asarray(flat, dtype=np.float64).reshape(num_points, 3)
    v = triplets[:, 2]
    if not np.isin(v, (0, 1, 2)).all():
        raise ValueError("keypoint visibility must be 0, 1 or 2")
    points = np.empty((num_points, 3), dtype=np.float32)
    points[:, :2] = np.where((v > 0)[:, None], triplets[:, :2], np.nan)
    points[:, 2] = v == 2
    return points


def decode_segmentation(segmentation: Any, frame_hw: tuple[int, int]) -> np.ndarray:
    """A COCO segmentation (polygons, RLE or uncompressed RLE) -> ``(H, W) bool``.

    Raises ValueError when it is malformed or of another size than ``frame_hw``.
    """
    h, w = frame_hw
    if isinstance(segmentation, list):
        if not segmentation:
            return np.zeros(frame_hw, dtype=bool)
        for poly in segmentation:
            if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2:
                raise ValueError("a polygon must be a list of at least 3 (x, y) pairs")
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
    elif isinstance(segmentation, dict):
        rle = _checked_rle(segmentation, h, w)
    else:
        raise TypeError("segmentation must be a polygon list or an RLE object")
    return mask_utils.decode(rle).astype(bool)


def _checked_rle(segmentation: Json, h: int, w: int) -> Json:
    """A pycocotools RLE from a COCO RLE object, after checking its size and run lengths."""
    size = [int(v) for v in segmentation["size"]]
    if size != [h, w]:
        raise ValueError(f"RLE size {size} differs from the image size {[h, w]}")
    counts = segmentation["counts"]
    if isinstance(counts, list):
        if any(not isinstance(c, int) or c < 0 for c in counts) or sum(counts) != h * w:
            raise ValueError(f"uncompressed RLE counts must be >= 0 and sum to {h * w}")
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    if not isinstance(counts, str):
        raise TypeError("RLE counts must be a string or a list")
    if sum(_rle_string_counts(counts)) != h * w:
        raise ValueError(f"RLE counts do not sum to {h * w} pixels")
    return {"size": [h, w], "counts": counts.encode("ascii")}


def _rle_string_counts(counts: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString`` in Python).

    pycocotools does not validate these strings and decodes a bad one into garbage, so they are
    checked here first. Raises ValueError on characters outside the alphabet, a truncated
    number or a negative run.
    """
    runs: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            if p >= len(counts):
                raise ValueError("truncated RLE counts string")
            c = ord(counts[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"invalid character {counts[p]!r} in RLE counts")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            raise ValueError("negative run length in RLE counts")
        runs.append(x)
    return runs


def frame_file_names(video_path: Path, num_frames: int) -> list[str]:
    """COCO file names: the frame files of a folder, else ``<video stem>/NNNNN.jpg``."""
    if video_path.is_dir():
        files = list_frame_files(video_path)
        if len(files) == num_frames:
            return [f"{video_path.name}/{f.name}" for f in files]
    return [f"{video_path.stem}/{i:05d}.jpg" for i in range(num_frames)]
