"""Smart select: drag a box around an object and it is segmented (:mod:`tracker_core.selection`);
then a left click adds a missed part, a right click removes a wrong one. A click with no box
refines the active object's mask on this frame. Each result is one undo step ("Smart select").

The segmentation runs through :meth:`ToolContext.submit` (a worker thread in the GUI); clicks
made while it runs are queued and sent together with the next run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tracker_core.selection import Click, SelectionConfig, SmartSelector
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

DRAG_PX = 4.0  # a press-release that moved less than this (image px) is a click
REFINE_MARGIN = 0.15  # click-refining an existing mask: its box grows by this fraction per side


@dataclass
class _Selection:
    """One selection being refined: where, the mask before it, and its clicks."""

    frame: int
    object_id: int
    box: tuple[int, int, int, int]
    base: np.ndarray  # (H, W) uint8 the frame's mask when the selection started
    image: np.ndarray  # (H, W, 3) uint8 RGB
    initial: np.ndarray | None = None  # (H, W) bool: refine this mask instead of the box cut
    clicks: list[Click] = field(default_factory=list)
    selector: SmartSelector | None = None  # built on the worker by the first run

    def compose(self, selected: np.ndarray) -> np.ndarray:
        """The frame's new mask: inside the box the object is exactly ``selected`` (it overwrites
        other objects there, like the brush); outside the box nothing changes."""
        x0, y0, x1, y1 = self.box
        new = self.base.copy()
        region = new[y0:y1, x0:x1]
        region[region == self.object_id] = 0
        new[selected] = self.object_id
        return new


def mask_box(mask: np.ndarray, margin: float) -> tuple[int, int, int, int] | None:
    """Bounding box ``(x0, y0, x1, y1)`` of a ``(H, W) bool`` mask grown by ``margin`` of its
    size on each side (clipped to the image); None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    mx, my = math.ceil(margin * (x1 - x0)) + 2, math.ceil(margin * (y1 - y0)) + 2
    return max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)


class SmartSelectTool(BaseTool):
    def __init__(self, config: SelectionConfig | None = None) -> None:
        self.config = config or SelectionConfig()
        self.selection: _Selection | None = None
        self._press: tuple[Point, str] | None = None  # where and with which button
        self._drag_to: Point | None = None
        self._busy = False
        self._dirty = False  # clicks arrived while a run was busy
        self._generation = 0
        self.runs = 0  # finished runs (for tests and the status bar)

    # ---- input ---------------------------------------------------------------------------

    def press(self, ctx: ToolContext, event: PointerEvent) -> None:
        if event.button in ("left", "right"):
            self._press = ((event.x, event.y), event.button)
            self._drag_to = None

    def move(self, ctx: ToolContext, event: PointerEvent) -> None:
        if self._press is not None and self._press[1] == "left":
            self._drag_to = (event.x, event.y)
            ctx.overlay_changed()

    def release(self, ctx: ToolContext, event: PointerEvent) -> None:
        if self._press is None:
            return
        (px, py), button = self._press
        self._press, self._drag_to = None, None
        dragged = math.hypot(event.x - px, event.y - py) >= max(DRAG_PX, event.pick / 2)
        if button == "left" and dragged:
            self.select_box(ctx, (px, py, event.x, event.y))
        elif not dragged:
            self.click(ctx, event.x, event.y, positive=button == "left")
        ctx.overlay_changed()

    def double_click(self, ctx: ToolContext, event: PointerEvent) -> None:
        pass  # the second press of a double click is not another click

    def key(self, ctx: ToolContext, key: Key) -> bool:
        if key in ("escape", "enter") and (self.selection is not None or self._press):
            self.cancel(ctx)
            ctx.message("Selection finished (Ctrl+Z undoes its last step)")
            return True
        return False

    def cancel(self, ctx: ToolContext) -> None:
        """End the selection; what was applied stays (it is on the undo stack)."""
        self.selection = None
        self._press, self._drag_to = None, None
        self._generation += 1
        self._dirty = False
        ctx.overlay_changed()

    # ---- commands ------------------------------------------------------------------------

    def select_box(self, ctx: ToolContext, box: tuple[float, float, float, float]) -> bool:
        """Start a selection from a box ``(x0, y0, x1, y1)`` (any corner order)."""
        x0, y0 = clamp(ctx, min(box[0], box[2]), min(box[1], box[3]))
        x1, y1 = clamp(ctx, max(box[0], box[2]), max(box[1], box[3]))
        ibox = (math.floor(x0), math.floor(y0), math.floor(x1) + 1, math.floor(y1) + 1)
        if ibox[2] - ibox[0] < 3 or ibox[3] - ibox[1] < 3:
            ctx.message("Drag a larger box around the object")
            return False
        spec = mask_target(ctx)
        if spec is None:
            return False
        base = self._base_mask(ctx)
        self._start(_Selection(ctx.frame, spec.id, ibox, base, ctx.frame_image()))
        self._run(ctx)
        return True

    def click(self, ctx: ToolContext, x: float, y: float, positive: bool) -> bool:
        """Add a refinement click; with no selection, refine the active object's mask."""
        sel = self.selection
        if sel is None or sel.frame != ctx.frame:
            sel = self._selection_from_mask(ctx, x, y)
            if sel is None:
                return False
            self._start(sel)
        x0, y0, x1, y1 = sel.box
        if not (x0 <= x < x1 and y0 <= y < y1):
            ctx.message("Click inside the selection box, or drag a new box")
            return False
        sel.clicks.append(Click(float(x), float(y), positive))
        self._run(ctx)
        return True

    # ---- internals -----------------------------------------------------------------------

    def _base_mask(self, ctx: ToolContext) -> np.ndarray:
        mask = ctx.session.labels(ctx.frame).mask
        project = ctx.session.project
        return np.zeros((project.height, project.width), np.uint8) if mask is None else mask.copy()

    def _selection_from_mask(self, ctx: ToolContext, x: float, y: float) -> _Selection | None:
        """A selection refining the active object's mask: its box (with the click) grown by
        ``REFINE_MARGIN``."""
        spec = ctx.active_object
        mask = ctx.session.labels(ctx.frame).mask
        if spec is None or spec.kind != "mask" or mask is None or not (mask == spec.id).any():
            ctx.message("Drag a box around the object first (then click to add or remove)")
            return None
        own = mask == spec.id
        reach = own.copy()
        cx, cy = clamp(ctx, x, y)
        reach[round(cy), round(cx)] = True
        box = mask_box(reach, REFINE_MARGIN)
        if box is None:
            return None
        return _Selection(ctx.frame, spec.id, box, mask.copy(), ctx.frame_image(), initial=own)

    def _start(self, sel: _Selection) -> None:
        self.selection = sel
        self._generation += 1
        self._dirty = False

    def _run(self, ctx: ToolContext) -> None:
        sel = self.selection
        if sel is None:
            return
        if self._busy:
            self._dirty = True
            return
        self._busy = True
        generation = self._generation
        clicks = tuple(sel.clicks)
        config = self.config

        def work() -> np.ndarray:
            if sel.selector is None:
                sel.selector = SmartSelector(sel.image, sel.box, config, initial=sel.initial)
            return sel.selector.update(clicks)

        def done(selected: np.ndarray) -> None:
            self._finish(ctx)
            if generation != self._generation or self.selection is not sel:
                self._rerun_if_needed(ctx)
                return
            self.runs += 1
            ctx.session.set_mask(sel.frame, sel.compose(selected), label="Smart select")
            self._rerun_if_needed(ctx)

        def failed(message: str) -> None:
            self._finish(ctx)
            ctx.message(f"Smart select failed: {message}")

        ctx.overlay_changed()
        ctx.submit(work, done, failed)

    def _finish(self, ctx: ToolContext) -> None:
        self._busy = False
        ctx.overlay_changed()

    def _rerun_if_needed(self, ctx: ToolContext) -> None:
        if self._dirty:
            self._dirty = False
            self._run(ctx)

    @property
    def busy(self) -> bool:
        return self._busy

    def overlay(self, ctx: ToolContext) -> Overlay:
        if self._press is not None and self._drag_to is not None:
            (x0, y0), _ = self._press
            x1, y1 = self._drag_to
            return Overlay(box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        sel = self.selection
        if sel is None or sel.frame != ctx.frame:
            return Overlay(busy=self._busy)
        x0, y0, x1, y1 = sel.box
        clicks = tuple((c.x, c.y, c.positive) for c in sel.clicks)
        return Overlay(box=(x0, y0, x1 - 1, y1 - 1), clicks=clicks, busy=self._busy)

    @property
    def interacting(self) -> bool:
        return self._press is not None
