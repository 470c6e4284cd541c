"""Loader fuzz targets and hypothesis strategies, shared by the fast tests and the benchmark.

Each ``target_*`` function feeds one input to a loader and exercises what a user action would
do next (decode every frame, read every stored frame, ...). The only acceptable outcomes are
success or the loader's documented :class:`~tracker_core.errors.TrackpaintError` subclass; any
other exception escapes and is a finding.

Inputs are mutations of valid seeds (a small MJPG video and its frames as PNGs, a mask PNG, a
saved project, a COCO export): byte-level flips, insertions and truncations, plus
structure-aware edits (SQL updates of a project's rows, replaced values inside the COCO JSON)
that reach the checks behind the container formats.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from hypothesis import strategies as st

from tests.fixtures_video import make_moving_square_frames, write_video
from tracker_core.errors import ExportError, MaskError, ProjectError, VideoError
from tracker_core.export import export_coco, import_coco
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.masks import load_mask, read_indexed_png, write_indexed_png
from tracker_core.project import FrameState, Project
from tracker_core.video import VideoSource

N, H, W = 6, 32, 48
_MASK_OBJECT = ObjectSpec(1, "blob", (200, 0, 0))
_KP_OBJECT = ObjectSpec(2, "pts", (0, 0, 200), "keypoints", ("a", "b"), ((0, 1),))


# --------------------------------------------------------------------------- seeds


@functools.lru_cache(maxsize=1)
def _seed_dir() -> Path:
    """A temporary folder for the seed files, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="trackpaint-fuzz-seeds-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


@functools.lru_cache(maxsize=1)
def seed_frames() -> tuple[np.ndarray, ...]:
    """``N`` RGB frames ``(H, W, 3) uint8`` of the moving-square clip."""
    frames, _ = make_moving_square_frames(N, H, W)
    return tuple(frames)


@functools.lru_cache(maxsize=1)
def seed_png_frames() -> tuple[bytes, ...]:
    """The seed frames encoded as PNG files."""
    out = []
    for frame in seed_frames():
        ok, data = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        assert ok
        out.append(data.tobytes())
    return tuple(out)


@functools.lru_cache(maxsize=1)
def seed_video() -> bytes:
    """The seed frames as a small MJPG ``.avi``."""
    return write_video(_seed_dir() / "seed.avi", list(seed_frames())).read_bytes()


@functools.lru_cache(maxsize=1)
def seed_mask_png() -> bytes:
    """An indexed DAVIS-palette PNG mask with ids 0, 1 and 2."""
    mask = np.zeros((H, W), np.uint8)
    mask[4:20, 5:25] = 1
    mask[10:30, 30:44] = 2
    path = _seed_dir() / "mask.png"
    write_indexed_png(path, mask)
    return path.read_bytes()


def _seed_labels(t: int) -> FrameLabels:
    mask = np.zeros((H, W), np.uint8)
    mask[2 + t : 14 + t, 3 + 2 * t : 20 + 2 * t] = 1
    points = np.array([[5.0 + t, 6.0, 1.0], [np.nan, np.nan, 0.0]], np.float32)
    return FrameLabels(mask, {2: points})


@functools.lru_cache(maxsize=1)
def seed_project() -> bytes:
    """A saved project: one mask and one keypoint object, frames painted and propagated."""
    project = Project.new(_seed_dir() / "clip.avi", N, H, W, [_MASK_OBJECT, _KP_OBJECT])
    try:
        for t in range(N - 1):
            state = FrameState.PAINTED if t % 2 == 0 else FrameState.PROPAGATED
            source = None if state == FrameState.PAINTED else t - 1
            project.set_frame(t, _seed_labels(t), state, confidence=0.5, source=source)
        return project.save(_seed_dir() / "seed.trackpaint").read_bytes()
    finally:
        project.close()


@functools.lru_cache(maxsize=1)
def seed_coco() -> str:
    """A COCO export (RLE masks and keypoints) of the seed labels, as JSON text."""
    path = _seed_dir() / "seed.json"
    frames = [(t, _seed_labels(t)) for t in range(N - 1)]
    export_coco(path, [_MASK_OBJECT, _KP_OBJECT], frames, (H, W), "{:05d}.jpg".format, N)
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- strategies


@st.composite
def mutated_bytes(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few byte flips, inserted/deleted chunks, and maybe a truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(("flip", "set", "insert", "delete")))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[pos] = draw(st.sampled_from((0x00, 0xFF, 0x7F, 0x80, 0x01)))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@st.composite
def frame_folders(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """Files of a frame folder: good PNG frames, truncated or mutated ones, random bytes,
    a frame of another size, and non-image names."""
    pngs = seed_png_frames()
    odd = cv2.imencode(".png", np.zeros((H // 2, W, 3), np.uint8))[1].tobytes()
    files = []
    for i in range(draw(st.integers(0, N))):
        kind = draw(st.sampled_from(("good", "good", "truncated", "mutated", "random", "odd")))
        data = pngs[i % len(pngs)]
        if kind == "truncated":
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "mutated":
            data = draw(mutated_bytes(data))
        elif kind == "random":
            data = draw(st.binary(max_size=256))
        elif kind == "odd":
            data = odd
        ext = draw(st.sampled_from((".png", ".png", ".jpg", ".bmp", ".txt", "")))
        files.append((f"{i:05d}{ext}", data))
    return files


_SQL_VALUES = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=40),
    st.sampled_from(
        (
            "[]",
            "[1]",
            "[7]",
            "{}",
            '{"2": [[1, 2, 1]]}',
            '{"2": 3}',
            '{"2": [1, 2, 3]}',
            '{"9": [[1, 2, 1], [3, 4, 0]]}',
            '{"2": [[1, 2, 1], [null, null, 0]]}',
            '[{"id": 1, "name": "x", "color": [1, 2, 3]}]',
            '[{"id": 1, "name": "x", "color": [1, 2, 3], "kind": "keypoints"}]',
            '[{"id": 2, "name": "p", "color": [1, 2, 3], "kind": "keypoints", '
            '"keypoint_names": ["a"], "skeleton": [[0, 5]]}]',
            "1e999",
            "-1",
            "0",
            "99999999999",
        )
    ),
)
_FRAME_COLUMNS = ("state", "confidence", "source", "ids", "keypoints", "mask")
_META_KEYS = ("format", "schema_version", "video_path", "num_frames", "height", "width", "objects")


_SIZE_KEYS = ("num_frames", "height", "width")
MAX_SAFE_SIZE = 10**5
"""Largest frame count/size the fast tests write into a project. ``Project.open`` refuses
implausible sizes now (a fuzz finding: it used to allocate per-frame arrays for any
``num_frames``); the bound keeps a regression from eating the test machine's memory."""


def _safe_size(value: Any) -> bool:
    try:
        return abs(int(float(value))) <= MAX_SAFE_SIZE
    except (TypeError, ValueError, OverflowError):
        return True  # not a number: refused by the parser, allocates nothing


@st.composite
def project_edits(draw: st.DrawFn, huge_sizes: bool = True) -> list[tuple[str, tuple[Any, ...]]]:
    """SQL statements that hand-edit a saved project's rows and metadata. With
    ``huge_sizes=False``, size metadata stays within :data:`MAX_SAFE_SIZE`."""
    edits: list[tuple[str, tuple[Any, ...]]] = []
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            column = draw(st.sampled_from(_FRAME_COLUMNS))
            row = draw(st.integers(0, N - 1))
            edits.append((f"UPDATE frames SET {column}=? WHERE idx=?", (draw(_SQL_VALUES), row)))
        else:
            key = draw(st.sampled_from(_META_KEYS))
            value = draw(_SQL_VALUES)
            if key in _SIZE_KEYS and not huge_sizes and not _safe_size(value):
                value = draw(st.integers(-3, MAX_SAFE_SIZE))
            edits.append(("UPDATE meta SET value=? WHERE key=?", (value, key)))
    return edits


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def _json_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _json_paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node[:3]):
            paths += _json_paths(value, (*prefix, i))
    return paths


@st.composite
def mutated_coco(draw: st.DrawFn) -> str:
    """The seed COCO JSON with a few values replaced or deleted (structure-aware), or its text
    mutated byte-wise."""
    if draw(st.integers(0, 3)) == 0:
        return draw(mutated_bytes(seed_coco().encode())).decode("utf-8", "replace")
    document = json.loads(seed_coco())
    paths = _json_paths(document)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = document
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = draw(_JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit changed the shape under this path
    return json.dumps(document)


# --------------------------------------------------------------------------- targets


def target_video_folder(files: list[tuple[str, bytes]], workdir: Path) -> None:
    """Open a frame folder and decode every frame; VideoError is the only allowed failure."""
    folder = workdir / "frames"
    folder.mkdir()
    for name, data in files:
        (folder / name).write_bytes(data)
    try:
        with VideoSource.open(folder) as video:
            for frame in video:
                assert frame.shape == (video.height, video.width, 3)
    except VideoError:
        pass


def target_video_file(data: bytes, workdir: Path) -> None:
    """Open a (mutated) video file and decode every frame; only VideoError may fail it."""
    path = workdir / "video.avi"
    path.write_bytes(data)
    try:
        with VideoSource.open(path) as video:
            assert len(video) >= 1
            for index in sorted({0, len(video) // 2, len(video) - 1}):
                frame = video.frame(index)
                assert frame.shape == (video.height, video.width, 3)
    except VideoError:
        pass


def target_mask_png(data: bytes, workdir: Path) -> None:
    """Load mask bytes with load_mask and read_indexed_png; only MaskError may fail them."""
    path = workdir / "mask.png"
    path.write_bytes(data)
    for load in (lambda: load_mask(path, (H, W)), lambda: read_indexed_png(path)):
        try:
            mask = load()
        except MaskError:
            continue
        assert mask.dtype == np.uint8 and mask.ndim == 2


def _use_project(path: Path) -> None:
    """Open a project and do what a GUI does on load: states, every frame's labels, objects."""
    try:
        with Project.open(path) as project:
            project.states()
            project.keyframes()
            for t in sorted({*range(min(project.num_frames, 3 * N)), project.num_frames - 1}):
                labels = project.labels(t)
                if labels.mask is not None:
                    assert labels.mask.shape == (project.height, project.width)
            for obj in project.objects:
                project.frames_with_object(obj.id)
    except ProjectError:
        pass


def target_project_bytes(data: bytes, workdir: Path) -> None:
    """Open a (byte-mutated) project file and read it; only ProjectError may fail it."""
    path = workdir / "fuzz.trackpaint"
    path.write_bytes(data)
    _use_project(path)


def target_project_edits(edits: list[tuple[str, tuple[Any, ...]]], workdir: Path) -> None:
    """Hand-edit a valid project with SQL, then open and read it; only ProjectError allowed."""
    path = workdir / "edited.trackpaint"
    path.write_bytes(seed_project())
    db = sqlite3.connect(path)
    try:
        with db:
            for sql, params in edits:
                try:
                    db.execute(sql, params)
                except sqlite3.IntegrityError:
                    continue  # e.g. NULL into a NOT NULL column: not a file a user could get
    finally:
        db.close()
    _use_project(path)


def target_coco(text: str, workdir: Path) -> None:
    """Import a (mutated) COCO file; only ExportError may fail it."""
    path = workdir / "fuzz.json"
    path.write_text(text, encoding="utf-8")
    try:
        _objects, frames, hw = import_coco(path)
    except ExportError:
        return
    for labels in frames.values():
        if labels.mask is not None:
            assert labels.mask.shape == hw


def in_fresh_dir(target: Callable[[Any, Path], None], value: Any) -> None:
    """Run ``target(value, workdir)`` in a new temporary folder (removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="trackpaint-fuzz-") as tmp:
        target(value, Path(tmp))


TARGETS: dict[str, tuple[Callable[[Any, Path], None], Callable[[], st.SearchStrategy[Any]]]] = {
    "video folder": (target_video_folder, frame_folders),
    "video file": (target_video_file, lambda: mutated_bytes(seed_video())),
    "mask png": (target_mask_png, lambda: mutated_bytes(seed_mask_png())),
    "project bytes": (target_project_bytes, lambda: mutated_bytes(seed_project())),
    "project edits": (target_project_edits, project_edits),
    "coco json": (target_coco, mutated_coco),
}
"""Name -> (target, strategy factory); strategies are built lazily (the seeds write files)."""
