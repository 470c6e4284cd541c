"""DAVIS export/import: one indexed PNG (DAVIS palette, 0 = background) per frame.

Layout: ``<out_dir>/Annotations/<video_name>/00000.png ...``, one file for every frame
``0 .. num_frames - 1``; frames without labels get an all-zero mask. Keypoints are not part of
the DAVIS format and are ignored. The folder also holds Trackpaint's manifest
``.trackpaint-output.json`` (a hidden file DAVIS tools skip), which proves the folder is an export
a later export may replace.

Safety and atomicity come from :class:`tracker_core.outputs.StagedFolder`: the export refuses a
target that is an input (``inputs``) or holds anything Trackpaint did not write -- the video's
own frames, a README, an edited PNG -- and deletes nothing there; it writes every PNG into a
hidden staging folder beside the target (``Annotations/.<video_name>.<pid>-<random>.partial``)
and, only when all frames are written, swaps it into place atomically. Any failure removes the
staging folder (and an ``Annotations/`` folder the export created) and leaves a previous export
untouched, so no half-written export is ever visible under the target name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from tracker_core.errors import ExportError, MaskError
from tracker_core.export.checks import check_frame_hw, check_frame_index
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.masks import davis_palette, load_mask, write_indexed_png
from tracker_core.outputs import Inputs, StagedFolder, reason, recover_interrupted_swap

ProgressFn = Callable[[int, int], None]


def davis_frame_name(index: int) -> str:
    """File name of frame ``index`` in a DAVIS annotation folder: 5-digit index + ``.png``."""
    return f"{index:05d}.png"


def export_davis(
    out_dir: Path,
    frames: Iterable[tuple[int, FrameLabels]],
    num_frames: int,
    frame_hw: tuple[int, int],
    video_name: str,
    progress: ProgressFn | None = None,
    inputs: Inputs = (),
) -> Path:
    """Write the masks of a video as DAVIS indexed PNGs and return the annotation folder.

    Args:
        out_dir: dataset root; the PNGs go to ``out_dir/Annotations/<video_name>/``.
        frames: ``(frame index, labels)`` pairs in any order, each index at most once; labels
            masks are ``(H, W) uint8`` ids with ``(H, W) == frame_hw`` (or None = empty).
        num_frames: length of the video; every frame ``0 .. num_frames - 1`` gets a file.
        frame_hw: ``(H, W)`` of every mask.
        video_name: name of the sequence folder (a single path component).
        progress: called as ``progress(files_written, num_frames)`` after each file.
        inputs: ``(label, path)`` of the files the export reads (video, project); the target
            may not be, lie inside or contain any of them.

    Raises:
        ExportError: bad arguments or labels, a target that is an input or not a previous
            Trackpaint export, or the folder cannot be written (the message names the path);
            nothing is left behind and a previous export stays intact.
    """
    _check_video_name(video_name)
    hw = check_frame_hw(frame_hw)
    if num_frames < 0:
        raise ExportError(f"number of frames must be >= 0, got {num_frames}")
    target = davis_folder(out_dir, video_name)
    with StagedFolder(target, "davis", inputs) as staging:
        _write_all_frames(staging, target, frames, num_frames, hw, progress)
    return target


def davis_folder(out_dir: Path, video_name: str) -> Path:
    """The sequence folder an export of ``video_name`` under ``out_dir`` writes."""
    return Path(out_dir) / "Annotations" / video_name


def import_davis(
    folder: Path, frame_hw: tuple[int, int] | None = None
) -> tuple[list[ObjectSpec], dict[int, FrameLabels]]:
    """Read a folder of DAVIS masks (``NNNNN.png``) back into objects and per-frame labels.

    The frame index of a file is the last run of digits in its name. Every PNG becomes a frame,
    all-zero ones included (the caller may drop them with ``FrameLabels.is_empty``). Objects are
    the ids present in any frame, named ``"object <id>"`` and coloured from the DAVIS palette.

    Args:
        folder: the sequence folder (``.../Annotations/<video>``).
        frame_hw: expected ``(H, W)``; None = take it from the first file, all must agree.

    Returns:
        ``(objects sorted by id, {frame index: FrameLabels(mask (H, W) uint8)})``.

    Raises:
        ExportError: not a folder, no PNGs, a name without digits, two files for one frame,
            an unreadable mask or a size mismatch (the message names the file).
    """
    folder = Path(folder)
    recover_interrupted_swap(folder)
    if not folder.is_dir():
        raise ExportError("not a folder of DAVIS masks", folder)
    files = _indexed_png_files(folder)
    masks: dict[int, np.ndarray] = {}
    hw = None if frame_hw is None else check_frame_hw(frame_hw)
    for index, path in sorted(files.items()):
        mask = _read_mask(path, hw)
        hw = (mask.shape[0], mask.shape[1])
        masks[index] = mask
    objects = objects_from_ids(_ids_present(masks.values()))
    return objects, {index: FrameLabels(mask=mask) for index, mask in masks.items()}


def _check_video_name(video_name: str) -> None:
    """Reject names that are not a single, ordinary path component."""
    if (
        not video_name
        or video_name in (".", "..")
        or video_name.startswith(".")
        or "/" in video_name
        or "\\" in video_name
        or "\0" in video_name
    ):
        raise ExportError(f"invalid video name {video_name!r} for a DAVIS folder")


def _write_all_frames(
    staging: Path,
    target: Path,
    frames: Iterable[tuple[int, FrameLabels]],
    num_frames: int,
    frame_hw: tuple[int, int],
    progress: ProgressFn | None,
) -> None:
    """Write the labelled frames, then an all-zero mask for every frame not given."""
    written: set[int] = set()
    for index, labels in frames:
        i = check_frame_index(index, num_frames, written, target)
        _write_frame(staging, target, i, _frame_mask(labels, frame_hw, i, target))
        written.add(i)
        if progress is not None:
            progress(len(written), num_frames)
    empty = np.zeros(frame_hw, dtype=np.uint8)
    for i in range(num_frames):
        if i not in written:
            _write_frame(staging, target, i, empty)
            written.add(i)
            if progress is not None:
                progress(len(written), num_frames)


def _frame_mask(
    labels: FrameLabels, frame_hw: tuple[int, int], index: int, target: Path
) -> np.ndarray:
    """The ``(H, W) uint8`` mask of one frame (zeros when it has none), checked for size."""
    if labels.mask is None:
        return np.zeros(frame_hw, dtype=np.uint8)
    mask = np.asarray(labels.mask)
    if mask.dtype != np.uint8 or mask.shape != frame_hw:
        raise ExportError(
            f"frame {index}: mask must be {frame_hw[0]}x{frame_hw[1]} uint8, "
            f"got shape {mask.shape} {mask.dtype}",
            target,
        )
    return mask


def _write_frame(staging: Path, target: Path, index: int, mask: np.ndarray) -> None:
    """Write one ``(H, W) uint8`` mask into the staging folder; OSError -> ExportError."""
    name = davis_frame_name(index)
    try:
        write_indexed_png(staging / name, mask)
    except (OSError, ExportError) as exc:
        raise ExportError(f"cannot write {name} ({reason(exc)})", target) from exc


def _indexed_png_files(folder: Path) -> dict[int, Path]:
    """Map frame index -> PNG path for the visible PNG files of ``folder``."""
    files: dict[int, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() != ".png" or not path.is_file():
            continue
        digits = re.findall(r"\d+", path.stem)
        if not digits:
            raise ExportError("no frame number in the file name", path)
        index = int(digits[-1])
        if index in files:
            raise ExportError(f"frame {index} also in {files[index].name}", path)
        files[index] = path
    if not files:
        raise ExportError("no PNG masks in the folder", folder)
    return files


def _read_mask(path: Path, frame_hw: tuple[int, int] | None) -> np.ndarray:
    """Read one mask file as ``(H, W) uint8`` ids; MaskError -> ExportError."""
    try:
        return load_mask(path, frame_hw)
    except MaskError as exc:
        raise ExportError(f"invalid DAVIS mask ({exc})") from exc


def _ids_present(masks: Iterable[np.ndarray]) -> list[int]:
    """Sorted non-zero ids occurring in any of the ``(H, W) uint8`` masks."""
    seen = np.zeros(256, dtype=bool)
    for mask in masks:
        seen |= np.bincount(mask.ravel(), minlength=256) > 0
    return [int(i) for i in np.flatnonzero(seen[1:]) + 1]


def objects_from_ids(ids: Iterable[int]) -> list[ObjectSpec]:
    """Mask objects ``"object <id>"`` coloured with the DAVIS palette entry of their id."""
    palette = davis_palette()
    objects = []
    for i in ids:
        r, g, b = (int(c) for c in palette[i])
        objects.append(ObjectSpec(id=i, name=f"object {i}", color=(r, g, b)))
    return objects
