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
The stack is bounded by :class:`HistoryLimits` (steps and bytes; oldest steps are dropped).

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
from its first frame, and can only be undone once the job has finished.

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np
from scipy import ndimage

from tracker_core.confidence import DEFAULT_UNCERTAIN_THRESHOLD, uncertain_frames, uncertain_mask
from tracker_core.encoder import Encoder, load_encoder
from tracker_core.errors import MaskError
from tracker_core.labels import FrameLabels, ObjectKind, ObjectSpec
from tracker_core.masks import davis_palette
from tracker_core.project import FrameState, ObjectProvenance, Project, StoredFrame
from tracker_core.propagate import (
    FeatureCache,
    PropagatedFrame,
    PropagationConfig,
    WarmupProgress,
)
from tracker_core.propagator import DEFAULT_PRESET, Propagator, load_propagator

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


@dataclass(frozen=True)
class HistoryLimits:
    """Bounds of the undo stack: at most ``max_steps`` steps holding ``max_bytes`` in all.
    The oldest steps are dropped first; a single step bigger than ``max_bytes`` is not kept, so
    it cannot be undone; a propagation run whose undo data outgrows ``max_bytes`` while running
    (re-propagating over many propagated frames) clears the whole history and is not undoable."""

    max_steps: int = 100
    max_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.max_bytes < 1:
            raise ValueError("history limits must be positive")


@dataclass(frozen=True)
class PropagationProgress:
    """One propagated frame: ``done`` of ``total`` frames, the frame index written, its
    confidence, the mean compute time so far in ms per frame, and the run direction."""

    done: int
    total: int
    frame: int
    confidence: float
    ms_per_frame: float
    direction: Literal["forward", "backward"]


@dataclass(eq=False)
class _Step:
    """One undo (or redo) step: previous content of the frames/states/objects it touched."""

    label: str
    frames: dict[int, StoredFrame] = field(default_factory=dict)
    states: dict[tuple[int, int], FrameState] = field(default_factory=dict)  # (frame, object)
    objects: tuple[ObjectSpec, ...] | None = None
    open: bool = False  # a running propagation job still adds frames to it
    pushed: bool = False  # (jobs) already on the undo stack
    dropped: bool = False  # (jobs) outgrew HistoryLimits.max_bytes: history cleared, not recorded

    @property
    def nbytes(self) -> int:
        return 128 + sum(f.nbytes for f in self.frames.values()) + 16 * len(self.states)


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


def propagation_stop(keyframes: Sequence[int], start: int, step: int, num_frames: int) -> int:
    """Exclusive stop index of a run from ``start`` in direction ``step`` (+1/-1): the nearest
    keyframe beyond ``start`` in that direction, else the video end (``num_frames`` or -1)."""
    if step > 0:
        later = [k for k in keyframes if k > start]
        return min(later) if later else num_frames
    earlier = [k for k in keyframes if k < start]
    return max(earlier) if earlier else -1


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


def restrict_labels(labels: FrameLabels, objects: Iterable[int]) -> FrameLabels:
    """The labels of ``objects`` only: other ids' mask pixels become background (0) and other
    keypoint objects are dropped. ``(H, W) uint8`` mask in, same shape out."""
    keep = set(objects)
    mask = labels.mask
    if mask is not None:
        lut = np.zeros(256, np.uint8)
        ids = [i for i in keep if 1 <= i <= 255]
        lut[ids] = ids
        mask = lut[mask]
    return FrameLabels(mask, {k: v for k, v in labels.keypoints.items() if k in keep})


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


class _LazyReferences(Mapping[int, FrameLabels]):
    """Keyframe labels read from the project on access (keeps memory bounded), restricted to
    ``objects`` (:func:`restrict_labels`)."""

    def __init__(self, project: Project, keys: Iterable[int], objects: Iterable[int]) -> None:
        self._project = project
        self._keys = tuple(sorted(set(keys)))
        self._objects = tuple(objects)

    def __getitem__(self, key: int) -> FrameLabels:
        if key not in self._keys:
            raise KeyError(key)
        return restrict_labels(self._project.labels(key), self._objects)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


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
        self._limits = history or HistoryLimits()
        self._lock = threading.RLock()
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._subscribers: list[Callable[[ChangeEvent], None]] = []
        self._hidden: set[int] = set()
        self._stroke: _Stroke | None = None
        self._last_ms_per_frame: float | None = None

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
            step = _Step("Clear frame", {frame: before}, stale)
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
            self._push(_Step("Make keyframe", {frame: before}))
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
            self._push(_Step(f"Add {name}", objects=before))
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
            self._push(_Step(f"Remove {spec.name}", before, objects=before_objects))
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
            return bool(self._undo) and not self._undo[-1].open

    @property
    def can_redo(self) -> bool:
        with self._lock:
            return bool(self._redo)

    @property
    def undo_label(self) -> str | None:
        """Name of the step :meth:`undo` would revert (for a menu), or None."""
        with self._lock:
            return self._undo[-1].label if self.can_undo else None

    @property
    def redo_label(self) -> str | None:
        with self._lock:
            return self._redo[-1].label if self._redo else None

    def undo(self) -> bool:
        """Revert the last step; False when there is none (or it is a job still running).
        A brush stroke in progress is cancelled first."""
        self.cancel_stroke()
        with self._lock:
            if not self.can_undo:
                return False
            step = self._undo.pop()
            inverse = self._swap(step)
            self._redo.append(inverse)
        self._emit(self._swap_event("undo", step))
        return True

    def redo(self) -> bool:
        """Re-apply the last undone step; False when there is none. Cancels a stroke first."""
        self.cancel_stroke()
        with self._lock:
            if not self._redo:
                return False
            step = self._redo.pop()
            inverse = self._swap(step)
            self._undo.append(inverse)
            self._trim_history()
        self._emit(self._swap_event("redo", step))
        return True

    @property
    def history_bytes(self) -> int:
        """Bytes held by the undo and redo stacks."""
        with self._lock:
            return sum(s.nbytes for s in (*self._undo, *self._redo))

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
        return PropagationJob(self, start, steps, propagator)

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
            self._push(_Step(label, {frame: before}, stale))
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
            self._push(_Step(f"{label} {old.name}", objects=before))
        self._emit(ChangeEvent("objects", objects_changed=True))

    def _push(self, step: _Step) -> None:
        """Record a new step (clears redo) and enforce the history bounds."""
        self._undo.append(step)
        self._redo.clear()
        self._trim_history()

    def _trim_history(self) -> None:
        """Drop oldest steps beyond the count/byte bounds (a step still open is kept)."""
        limits = self._limits
        total = sum(s.nbytes for s in self._undo)
        while self._undo and (len(self._undo) > limits.max_steps or total > limits.max_bytes):
            if self._undo[0].open:
                break
            total -= self._undo.pop(0).nbytes

    def _swap(self, step: _Step) -> _Step:
        """Apply a step's stored side; return the inverse step (the side it replaced)."""
        project = self._project
        known = set(project.mask_object_ids()) | set(project.keypoint_object_ids())
        current = {o: project.object_states(o) for o in {o for _, o in step.states} & known}
        inverse = _Step(
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
    def _swap_event(kind: EventKind, step: _Step) -> ChangeEvent:
        frames = tuple(sorted({*step.frames, *(t for t, _ in step.states)}))
        return ChangeEvent(kind, frames=frames, objects_changed=step.objects is not None)

    # ---- used by PropagationJob -------------------------------------------------------------

    def _run_objects(self, start: int) -> tuple[int, ...]:
        """The objects a run from ``start`` propagates: those with a state on ``start``."""
        return tuple(o for o, p in self._project.provenance(start).items() if p.state)

    def _run_origin(self, start: int, step: int, object_id: int) -> int:
        """The keyframe of ``object_id`` a run from ``start`` in direction ``step`` derives from:
        ``start`` itself when it is a keyframe of the object, else the keyframe the object was
        propagated from on ``start`` in that same direction (so resuming after a cancel keeps the
        stale rule exact)."""
        prov = self._project.provenance(start)[object_id]
        if prov.state == FrameState.PAINTED or prov.source is None:
            return start
        return prov.source if (prov.source - start) * step < 0 else start

    def _run_references(
        self, start: int, start_labels: FrameLabels, objects: Sequence[int]
    ) -> _StartedReferences:
        """Long-term memory of a run: the start frame and every keyframe of a running object on
        which all running objects have a state (so no reference claims an object is absent
        where it is merely unlabelled), restricted to the running objects."""
        project = self._project
        states = np.stack([project.object_states(o) for o in objects])  # (R, N)
        keys = np.flatnonzero(
            (states == FrameState.PAINTED).any(axis=0) & (states != FrameState.EMPTY).all(axis=0)
        )
        return _StartedReferences(project, keys.tolist(), start, start_labels, objects)

    def _job_write(
        self,
        step: _Step,
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
            self._record_job_frame(step, t)
            project.set_labels(t, labels, updates)
        self._emit(ChangeEvent("propagate", frames=(t,), history_changed=False))
        return True

    def _record_job_frame(self, step: _Step, t: int) -> None:
        """Keep frame ``t``'s previous content in the run's undo step; a run whose undo data
        outgrows ``max_bytes`` clears the whole history instead (it cannot be undone)."""
        if step.dropped or t in step.frames:
            return
        if not step.pushed:
            step.pushed = True
            self._push(step)
        step.frames[t] = self._project.stored(t)
        if step.nbytes > self._limits.max_bytes:
            step.dropped = True
            step.frames.clear()
            self._undo.clear()
            self._redo.clear()
        self._trim_history()

    def _job_finished(self, step: _Step, ms_per_frame: float | None) -> None:
        with self._lock:
            step.open = False
            if ms_per_frame is not None:
                self._last_ms_per_frame = ms_per_frame
            self._trim_history()
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


class PropagationJob:
    """A cancellable propagation run; iterate it (e.g. on a worker thread) to do the work.

    Iterating yields one :class:`PropagationProgress` per frame written. ``cancel()`` may be called
    from any thread and takes effect before the next frame is computed; ``close()`` cancels from
    the iterating side. Frames already written are kept; the run is a single undo step.
    ``objects`` are the objects it propagates; ``stops`` gives, per direction, each object's
    exclusive stop (its own next keyframe or the video end). ``total`` is an upper bound fixed at
    creation (the run can stop early when the user paints a frame ahead of it).
    """

    def __init__(
        self,
        session: Session,
        start: int,
        steps: Sequence[int],
        propagator: Propagator,
    ) -> None:
        project = session.project
        n = project.num_frames
        self._session = session
        self.start = start
        self.propagator = propagator
        self.on_warmup: Callable[[WarmupProgress], None] | None = None
        self.objects = session._run_objects(start)
        keys = {o: project.object_keyframes(o) for o in self.objects}
        self.stops: list[dict[int, int]] = [
            {o: propagation_stop(keys[o], start, s, n) for o in self.objects} for s in steps
        ]
        self._runs = [
            (s, (max if s > 0 else min)(stops.values(), default=start + s))
            for s, stops in zip(steps, self.stops)
        ]
        self.total = sum(abs(stop - start) - 1 for _, stop in self._runs)
        self._cancel = threading.Event()
        self._step = _Step(f"Propagate from frame {start}", open=True)
        self.done = 0
        self.finished = False
        self._iterator: Iterator[PropagationProgress] | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """``(start, stop)`` pairs of the runs (stop exclusive: where the last object stops),
        in order."""
        return [(self.start, stop) for _, stop in self._runs]

    def cancel(self) -> None:
        """Ask the job to stop before the next frame (thread-safe)."""
        self._cancel.set()

    def __iter__(self) -> Iterator[PropagationProgress]:
        return self

    def __next__(self) -> PropagationProgress:
        if self._iterator is None:
            self._iterator = self._work()
        return next(self._iterator)

    def close(self) -> None:
        """Stop and finalise (keeps what is done). Safe to call more than once."""
        self.cancel()
        if self._iterator is not None:
            self._iterator.close()
        else:
            self.finished = True

    def run(self, on_progress: Callable[[PropagationProgress], None] | None = None) -> int:
        """Iterate to the end; returns the number of frames written."""
        for progress in self:
            if on_progress is not None:
                on_progress(progress)
        return self.done

    def _work(self) -> Iterator[PropagationProgress]:
        session, project = self._session, self._session.project
        labels_start = project.labels(self.start)
        objects = self.objects
        num_kp = {
            o.id: len(o.keypoint_names)
            for o in project.objects
            if o.kind == "keypoints" and o.id in objects
        }
        cache = session._cache_for(self.propagator)
        seconds = 0.0  # per-frame compute time: warm-up (encoding the memory) is not counted
        try:
            for (step, stop), stops in zip(self._runs, self.stops):
                if abs(stop - self.start) <= 1:
                    continue
                running = {
                    o: (o_stop, session._run_origin(self.start, step, o))
                    for o, o_stop in stops.items()
                }
                refs = session._run_references(self.start, labels_start, objects)
                results = self.propagator.propagate(
                    session.video.frame,  # type: ignore[union-attr]
                    self.start,
                    stop,
                    refs,
                    num_kp,
                    cache=cache,
                    on_warmup=self.on_warmup,
                )
                prev = self.start
                try:
                    while not self._cancel.is_set():
                        result = next(results, None)
                        if result is None:
                            break
                        seconds += result.seconds
                        if not session._job_write(
                            self._step, self.start, step, running, result, prev
                        ):
                            break
                        prev = result.index
                        self.done += 1
                        yield PropagationProgress(
                            self.done,
                            self.total,
                            result.index,
                            result.confidence,
                            1000.0 * seconds / self.done,
                            "forward" if step > 0 else "backward",
                        )
                finally:
                    close = getattr(results, "close", None)
                    if close is not None:
                        close()
        finally:
            self.finished = True
            session._job_finished(self._step, 1000.0 * seconds / self.done if self.done else None)


class _StartedReferences(_LazyReferences):
    """Keyframes read lazily, plus the start frame's labels captured when the job began."""

    def __init__(
        self,
        project: Project,
        keys: Iterable[int],
        start: int,
        start_labels: FrameLabels,
        objects: Iterable[int],
    ) -> None:
        objects = tuple(objects)
        super().__init__(project, [*keys, start], objects)
        self._start = start
        self._start_labels = restrict_labels(start_labels, objects)

    def __getitem__(self, key: int) -> FrameLabels:
        if key == self._start:
            return self._start_labels
        return super().__getitem__(key)
