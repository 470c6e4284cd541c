"""What ``trackpaint propagate`` writes: a folder of masks and/or a project to correct in the GUI.

:class:`PropagationWriter` takes the keyframe's mask and then each propagated frame, and writes

- ``masks_dir``: ``NNNNN.png`` (DAVIS palette) for every frame -- a
  :class:`~tracker_core.outputs.StagedFolder` of kind ``"propagate-masks"``;
- ``project_path``: a ``.trackpaint`` project on the video with the keyframe PAINTED and every
  propagated frame PROPAGATED with its confidence and ``source`` = the keyframe -- the provenance
  a :class:`~tracker_core.session.Session` propagation job stores, so the GUI opens it for
  correction (painting over a frame turns the frames propagated through it stale). Objects: one
  mask object per id of the initial mask, ``"object <id>"`` in the DAVIS palette colour. The
  file is stamped as an output (:func:`tracker_core.project.stamp_output`): a later run replaces
  it only while nobody has changed it (:func:`project_problem`); once corrected and saved, it is
  the user's and is refused.

Both targets are checked when the writer is entered, before any frame is computed (not an input,
not overlapping each other, nothing foreign there). Both are written to hidden staging copies
and committed only when every frame is done, project first, then masks; a failure or a kill
leaves each target holding its previous complete content (or nothing, if it had none).

:func:`prelabel_video` is the whole pre-labelling run -- open the video, load the seed (a mask
file or an existing project's earliest keyframe), propagate both ways, write through the
writer -- and the one code path behind ``trackpaint propagate`` and ``trackpaint batch``.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import numpy as np

from tracker_core import __version__
from tracker_core.errors import ExportError, MaskError, ProjectError, TrackpaintError
from tracker_core.export.davis import davis_frame_name, objects_from_ids
from tracker_core.labels import FrameLabels
from tracker_core.masks import load_mask, write_indexed_png
from tracker_core.outputs import Inputs, StagedFile, StagedFolder, reason, write_error
from tracker_core.project import FrameState, Project, mask_ids, output_stamp, stamp_output
from tracker_core.propagator import Propagator
from tracker_core.video import DamagedFrame, VideoSource

MASKS_KIND = "propagate-masks"
PROJECT_KIND = "propagate-project"


def project_problem(path: Path) -> str | None:
    """None when ``path`` is a project written by ``trackpaint propagate --project`` and not
    changed since, else why it may not be replaced."""
    stamp = output_stamp(path)
    if stamp is None:
        return (
            "is not a project written by trackpaint propagate, or was changed since "
            "(corrections are yours)"
        )
    return None


class PropagationWriter:
    """Collect one propagation run's results into the requested outputs; see the module doc.

    Use as a context manager::

        with PropagationWriter(video, n, (h, w), k, mask, masks_dir=out, inputs=...) as sink:
            for result in propagate(...):
                sink.add(result.index, result.labels.mask, result.confidence)

    Args:
        video_path: the video file or frame folder (recorded in the project).
        num_frames: length of the video.
        frame_hw: ``(H, W)`` of the video.
        keyframe: index of the frame the initial mask belongs to.
        keyframe_mask: ``(H, W) uint8`` ids of the initial mask (not all background).
        masks_dir: folder for ``NNNNN.png`` masks, or None.
        project_path: ``.trackpaint`` file to write, or None.
        inputs: ``(label, path)`` of what the run reads; no output may be, lie inside or
            contain any of them.
        scratch_dir: where the project's scratch database lives while it is built.

    Raises:
        ExportError: on entry, a refused target (one line naming it); on exit, a failed write.
    """

    def __init__(
        self,
        video_path: Path,
        num_frames: int,
        frame_hw: tuple[int, int],
        keyframe: int,
        keyframe_mask: np.ndarray,
        *,
        masks_dir: Path | None = None,
        project_path: Path | None = None,
        inputs: Inputs = (),
        scratch_dir: Path | None = None,
    ) -> None:
        if masks_dir is None and project_path is None:
            raise ExportError("nothing to write: give a mask folder (--out) and/or --project")
        self._video = Path(video_path)
        self._n, self._hw = int(num_frames), (int(frame_hw[0]), int(frame_hw[1]))
        self.keyframe = int(keyframe)
        self._keyframe_mask = keyframe_mask
        inputs = tuple(inputs)
        self.masks_dir = None if masks_dir is None else Path(masks_dir)
        self.project_path = None if project_path is None else Path(project_path)
        self._masks = None if masks_dir is None else StagedFolder(masks_dir, MASKS_KIND, inputs)
        project_inputs = (*inputs, ("mask output folder", self.masks_dir))
        self._project_file = (
            None
            if project_path is None
            else StagedFile(Path(project_path), project_problem, project_inputs)
        )
        self._scratch_dir = scratch_dir
        self._project: Project | None = None
        self.written = 0

    def __enter__(self) -> PropagationWriter:
        try:
            if self._project_file is not None:
                self._project_file.prepare()
            if self._masks is not None:
                self._masks.prepare()
            if self._project_file is not None:
                objects = objects_from_ids(mask_ids(self._keyframe_mask))
                h, w = self._hw
                self._project = Project.new(
                    self._video, self._n, h, w, objects, scratch_dir=self._scratch_dir
                )
            self._put(self.keyframe, self._keyframe_mask, FrameState.PAINTED, math.nan)
        except BaseException:
            self._abort()
            raise
        return self

    def add(self, index: int, mask: np.ndarray, confidence: float) -> None:
        """Store propagated frame ``index``: ``(H, W) uint8`` ids, confidence in [0, 1]."""
        self._put(index, mask, FrameState.PROPAGATED, confidence)

    def _put(self, index: int, mask: np.ndarray, state: FrameState, confidence: float) -> None:
        if self._masks is not None:
            name = davis_frame_name(index)
            try:
                write_indexed_png(self._masks.path / name, mask)
            except (OSError, TrackpaintError) as exc:
                raise write_error(exc, self._masks.target, name) from exc
        if self._project is not None:
            source = None if state == FrameState.PAINTED else self.keyframe
            labels = FrameLabels(mask=mask)
            self._project.set_frame(index, labels, state, confidence=confidence, source=source)
        self.written += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self._commit_project()
        except BaseException:
            self._abort()
            raise
        if self._masks is not None:
            self._masks.commit()

    def _commit_project(self) -> None:
        if self._project_file is None or self._project is None:
            return
        target = self._project_file.target
        try:
            self._project.save(self._project_file.path)
            stamp_output(
                self._project_file.path,
                {
                    "kind": PROJECT_KIND,
                    "version": __version__,
                    "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                },
            )
        except (TrackpaintError, sqlite3.Error) as exc:
            raise ExportError(f"cannot write project ({reason(exc)})", target) from exc
        finally:
            self._project.close()
            self._project = None
        self._project_file.commit()

    def _abort(self) -> None:
        if self._project is not None:
            self._project.close()
            self._project = None
        if self._project_file is not None:
            self._project_file.abort()
        if self._masks is not None:
            self._masks.abort()


# ------------------------------------------------------------------------------ one whole run

ProgressFn = Callable[[int, int], None]
"""``progress(done, total)``: propagated frames so far, of ``total`` = frames - 1."""


@dataclass(frozen=True)
class Seed:
    """Where a pre-labelling run gets its initial labels.

    ``kind == "mask"``: ``path`` is an indexed/grey PNG mask (0 = background) of frame
    ``frame``. ``kind == "project"``: ``path`` is a ``.trackpaint`` project on the same video
    (same frame count and size); its **earliest keyframe** (the first frame any object is
    PAINTED on) and that frame's whole id mask are the initial labels -- other keyframes,
    keypoints and object names are not used; ``frame`` is ignored.
    """

    kind: Literal["mask", "project"]
    path: Path
    frame: int = 0

    @property
    def label(self) -> str:
        """How the output-safety rule names this input."""
        return "initial mask" if self.kind == "mask" else "seed project"


@dataclass(frozen=True)
class PrelabelResult:
    """What :func:`prelabel_video` did: ``frames`` of the video, ``propagated`` of them
    computed (the keyframe and skipped damaged frames are not), mean propagation time, the
    confidence over the propagated frames (nan when none), the damaged frames skipped."""

    frames: int
    keyframe: int
    propagated: int
    ms_per_frame: float
    confidence_mean: float
    confidence_min: float
    damaged: tuple[DamagedFrame, ...]
    encoder: str
    masks_dir: Path | None
    project_path: Path | None


def load_seed(seed: Seed, video: VideoSource, source: Path) -> tuple[int, np.ndarray]:
    """``(keyframe, (H, W) uint8 id mask)`` of ``seed`` on ``video`` (opened from ``source``).

    Raises:
        MaskError: unreadable, wrongly sized or empty mask; a frame outside the video.
        ProjectError: a broken project, one of another size or length, or without keyframes.
    """
    n, hw = len(video), (video.height, video.width)
    if seed.kind == "mask":
        if not 0 <= seed.frame < n:
            raise MaskError(f"initial mask frame {seed.frame} is outside 0..{n - 1}", source)
        mask = load_mask(seed.path, expected_hw=hw)
        frame = seed.frame
    else:
        with Project.open(seed.path) as project:
            if (project.num_frames, project.height, project.width) != (n, *hw):
                raise ProjectError(
                    f"is for {project.num_frames} frames of {project.width}x{project.height}, "
                    f"the video has {n} of {hw[1]}x{hw[0]}",
                    seed.path,
                )
            keyframes = project.keyframes()
            if not keyframes:
                raise ProjectError("has no keyframe (no painted frame) to start from", seed.path)
            frame = keyframes[0]
            labels = project.labels(frame).mask
            mask = np.zeros(hw, np.uint8) if labels is None else np.array(labels, np.uint8)
    if not mask.any():
        raise MaskError(f"initial mask (frame {frame}) is empty (no object pixels)", seed.path)
    return frame, mask


def prelabel_video(
    source: Path,
    seed: Seed,
    propagator: Propagator,
    *,
    masks_dir: Path | None = None,
    project_path: Path | None = None,
    progress: ProgressFn | None = None,
) -> PrelabelResult:
    """Propagate ``seed`` through the whole video ``source`` (both directions from the
    keyframe, one feature cache for both) with ``propagator``
    (:func:`tracker_core.propagator.load_propagator`) and write ``masks_dir/NNNNN.png`` and/or
    the project ``project_path`` atomically (:class:`PropagationWriter`). With
    ``propagator.config.skip_damaged`` damaged frames get no mask and are listed in the result;
    without it the first damaged frame stops the run before anything is written (when known at
    open) or before anything is committed.

        Raises:
            TrackpaintError: one line naming the file: bad video, seed, damaged frame, refused or
                unwritable output. Nothing is left half-written.
    """
    if masks_dir is None and project_path is None:
        raise ExportError("nothing to write: give --out DIR and/or --project FILE.trackpaint")
    with VideoSource.open(source) as video:
        n = len(video)
        keyframe, mask = load_seed(seed, video, Path(source))
        if (
            video.damaged and not propagator.config.skip_damaged
        ):  # known at open: refuse before writing
            raise video.damaged[0].error()
        refs = {keyframe: FrameLabels(mask=mask)}
        writer = PropagationWriter(
            Path(source),
            n,
            (video.height, video.width),
            keyframe,
            mask,
            masks_dir=masks_dir,
            project_path=project_path,
            inputs=[("input video", source), (seed.label, seed.path)],
        )
        seconds, confidences = 0.0, []
        cache = propagator.new_cache()
        with writer as sink:
            for stop in (n, -1):
                run = propagator.propagate(video.frame, keyframe, stop, refs, {}, cache=cache)
                for res in run:
                    assert res.labels.mask is not None
                    sink.add(res.index, res.labels.mask, res.confidence)
                    seconds += res.seconds
                    confidences.append(res.confidence)
                    if progress is not None:
                        progress(len(confidences), n - 1)
        damaged = video.damaged
    count = len(confidences)
    conf = np.asarray(confidences, np.float64)
    return PrelabelResult(
        frames=n,
        keyframe=keyframe,
        propagated=count,
        ms_per_frame=1000 * seconds / max(count, 1),
        confidence_mean=float(conf.mean()) if count else math.nan,
        confidence_min=float(conf.min()) if count else math.nan,
        damaged=tuple(damaged),
        encoder=f"{propagator.encoder.name}, {propagator.name}",
        masks_dir=masks_dir,
        project_path=project_path,
    )
