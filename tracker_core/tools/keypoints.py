"""Keypoints: a click places the selected point of the active keypoint object (then selects the
next unplaced one), dragging a point moves it, right-click deletes it, Shift+click toggles
visible/occluded."""

from __future__ import annotations

import numpy as np

from tracker_core.labels import ObjectSpec
from tracker_core.tools.base import (
    BaseTool,
    Overlay,
    PointerEvent,
    ToolContext,
    clamp,
    keypoint_target,
)


def next_unplaced(points: np.ndarray | None, count: int, after: int) -> int:
    """The first unplaced point after ``after`` (cyclically), else ``after + 1``; ``points``
    ``(P, 3)`` rows ``(x, y, visible)`` or None."""
    if points is not None:
        for k in range(1, count + 1):
            j = (after + k) % count
            if not np.isfinite(points[j, 0]):
                return j
    return (after + 1) % count


def hit_point(points: np.ndarray | None, x: float, y: float, pick: float) -> int | None:
    """Index of the placed point nearest ``(x, y)`` within ``pick`` pixels, else None."""
    if points is None or len(points) == 0:
        return None
    d = np.hypot(points[:, 0] - x, points[:, 1] - y)
    d = np.where(np.isfinite(d), d, np.inf)
    best = int(np.argmin(d))
    return best if d[best] <= pick else None


class KeypointTool(BaseTool):
    def __init__(self) -> None:
        self._drag: tuple[int, int, float, float] | None = None  # object, index, x, y

    def _points(self, ctx: ToolContext, spec: ObjectSpec) -> np.ndarray | None:
        return ctx.session.labels(ctx.frame).keypoints.get(spec.id)

    def press(self, ctx: ToolContext, event: PointerEvent) -> None:
        if event.button not in ("left", "right"):
            return
        spec = keypoint_target(ctx)
        if spec is None:
            return
        session, frame = ctx.session, ctx.frame
        points = self._points(ctx, spec)
        hit = hit_point(points, event.x, event.y, event.pick)
        if event.button == "right":
            if hit is not None:
                session.delete_keypoint(frame, spec.id, hit)
            return
        if hit is not None and points is not None:
            if event.shift:
                visible = bool(points[hit, 2] > 0)
                session.set_keypoint_visibility(frame, spec.id, hit, not visible)
                return
            ctx.set_active_point(hit)
            self._drag = (spec.id, hit, float(points[hit, 0]), float(points[hit, 1]))
            return
        index = ctx.active_point
        x, y = clamp(ctx, event.x, event.y)
        session.set_keypoint(frame, spec.id, index, x, y, True)
        after = self._points(ctx, spec)
        ctx.set_active_point(next_unplaced(after, len(spec.keypoint_names), index))

    def move(self, ctx: ToolContext, event: PointerEvent) -> None:
        if self._drag is not None:
            oid, idx, _, _ = self._drag
            self._drag = (oid, idx, event.x, event.y)
            ctx.overlay_changed()

    def release(self, ctx: ToolContext, event: PointerEvent) -> None:
        if self._drag is None:
            return
        oid, idx, x, y = self._drag
        self._drag = None
        points = ctx.session.labels(ctx.frame).keypoints.get(oid)
        visible = points is None or bool(points[idx, 2] > 0)
        x, y = clamp(ctx, x, y)
        ctx.session.set_keypoint(ctx.frame, oid, idx, x, y, visible)

    def cancel(self, ctx: ToolContext) -> None:
        if self._drag is not None:
            self._drag = None
            ctx.overlay_changed()

    def overlay(self, ctx: ToolContext) -> Overlay:
        return Overlay(moved_point=self._drag)

    @property
    def interacting(self) -> bool:
        return self._drag is not None
