"""Polygon: click vertices; double-click, Enter or a click on the first vertex fills it;
Backspace drops the last vertex; right-click or Esc cancels. Vertices show handles."""

from __future__ import annotations

import math

from tracker_core.tools.base import (
    BaseTool,
    Key,
    Overlay,
    Point,
    PointerEvent,
    ToolContext,
    clamp,
    mask_target,
)


class PolygonTool(BaseTool):
    def __init__(self) -> None:
        self.points: list[Point] = []
        self._hover: Point | None = None

    def press(self, ctx: ToolContext, event: PointerEvent) -> None:
        if event.button == "right":
            self.cancel(ctx)
            return
        if event.button != "left":
            return
        if len(self.points) >= 3:
            fx, fy = self.points[0]
            if math.hypot(event.x - fx, event.y - fy) <= event.pick:
                self.close(ctx)
                return
        if not self.points and mask_target(ctx) is None:
            return
        self.points.append(clamp(ctx, event.x, event.y))
        ctx.overlay_changed()

    def double_click(self, ctx: ToolContext, event: PointerEvent) -> None:
        if event.button == "left":
            self.close(ctx)

    def move(self, ctx: ToolContext, event: PointerEvent) -> None:
        self._hover = (event.x, event.y)
        if self.points:
            ctx.overlay_changed()

    def key(self, ctx: ToolContext, key: Key) -> bool:
        if not self.points:
            return False
        if key == "enter":
            self.close(ctx)
        elif key == "escape":
            self.cancel(ctx)
        elif key in ("backspace", "delete"):
            self.points.pop()
            ctx.overlay_changed()
        else:
            return False
        return True

    def close(self, ctx: ToolContext) -> None:
        """Fill the polygon clicked so far into the active mask object (one undo step)."""
        points, self.points = self.points, []
        ctx.overlay_changed()
        if not points:
            return
        if len(points) < 3:
            ctx.message("A polygon needs at least 3 points")
            return
        spec = mask_target(ctx)
        if spec is not None:
            ctx.session.fill_polygon(ctx.frame, spec.id, points)

    def cancel(self, ctx: ToolContext) -> None:
        if self.points:
            self.points = []
            ctx.overlay_changed()

    def overlay(self, ctx: ToolContext) -> Overlay:
        if not self.points:
            return Overlay()
        hover = (self._hover,) if self._hover is not None else ()
        return Overlay(path=(*self.points, *hover), handles=tuple(self.points))

    @property
    def interacting(self) -> bool:
        return bool(self.points)
