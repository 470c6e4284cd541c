"""The only mutator of a :class:`~tracker_core.project.Project`: commands, undo/redo, propagation.

A GUI is a thin view over a :class:`Session`: it calls the command methods and repaints when a
subscribed callback receives a :class:`ChangeEvent`. Nothing here imports Qt.

Commands (each successful one is one undo step and emits one event):

* Brush: ``begin_stroke(frame, object_id, radius, erase=False)``, ``stroke_to(x, y)`` (any number
  of times; draws round brush segments, the preview is visible through :meth:`Session.labels`),
  ``end_stroke()`` commits the whole stroke as ONE undo step (``cancel_stroke()`` discards it).
  ``paint_stroke(frame, object_id, points, radius, erase)`` does all three at once. Painting sets
  the pixels under the brush to ``object_id`` (overwriting other objects); erasing clears only
  ``object_id``'s pixels under the brush.
* ``fill_polygon``, ``fill_holes`` (fills background pixels enclosed by the object, other objects
  are kept), ``set_mask``, ``clear_frame``, ``make_keyframe``, keypoint edits
  (``set_keypoint``, ``delete_keypoint``, ``set_keypoint_visibility``), object edits
  (``add_object``, ``remove_object``, ``rename_object``, ``recolor_object``).
* An edit that leaves the labels unchanged is a no-op (no undo step, no event, no state change).

Provenance is per object (see :class:`~tracker_core.project.ObjectProvenance`): a frame can be
a keyframe of one object and propagated for another. A user edit on frame ``t`` makes ``t`` a
keyframe (PAINTED) of the object(s) it edits (the brush / polygon / fill / keypoint object; for
:meth:`Session.set_mask` the mask objects whose pixels change), and for every object whose labels
on ``t`` changed it turns STALE that object's PROPAGATED frames whose propagation run passed
through ``t`` (:func:`frames_made_stale` on the object's own states and sources: a frame ``f``
propagated from the object's keyframe ``s`` is stale when ``s <= t < f`` (forward run) or
``f < t <= s`` (backward run)). Other objects' frames are untouched, and so are propagated frames
that only used the edited frame as long-term memory (that weaker dependency is deliberately
ignored). Painting one object over another's propagated pixels changes that other object's labels
too, so its later frames go stale as well (its state on ``t`` stays what it was).

Undo/redo is a model-side bounded stack of sparse diffs: a step stores, for the frames it changed,
only their previous encoded content (:class:`~tracker_core.project.StoredFrame`, PNG-compressed)
or only their previous state when just the provenance changed, plus the previous object list when
objects changed. Undoing swaps the stored side with the current one, which becomes the redo step.
The stack is bounded by :class:`HistoryLimits` (steps and bytes; oldest steps are dropped); it
lives in :class:`~tracker_core.history.History`, which the session drives under its lock.

Propagation: :meth:`Session.propagation_job` returns a :class:`PropagationJob`; iterating it yields
:class:`PropagationProgress` and writes each frame into the project as soon as it is computed. The
run propagates every object that has a state on the start frame, each up to (not including) ITS
OWN next keyframe in the run's direction (or the video end), so one object's keyframe never stops
another: the run lasts until the last object stops. On each frame only the objects still running
are written (state PROPAGATED, their confidence, ``source`` = the object's keyframe the run derives
from); the other objects' labels there are kept, and a propagated mask object only takes pixels
that are background or its own (:func:`merge_labels`). An object also stops early when the user
paints it on a frame ahead of the run while it runs. The references (long-term memory) are the
keyframes of the running objects on which every running object has labels, restricted to those
objects (:func:`restrict_labels`). ``job.cancel()`` (from any thread) or ``job.close()`` stop it and
keep what is done. The whole run — even a cancelled one — is one undo step; it is on the stack
from its first frame, and can only be undone once the job has finished. The job
(:mod:`tracker_core.propagation_job`) sees the session only through a :class:`SessionJobHost`
(its :class:`~tracker_core.propagation_job.JobHost` protocol), which does these writes.

Threads: a worker thread may iterate a job while the GUI thread reads the project
(``Session.labels``, ``project.states()`` ...) and issues edits; all mutations run under one
re-entrant lock. Callbacks run synchronously in the thread that made the change (the worker for
propagated frames), outside the lock: a Qt view must forward them to its own thread (e.g. a
queued signal). The video's ``frame()`` is called from the job's thread; give the session its
own VideoSource if the GUI decodes frames concurrently from another thread.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
from scipy import ndimage

from tracker_core.confidence import DEFAULT_UNCERTAIN_THRESHOLD, uncertain_frames, uncertain_mask
from tracker_core.encoder import Encoder, load_encoder
from tracker_core.errors import MaskError
from tracker_core.history import History, HistoryLimits, Step
from tracker_core.labels import FrameLabels, ObjectKind, ObjectSpec
from tracker_core.masks import davis_palette
from tracker_core.project import FrameState, ObjectProvenance, Project
from tracker_core.propagate import FeatureCache, PropagatedFrame, PropagationConfig
from tracker_core.propagation_job import (
    LazyReferences,
    PropagationJob,
    PropagationProgress,
    StartedReferences,
    propagation_stop,
    restrict_labels,
)
from tracker_core.propagator import DEFAULT_PRESET, Propagator, load_propagator

__all__ = [
    "ChangeEvent",
    "Direction",
    "FrameSource",
    "HistoryLimits",
    "LazyReferences",
    "PropagationJob",
    "PropagationProgress",
    "Session",
    "SessionJobHost",
    "StartedReferences",
    "brush_footprint",
    "brush_window",
    "changed_objects",
    "fill_object_holes",
    "frames_made_stale",
    "labels_equal",
    "merge_labels",
    "next_uncertain",
    "paint_footprint",
    "polygon_footprint",
    "propagation_stop",
    "restrict_labels",
]

Direction = Literal["forward", "backward", "both"]
EventKind = Literal["edit", "stroke", "objects", "view", "propagate", "undo", "redo"]
_SUBPIXEL_SHIFT = 4  # cv2 drawing with 1/16-pixel coordinates


class FrameSource(Protocol):
    """What the session needs of a video: ``len()`` and ``frame(i) -> (H, W, 3) uint8 RGB``."""

    def __len__(self) -> int: ...

    def frame(self, index: int) -> np.ndarray: ...


@dataclass(frozen=True)
class ChangeEvent:
    """What changed, for views to repaint. ``frames``: frames whose labels or state changed
    (sorted); ``objects_changed``: the object list changed; ``view_changed``: view-only state
    (hidden objects) changed; ``history_changed``: can_undo/can_redo may differ."""

    kind: EventKind
    frames: tuple[int, ...] = ()
    objects_changed: bool = False
    view_changed: bool = False
    history_changed: bool = True


@dataclass
class _Stroke:
    """A brush stroke in progress on a private copy of the frame's mask."""

    frame: int
    object_id: int
    radius: float
    erase: bool
    mask: np.ndarray
    last: tuple[float, float] | None = None


# --------------------------------------------------------------------------- pure helpers


def frames_made_stale(states: np.ndarray, sources: np.ndarray, edited: int) -> np.ndarray:
    """PROPAGATED frames whose propagation run passed through frame ``edited``.

    Args:
        states: ``(N,) uint8`` FrameState values.
        sources: ``(N,) int`` keyframe each frame was propagated from (-1 = none).
        edited: the frame the user changed.

    Returns:
        ``(M,) int64`` frame indices ``f`` with source ``s``: ``s <= edited < f`` or
        ``f < edited <= s``.
    """
    idx = np.arange(len(states))
    propagated = states == FrameState.PROPAGATED
    forward = (sources >= 0) & (sources <= edited) & (idx > edited)
    backward = (sources >= edited) & (idx < edited)
    return np.flatnonzero(propagated & (forward | backward))


def brush_window(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], radius: float
) -> tuple[slice, slice]:
    """The ``(rows, cols)`` window of a ``shape`` image that a round brush of ``radius`` moved
    from ``p0`` to ``p1`` (``(x, y)`` points) can touch; empty when entirely outside."""
    pad = math.ceil(radius) + 2
    h, w = shape
    x0, x1 = sorted((p0[0], p1[0]))
    y0, y1 = sorted((p0[1], p1[1]))
    rows = slice(min(h, max(0, math.floor(y0) - pad)), min(h, max(0, math.ceil(y1) + pad + 1)))
    cols = slice(min(w, max(0, math.floor(x0) - pad)), min(w, max(0, math.ceil(x1) + pad + 1)))
    return rows, cols


def brush_footprint(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], radius: float
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Pixels whose centre lies within ``radius`` of the segment ``p0``-``p1`` (a round brush
    dragged along it; ``(x, y)`` = (column, row) coordinates, sub-pixel allowed), computed only
    inside :func:`brush_window`. A radius below ``sqrt(2) / 2`` still covers the nearest pixel.

    Returns:
        ``(window, footprint)``: the ``(rows, cols)`` slices and a ``(h, w) bool`` array for them.
    """
    rows, cols = window = brush_window(shape, p0, p1, radius)
    ys, xs = np.mgrid[rows, cols].astype(np.float32)
    vx, vy = p1[0] - p0[0], p1[1] - p0[1]
    length2 = vx * vx + vy * vy
    dx, dy = xs - p0[0], ys - p0[1]
    t = np.clip((dx * vx + dy * vy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
    dist2 = (dx - t * vx) ** 2 + (dy - t * vy) ** 2
    r = max(radius, math.sqrt(0.5))
    return window, dist2 <= r * r


def polygon_footprint(shape: tuple[int, int], points: Sequence[tuple[float, float]]) -> np.ndarray:
    """``(H, W) bool`` interior (and boundary) of a polygon given as ``(x, y)`` points."""
    if len(points) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(points)}")
    canvas = np.zeros(shape, np.uint8)
    scale = 1 << _SUBPIXEL_SHIFT
    pts = np.round(np.asarray(points, np.float64) * scale).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], 1, cv2.LINE_8, _SUBPIXEL_SHIFT)
    return canvas.astype(bool)


def paint_footprint(
    mask: np.ndarray,
    window: tuple[slice, slice],
    footprint: np.ndarray,
    object_id: int,
    erase: bool,
) -> None:
    """IN PLACE: paint ``object_id`` into ``mask[window]`` where ``footprint`` is True (or, when
    erasing, clear only that object's pixels there)."""
    view = mask[window]
    if erase:
        view[footprint & (view == object_id)] = 0
    else:
        view[footprint] = object_id


def fill_object_holes(mask: np.ndarray, object_id: int) -> np.ndarray:
    """Fill background pixels enclosed by ``object_id``'s region; other objects are kept."""
    filled = ndimage.binary_fill_holes(mask == object_id)
    out = mask.copy()
    out[filled & (mask == 0)] = object_id
    return out


def labels_equal(a: FrameLabels, b: FrameLabels) -> bool:
    """Exact equality of masks and keypoints (nan == nan)."""
    if (a.mask is None) != (b.mask is None):
        return False
    if a.mask is not None and not np.array_equal(a.mask, b.mask):
        return False
    if set(a.keypoints) != set(b.keypoints):
        return False
    return all(np.array_equal(a.keypoints[k], b.keypoints[k], equal_nan=True) for k in a.keypoints)


def changed_objects(a: FrameLabels, b: FrameLabels, objects: Iterable[ObjectSpec]) -> set[int]:
    """Ids of the objects whose own labels differ between ``a`` and ``b`` (mask pixels of the
    id, or keypoint rows, nan == nan)."""
    out: set[int] = set()
    for spec in objects:
        if spec.kind == "mask":
            ma = a.mask == spec.id if a.mask is not None else None
            mb = b.mask == spec.id if b.mask is not None else None
            if (ma is None) != (mb is None) or (ma is not None and not np.array_equal(ma, mb)):
                out.add(spec.id)
        else:
            ka, kb = a.keypoints.get(spec.id), b.keypoints.get(spec.id)
            if (ka is None) != (kb is None) or (
                ka is not None and not np.array_equal(ka, kb, equal_nan=True)
            ):
                out.add(spec.id)
    return out


def merge_labels(current: FrameLabels, result: FrameLabels, written: Iterable[int]) -> FrameLabels:
    """A frame's labels after a propagation run rewrites the objects in ``written`` only.

    Mask: the written objects' old pixels are cleared, then each pixel the result gives to a
    written object takes it when it is now background, so other objects' pixels (a keyframe of
    another object, or another run's output) are never overwritten. Keypoints: written keypoint
    objects take the result's points (unplaced when the result has none); others are kept.
    ``current.mask`` and ``result.mask``: ``(H, W) uint8`` or None.
    """
    w = sorted(set(written))
    mask = current.mask
    if mask is not None:
        out = np.array(mask, np.uint8)
        out[np.isin(out, w)] = 0
        if result.mask is not None:
            take = (out == 0) & np.isin(result.mask, w)
            out[take] = result.mask[take]
        mask = out
    kps = {k: v for k, v in current.keypoints.items() if k not in w}
    kps.update({k: v for k, v in result.keypoints.items() if k in w})
    return FrameLabels(mask, kps)


def next_uncertain(
    states: np.ndarray, confidences: np.ndarray, after: int, threshold: float
) -> int | None:
    """First frame after ``after`` that :func:`~tracker_core.confidence.uncertain_mask` marks."""
    idx = np.flatnonzero(uncertain_mask(states, confidences, threshold))
    later = idx[idx > after]
    return int(later[0]) if later.size else None


# --------------------------------------------------------------------------- the session


class Session:
    """Edits one project; the GUI's model. ``video`` supplies frames for propagation.

    Args:
        project: the document (the session becomes its only mutator).
        video: frames for propagation (a VideoSource); None disables propagation.
        encoder: encoder for propagation jobs; None -> ``load_encoder()`` on first use.
        preset: the propagation preset (``tracker_core.propagator.PRESETS``).
        config: PropagationConfig for jobs instead of the preset's.
        history: undo stack bounds.
        propagator: the propagator to use as given (``encoder``/``preset``/``config`` are then
            ignored); otherwise one is made with ``load_propagator`` on first use. Encoded
            frames are cached per propagator (``Propagator.new_cache``), so a resume after a
            correction re-encodes only what the bounded cache no longer holds.
    """

    def __init__(
        self,
        project: Project,
        video: FrameSource | None = None,
        *,
        encoder: Encoder | None = None,
        preset: str = DEFAULT_PRESET,
        config: PropagationConfig | None = None,
        history: HistoryLimits | None = None,
        propagator: Propagator | None = None,
    ) -> None:
        if video is not None and len(video) != project.num_frames:
            raise ValueError(
                f"video has {len(video)} frames but the project expects {project.num_frames}"
            )
        self._project = project
        self._video = video
        self._encoder = propagator.encoder if propagator is not None else encoder
        self._preset = propagator.name if propagator is not None else preset
        self._config = config
        self._propagator = propagator
        self._cache = propagator.new_cache() if propagator is not None else None
        self._lock = threading.RLock()
        self._history = History(history)
        self._subscribers: list[Callable[[ChangeEvent], None]] = []
        self._hidden: set[int] = set()
        self._stroke: _Stroke | None = None
        self._last_ms_per_frame: float | None = None
        self._job_host = (
            SessionJobHost(
                project,
                video,
                self._lock,
                self._history,
                self._emit,
                self._cache_for,
                self._run_finished,
            )
            if video is not None
            else None
        )

    # ---- basics ----------------------------------------------------------------------------

    @property
    def project(self) -> Project:
        """The document; read it freely, mutate it only through the session."""
        return self._project

    @property
    def video(self) -> FrameSource | None:
        return self._video

    @property
    def lock(self) -> threading.RLock:
        """The lock every mutation holds; take it to read several things consistently."""
        return self._lock

    def subscribe(self, callback: Callable[[ChangeEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` after every change; returns a function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def labels(self, frame: int) -> FrameLabels:
        """Labels of ``frame`` as the user should see them (the stroke preview included).
        Arrays are read-only views; copy them before changing."""
        stroke = self._stroke
        if stroke is not None and stroke.frame == frame:
            preview = stroke.mask.view()
            preview.flags.writeable = False
            return FrameLabels(preview, self._project.labels(frame).keypoints)
        return self._project.labels(frame)

    # ---- view state ------------------------------------------------------------------------

    @property
    def hidden_objects(self) -> frozenset[int]:
        """Ids hidden in the view (view-only state: not saved, not undoable)."""
        return frozenset(self._hidden)

    def set_object_hidden(self, object_id: int, hidden: bool) -> None:
        """Hide or show an object in the view."""
        self._project.object(object_id)
        with self._lock:
            changed = (object_id in self._hidden) != hidden
            (self._hidden.add if hidden else self._hidden.discard)(object_id)
        if changed:
            self._emit(ChangeEvent("view", view_changed=True, history_changed=False))

    # ---- brush strokes ---------------------------------------------------------------------

    @property
    def stroke_active(self) -> bool:
        return self._stroke is not None

    def begin_stroke(self, frame: int, object_id: int, radius: float, erase: bool = False) -> None:
        """Start a brush stroke of ``radius`` pixels on ``frame`` for mask object ``object_id``.
        RuntimeError when a stroke is already in progress; ValueError for a bad object/radius."""
        self._require_mask_object(object_id)
        if radius <= 0:
            raise ValueError(f"brush radius must be > 0, got {radius}")
        with self._lock:
            if self._stroke is not None:
                raise RuntimeError("a brush stroke is already in progress")
            mask = self._editable_mask(frame)
            self._stroke = _Stroke(frame, object_id, float(radius), erase, mask)

    def stroke_to(self, x: float, y: float) -> None:
        """Extend the stroke to pixel ``(x, y)`` (a dot on the first call) and emit a preview
        event; the project itself changes only at :meth:`end_stroke`."""
        stroke = self._stroke
        if stroke is None:
            raise RuntimeError("no brush stroke in progress; call begin_stroke first")
        start = stroke.last if stroke.last is not None else (x, y)
        window, foot = brush_footprint(stroke.mask.shape, start, (x, y), stroke.radius)
        paint_footprint(stroke.mask, window, foot, stroke.object_id, stroke.erase)
        stroke.last = (x, y)
        self._emit(ChangeEvent("stroke", frames=(stroke.frame,), history_changed=False))

    def end_stroke(self) -> bool:
        """Commit the stroke as one undo step; returns False when it changed nothing."""
        stroke = self._stroke
        if stroke is None:
            raise RuntimeError("no brush stroke in progress")
        self._stroke = None
        label = "Erase" if stroke.erase else "Paint"
        changed = self._edit_frame(
            stroke.frame, label, lambda lab: replace(lab, mask=stroke.mask), (stroke.object_id,)
        )
        if not changed:
            self._emit(ChangeEvent("stroke", frames=(stroke.frame,), history_changed=False))
        return changed

    def cancel_stroke(self) -> None:
        """Discard the stroke in progress (no-op when none)."""
        stroke, self._stroke = self._stroke, None
        if stroke is not None:
            self._emit(ChangeEvent("stroke", frames=(stroke.frame,), history_changed=False))

    def paint_stroke(
        self,
        frame: int,
        object_id: int,
        points: Sequence[tuple[float, float]],
        radius: float,
        erase: bool = False,
    ) -> bool:
        """A whole stroke through ``points`` ``(x, y)`` in one call (one undo step)."""
        if not points:
            raise ValueError("a stroke needs at least one point")
        self.begin_stroke(frame, object_id, radius, erase)
        try:
            for x, y in points:
                self.stroke_to(x, y)
        except BaseException:
            self.cancel_stroke()
            raise
        return self.end_stroke()

    # ---- other label edits -----------------------------------------------------------------

    def fill_polygon(
        self,
        frame: int,
        object_id: int,
        points: Sequence[tuple[float, float]],
        erase: bool = False,
    ) -> bool:
        """Fill (or erase ``object_id`` inside) the polygon through ``(x, y)`` points."""
        self._require_mask_object(object_id)
        hw = (self._project.height, self._project.width)
        foot = polygon_footprint(hw, points)
        everywhere = (slice(None), slice(None))

        def change(lab: FrameLabels) -> FrameLabels:
            mask = np.array(lab.mask)
            paint_footprint(mask, everywhere, foot, object_id, erase)
            return replace(lab, mask=mask)

        label = "Erase polygon" if erase else "Fill polygon"
        return self._edit_frame(frame, label, change, (object_id,))

    def fill_holes(self, frame: int, object_id: int) -> bool:
        """Fill the background holes enclosed by ``object_id`` on ``frame``."""
        self._require_mask_object(object_id)
        return self._edit_frame(
            frame,
            "Fill holes",
            lambda lab: replace(lab, mask=fill_object_holes(lab.mask, object_id)),
            (object_id,),
        )

    def set_mask(
        self,
        frame: int,
        mask: np.ndarray,
        label: str = "Set mask",
        objects: Iterable[int] | None = None,
    ) -> bool:
        """Replace the whole mask of ``frame`` (MaskError for wrong size/dtype/unknown ids); the
        frame becomes a keyframe of ``objects`` (default: the mask objects whose pixels change).
        ``label`` names the undo step (tools: "Smart select", "Fill hole")."""
        if not self._project.mask_object_ids():
            raise MaskError("the project has no mask objects; add one before setting a mask")
        if objects is None:
            current = self._project.labels(frame)
            specs = [o for o in self._project.objects if o.kind == "mask"]
            targets = tuple(sorted(changed_objects(current, FrameLabels(mask), specs)))
        else:
            targets = tuple(objects)
        for oid in targets:
            self._require_mask_object(oid)
        return self._edit_frame(frame, label, lambda lab: replace(lab, mask=mask), targets)

    def set_keypoint(
        self,
        frame: int,
        object_id: int,
        point_index: int,
        x: float,
        y: float,
        visible: bool = True,
    ) -> bool:
        """Place point ``point_index`` of keypoint object ``object_id`` at pixel ``(x, y)``."""
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"keypoint coordinates must be finite, got ({x}, {y})")
        row = (float(x), float(y), 1.0 if visible else 0.0)
        return self._edit_point(frame, object_id, point_index, "Move keypoint", lambda _: row)

    def delete_keypoint(self, frame: int, object_id: int, point_index: int) -> bool:
        """Unplace a keypoint (it becomes ``(nan, nan, 0)``)."""
        row = (math.nan, math.nan, 0.0)
        return self._edit_point(frame, object_id, point_index, "Delete keypoint", lambda _: row)

    def set_keypoint_visibility(
        self, frame: int, object_id: int, point_index: int, visible: bool
    ) -> bool:
        """Mark a placed keypoint visible/occluded; MaskError when it is not placed."""

        def update(old: np.ndarray) -> tuple[float, float, float]:
            if not np.isfinite(old[:2]).all():
                raise MaskError(f"keypoint {point_index} of object {object_id} is not placed")
            return (float(old[0]), float(old[1]), 1.0 if visible else 0.0)

        return self._edit_point(frame, object_id, point_index, "Keypoint visibility", update)

    def clear_frame(self, frame: int) -> bool:
        """Remove every label of ``frame`` (state EMPTY for every object); frames propagated
        through it go stale (for each object that had a state there)."""
        with self._lock:
            if self._project.state(frame) == FrameState.EMPTY:
                return False
            had = [o for o, p in self._project.provenance(frame).items() if p.state]
            before = self._project.stored(frame)
            self._project.set_frame(frame, FrameLabels(), FrameState.EMPTY)
            stale = self._mark_stale(frame, had)
            step = Step("Clear frame", {frame: before}, stale)
            self._push(step)
        self._emit(ChangeEvent("edit", frames=tuple(sorted({frame, *(t for t, _ in stale)}))))
        return True

    def make_keyframe(self, frame: int, object_id: int | None = None) -> bool:
        """Accept a frame's PROPAGATED/STALE labels as a keyframe (labels unchanged) of
        ``object_id``, or of every object propagated or stale there (None)."""
        with self._lock:
            prov = self._project.provenance(frame)
            targets = [
                o
                for o, p in prov.items()
                if p.state in (FrameState.PROPAGATED, FrameState.STALE)
                and (object_id is None or o == object_id)
            ]
            if not targets:
                return False
            before = self._project.stored(frame)
            painted = ObjectProvenance(FrameState.PAINTED)
            self._project.set_labels(
                frame, self._project.labels(frame), {o: painted for o in targets}
            )
            self._push(Step("Make keyframe", {frame: before}))
        self._emit(ChangeEvent("edit", frames=(frame,)))
        return True

    # ---- objects ---------------------------------------------------------------------------

    def add_object(
        self,
        name: str,
        color: tuple[int, int, int] | None = None,
        kind: ObjectKind = "mask",
        keypoint_names: Sequence[str] = (),
        skeleton: Sequence[tuple[int, int]] = (),
    ) -> ObjectSpec:
        """Add an object with the smallest free id (colour defaults to the DAVIS palette)."""
        with self._lock:
            oid = self._project.next_object_id()
            rgb = color if color is not None else tuple(int(c) for c in davis_palette()[oid])
            spec = ObjectSpec(oid, name, rgb, kind, tuple(keypoint_names), tuple(skeleton))
            before = self._project.objects
            self._project.add_object(spec)
            self._push(Step(f"Add {name}", objects=before))
        self._emit(ChangeEvent("objects", objects_changed=True))
        return spec

    def remove_object(self, object_id: int) -> None:
        """Remove an object and its pixels/keypoints from every frame (one undo step); a brush
        stroke in progress with this object is cancelled."""
        stroke = self._stroke
        if stroke is not None and stroke.object_id == object_id:
            self.cancel_stroke()
        with self._lock:
            spec = self._project.object(object_id)
            before_objects = self._project.objects
            touched = self._project.frames_touching_object(object_id)
            before = {t: self._project.stored(t) for t in touched}
            self._project.remove_object(object_id)
            self._hidden.discard(object_id)
            self._push(Step(f"Remove {spec.name}", before, objects=before_objects))
        self._emit(ChangeEvent("objects", frames=tuple(touched), objects_changed=True))

    def rename_object(self, object_id: int, name: str) -> None:
        """Rename an object (one undo step)."""
        self._update_object(object_id, "Rename", name=name)

    def recolor_object(self, object_id: int, color: tuple[int, int, int]) -> None:
        """Change an object's colour (one undo step)."""
        self._update_object(object_id, "Recolour", color=tuple(int(c) for c in color))

    # ---- undo / redo -----------------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        with self._lock:
            return self._history.can_undo

    @property
    def can_redo(self) -> bool:
        with self._lock:
            return self._history.can_redo

    @property
    def undo_label(self) -> str | None:
        """Name of the step :meth:`undo` would revert (for a menu), or None."""
        with self._lock:
            return self._history.undo_label

    @property
    def redo_label(self) -> str | None:
        with self._lock:
            return self._history.redo_label

    def undo(self) -> bool:
        """Revert the last step; False when there is none (or it is a job still running).
        A brush stroke in progress is cancelled first."""
        self.cancel_stroke()
        with self._lock:
            step = self._history.undo(self._swap)
        if step is None:
            return False
        self._emit(self._swap_event("undo", step))
        return True

    def redo(self) -> bool:
        """Re-apply the last undone step; False when there is none. Cancels a stroke first."""
        self.cancel_stroke()
        with self._lock:
            step = self._history.redo(self._swap)
        if step is None:
            return False
        self._emit(self._swap_event("redo", step))
        return True

    @property
    def history_bytes(self) -> int:
        """Bytes held by the undo and redo stacks."""
        with self._lock:
            return self._history.nbytes

    # ---- propagation -----------------------------------------------------------------------

    @property
    def last_ms_per_frame(self) -> float | None:
        """Mean compute time per frame of the last propagation run (for a status bar)."""
        return self._last_ms_per_frame

    @property
    def encoder(self) -> Encoder:
        """The encoder used by jobs (loaded with ``load_encoder()`` on first use)."""
        encoder = self._encoder
        if encoder is None:  # load outside the lock: it may take a while
            encoder = load_encoder()
            with self._lock:
                self._encoder = self._encoder or encoder
                encoder = self._encoder
        return encoder

    @encoder.setter
    def encoder(self, encoder: Encoder) -> None:
        with self._lock:
            if encoder is not self._encoder:
                self._encoder = encoder
                self._propagator, self._cache = None, None

    @property
    def preset(self) -> str:
        """The propagation preset of the session's propagator."""
        return self._preset

    @preset.setter
    def preset(self, preset: str) -> None:
        with self._lock:
            if preset != self._preset:
                self._preset = preset
                self._propagator, self._cache = None, None

    @property
    def propagator(self) -> Propagator:
        """The propagator jobs use (made with ``load_propagator`` from the encoder and preset)."""
        with self._lock:
            if self._propagator is not None:
                return self._propagator
        encoder = self.encoder
        # GUI propagation passes over damaged frames, like ``trackpaint propagate --skip-damaged``
        overrides = {
            **(dataclasses.asdict(self._config) if self._config else {}),
            "skip_damaged": True,
        }
        made = load_propagator(self._preset, encoder=encoder, overrides=overrides)
        with self._lock:
            if self._propagator is None and self._encoder is encoder:
                self._propagator, self._cache = made, made.new_cache()
            return self._propagator or made

    def _cache_for(self, propagator: Propagator) -> FeatureCache | None:
        with self._lock:
            return self._cache if propagator is self._propagator else None

    def _run_finished(self, ms_per_frame: float | None) -> None:
        """(under the lock) a propagation run ended; keep its speed for the status bar."""
        if ms_per_frame is not None:
            self._last_ms_per_frame = ms_per_frame

    def propagation_job(
        self,
        start: int,
        direction: Direction = "forward",
        encoder: Encoder | None = None,
        config: PropagationConfig | None = None,
    ) -> PropagationJob:
        """A job propagating the objects that have a state on ``start`` in ``direction``, each up
        to (not including) its own next keyframe or the video end (see the module doc; the
        references are the keyframes every such object has labels on). ``start`` must hold
        labels (any non-EMPTY state). ValueError for a bad start/direction or no video.
        ``encoder``/``config`` run this job with another encoder or protocol than the session's
        propagator (and without its feature cache). Damaged frames (the video raises
        FrameDamaged) are passed over and left as they are, like ``trackpaint propagate
        --skip-damaged``; a damaged ``start`` fails the job."""
        if self._video is None:
            raise ValueError("this session has no video; propagation needs frames")
        if direction not in ("forward", "backward", "both"):
            raise ValueError(f"direction must be forward, backward or both, got {direction!r}")
        if self._project.state(start) == FrameState.EMPTY:
            raise ValueError(f"frame {start} has no labels to propagate from")
        steps = {"forward": (1,), "backward": (-1,), "both": (1, -1)}[direction]
        propagator = self.propagator
        if (encoder is not None and encoder is not propagator.encoder) or config is not None:
            propagator = load_propagator(
                self._preset,
                encoder=encoder or propagator.encoder,
                overrides=dataclasses.asdict(
                    replace(config or propagator.config, skip_damaged=True)
                ),
            )
        assert self._job_host is not None  # there is a video
        return PropagationJob(self._job_host, start, steps, propagator)

    def next_uncertain_frame(
        self,
        after: int,
        threshold: float = DEFAULT_UNCERTAIN_THRESHOLD,
        object_id: int | None = None,
    ) -> int | None:
        """The first frame after ``after`` that :func:`~tracker_core.confidence.uncertain_frames`
        marks (the frames most worth checking); None when there is none."""
        with self._lock:
            idx = uncertain_frames(self._project, threshold, object_id)
        later = idx[idx > after]
        return int(later[0]) if later.size else None

    # ---- persistence shortcuts --------------------------------------------------------------

    def save(self, path: str | Path | None = None) -> None:
        """Atomically save the project (see :meth:`Project.save`)."""
        with self._lock:
            self._project.save(path)

    def autosave(self) -> None:
        """Write the recovery file (see :meth:`Project.autosave`)."""
        with self._lock:
            self._project.autosave()

    # ---- internals -------------------------------------------------------------------------

    def _emit(self, event: ChangeEvent) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            callback(event)

    def _require_mask_object(self, object_id: int) -> ObjectSpec:
        spec = self._project.object(object_id)
        if spec.kind != "mask":
            raise ValueError(f"object {object_id} ({spec.name}) is not a mask object")
        return spec

    def _editable_mask(self, frame: int) -> np.ndarray:
        mask = self._project.labels(frame).mask
        if mask is None:
            raise MaskError("the project has no mask objects")
        return mask.copy()

    def _edit_frame(
        self,
        frame: int,
        label: str,
        change: Callable[[FrameLabels], FrameLabels],
        targets: Iterable[int],
    ) -> bool:
        """Apply ``change`` to the frame's labels; make it a keyframe of ``targets``, stale-mark
        the frames propagated through it of every object whose labels changed, record a step."""
        with self._lock:
            if self._stroke is not None and self._stroke.frame == frame:
                raise RuntimeError("finish the brush stroke on this frame first")
            current = self._project.labels(frame)
            new = change(current)
            if labels_equal(new, current):
                return False
            targets = tuple(targets)
            changed = changed_objects(current, new, self._project.objects) | set(targets)
            before = self._project.stored(frame)
            painted = ObjectProvenance(FrameState.PAINTED)
            self._project.set_labels(frame, new, {o: painted for o in targets})
            stale = self._mark_stale(frame, changed)
            self._push(Step(label, {frame: before}, stale))
        self._emit(ChangeEvent("edit", frames=tuple(sorted({frame, *(t for t, _ in stale)}))))
        return True

    def _edit_point(
        self,
        frame: int,
        object_id: int,
        point_index: int,
        label: str,
        update: Callable[[np.ndarray], tuple[float, float, float]],
    ) -> bool:
        spec = self._project.object(object_id)
        if spec.kind != "keypoints":
            raise ValueError(f"object {object_id} ({spec.name}) is not a keypoint object")
        if not 0 <= point_index < len(spec.keypoint_names):
            raise IndexError(f"object {object_id} has no point {point_index}")

        def change(lab: FrameLabels) -> FrameLabels:
            pts = np.array(lab.keypoints[object_id], np.float32)
            pts[point_index] = update(pts[point_index])
            return replace(lab, keypoints={**lab.keypoints, object_id: pts})

        return self._edit_frame(frame, label, change, (object_id,))

    def _mark_stale(self, edited: int, objects: Iterable[int]) -> dict[tuple[int, int], FrameState]:
        """Mark STALE each object's frames propagated through ``edited``; return their previous
        states keyed ``(frame, object)``."""
        out: dict[tuple[int, int], FrameState] = {}
        project = self._project
        for oid in sorted(set(objects)):
            states, sources = project.object_states(oid), project.object_sources(oid)
            stale = frames_made_stale(states, sources, edited).tolist()
            project.set_object_states(stale, oid, FrameState.STALE)
            out.update({(int(t), oid): FrameState.PROPAGATED for t in stale})
        return out

    def _update_object(self, object_id: int, label: str, **changes: object) -> None:
        with self._lock:
            old = self._project.object(object_id)
            new = replace(old, **changes)
            if new == old:
                return
            before = self._project.objects
            self._project.replace_object(new)
            self._push(Step(f"{label} {old.name}", objects=before))
        self._emit(ChangeEvent("objects", objects_changed=True))

    def _push(self, step: Step) -> None:
        """Record a new step (clears redo) and enforce the history bounds."""
        self._history.push(step)

    def _swap(self, step: Step) -> Step:
        """Apply a step's stored side; return the inverse step (the side it replaced)."""
        project = self._project
        known = set(project.mask_object_ids()) | set(project.keypoint_object_ids())
        current = {o: project.object_states(o) for o in {o for _, o in step.states} & known}
        inverse = Step(
            step.label,
            frames={t: project.stored(t) for t in step.frames},
            states={(t, o): FrameState(int(current[o][t])) for t, o in step.states if o in current},
            objects=project.objects if step.objects is not None else None,
        )
        if step.objects is not None:
            project.set_objects(step.objects)
            self._hidden &= {o.id for o in step.objects}
        for t, stored in step.frames.items():
            project.restore(t, stored)
        groups: dict[tuple[int, FrameState], list[int]] = {}
        for (t, oid), state in step.states.items():
            groups.setdefault((oid, state), []).append(t)
        known = set(project.mask_object_ids()) | set(project.keypoint_object_ids())
        for (oid, state), frames in groups.items():
            if oid in known and state != FrameState.EMPTY:
                project.set_object_states(frames, oid, state)
        return inverse

    @staticmethod
    def _swap_event(kind: EventKind, step: Step) -> ChangeEvent:
        frames = tuple(sorted({*step.frames, *(t for t, _ in step.states)}))
        return ChangeEvent(kind, frames=frames, objects_changed=step.objects is not None)


class SessionJobHost:
    """The session side of a :class:`PropagationJob` (its
    :class:`~tracker_core.propagation_job.JobHost`): decides what a run propagates and from
    which keyframes, writes each propagated frame into the project under the session's lock,
    records the run as one open step of the session's :class:`~tracker_core.history.History`,
    and emits the session's events. Made by :class:`Session`; hold it only through a job.

    Args:
        project: the session's document.
        video: the session's frames (called on the job's thread).
        lock: the session's lock (every read-modify-write below holds it).
        history: the session's undo history.
        emit: delivers a :class:`ChangeEvent` to the session's subscribers (called unlocked).
        feature_cache: the session's cache of encoded frames for a propagator, or None.
        finished: called under the lock with a run's mean ms/frame (None: no frame written).
    """

    def __init__(
        self,
        project: Project,
        video: FrameSource,
        lock: threading.RLock,
        history: History,
        emit: Callable[[ChangeEvent], None],
        feature_cache: Callable[[Propagator], FeatureCache | None],
        finished: Callable[[float | None], None],
    ) -> None:
        self._project = project
        self._video = video
        self._lock = lock
        self._history = history
        self._emit = emit
        self._feature_cache = feature_cache
        self._finished = finished

    @property
    def project(self) -> Project:
        return self._project

    def frame(self, index: int) -> np.ndarray:
        """``(H, W, 3) uint8`` RGB frame of the session's video."""
        return self._video.frame(index)

    def feature_cache(self, propagator: Propagator) -> FeatureCache | None:
        """The session's feature cache when ``propagator`` is the session's own, else None."""
        return self._feature_cache(propagator)

    def run_objects(self, start: int) -> tuple[int, ...]:
        """The objects a run from ``start`` propagates: those with a state on ``start``."""
        return tuple(o for o, p in self._project.provenance(start).items() if p.state)

    def run_origin(self, start: int, direction: int, object_id: int) -> int:
        """The keyframe of ``object_id`` a run from ``start`` in ``direction`` derives from:
        ``start`` itself when it is a keyframe of the object, else the keyframe the object was
        propagated from on ``start`` in that same direction (so resuming after a cancel keeps the
        stale rule exact)."""
        prov = self._project.provenance(start)[object_id]
        if prov.state == FrameState.PAINTED or prov.source is None:
            return start
        return prov.source if (prov.source - start) * direction < 0 else start

    def run_references(
        self, start: int, start_labels: FrameLabels, objects: Sequence[int]
    ) -> StartedReferences:
        """Long-term memory of a run: the start frame and every keyframe of a running object on
        which all running objects have a state (so no reference claims an object is absent
        where it is merely unlabelled), restricted to the running objects."""
        project = self._project
        states = np.stack([project.object_states(o) for o in objects])  # (R, N)
        keys = np.flatnonzero(
            (states == FrameState.PAINTED).any(axis=0) & (states != FrameState.EMPTY).all(axis=0)
        )
        return StartedReferences(project, keys.tolist(), start, start_labels, objects)

    def open_run(self, label: str) -> Step:
        """A new open undo step for a run (on the stack from its first written frame)."""
        return self._history.open_step(label)

    def write_frame(
        self,
        run: Step,
        start: int,
        direction: int,
        running: dict[int, tuple[int, int]],
        result: PropagatedFrame,
        prev: int,
    ) -> bool:
        """Store one propagated frame for the objects still running; False means none is left.

        ``running`` maps object id -> (its exclusive stop, its origin keyframe) and loses the
        objects that reach their stop, became a keyframe on this frame meanwhile, or were
        deleted. An object's frame is written STALE when the frame it was derived from is no
        longer this run's output for it (the user edited it meanwhile)."""
        project = self._project
        t = result.index
        with self._lock:
            prov = project.provenance(t)
            for oid, (stop, _origin) in list(running.items()):
                gone = oid not in prov or prov[oid].state == FrameState.PAINTED
                if gone or (stop - t) * direction <= 0:
                    del running[oid]
            if not running:
                return False
            before = project.provenance(prev) if prev != start else {}
            updates: dict[int, ObjectProvenance] = {}
            for oid, (_stop, origin) in running.items():
                was = before.get(oid)
                ok = prev == start or (
                    was is not None and was.state == FrameState.PROPAGATED and was.source == origin
                )
                conf = float(result.object_confidence.get(oid, result.confidence))
                state = FrameState.PROPAGATED if ok else FrameState.STALE
                updates[oid] = ObjectProvenance(state, conf, origin)
            labels = merge_labels(project.labels(t), self._known_ids_only(result.labels), running)
            self._history.record_frame(run, t, lambda: project.stored(t))
            project.set_labels(t, labels, updates)
        self._emit(ChangeEvent("propagate", frames=(t,), history_changed=False))
        return True

    def finish_run(self, run: Step, ms_per_frame: float | None) -> None:
        """Close the run's undo step, keep its speed, tell the views the history changed."""
        with self._lock:
            self._history.close(run)
            self._finished(ms_per_frame)
        self._emit(ChangeEvent("propagate", history_changed=True))

    def _known_ids_only(self, labels: FrameLabels) -> FrameLabels:
        """Drop ids/keypoint objects deleted while the job ran."""
        mask = labels.mask
        mask_ids = self._project.mask_object_ids()
        if mask is not None:
            if not mask_ids:
                mask = None
            else:
                keep = np.zeros(256, np.uint8)
                keep[list(mask_ids)] = mask_ids
                mask = keep[mask]
        kp_ids = set(self._project.keypoint_object_ids())
        kps = {k: v for k, v in labels.keypoints.items() if k in kp_ids}
        return FrameLabels(mask, kps)
