"""Brush and eraser: left-drag paints the active mask object (right-drag erases it); the
eraser erases with either button. One drag = one undo step (Session strokes)."""

from __future__ import annotations

from tracker_core.tools.base import BaseTool, Overlay, PointerEvent, ToolContext, mask_target


class BrushTool(BaseTool):
    """Round brush of the context's radius; ``erase=True`` makes it the eraser."""

    def __init__(self, erase: bool = False) -> None:
        self.erase = erase
        self._painting = False
        self._stroke_erases = erase
        self._hover: tuple[float, float] | None = None

    def press(self, ctx: ToolContext, event: PointerEvent) -> None:
        if event.button not in ("left", "right") or self._painting:
            return
        spec = mask_target(ctx)
        if spec is None:
            return
        self._stroke_erases = self.erase or event.button == "right"
        ctx.session.begin_stroke(ctx.frame, spec.id, ctx.brush_radius, erase=self._stroke_erases)
        self._painting = True
        ctx.session.stroke_to(event.x, event.y)

    def move(self, ctx: ToolContext, event: PointerEvent) -> None:
        self._hover = (event.x, event.y)
        if self._painting:
            ctx.session.stroke_to(event.x, event.y)
        ctx.overlay_changed()

    def release(self, ctx: ToolContext, event: PointerEvent) -> None:
        if self._painting:
            self._painting = False
            ctx.session.end_stroke()

    def cancel(self, ctx: ToolContext) -> None:
        if self._painting:
            self._painting = False
            ctx.session.cancel_stroke()

    def leave(self) -> None:
        """The pointer left the view: hide the outline."""
        self._hover = None

    def overlay(self, ctx: ToolContext) -> Overlay:
        if self._hover is None:
            return Overlay()
        erase = self._stroke_erases if self._painting else self.erase
        return Overlay(brush=(*self._hover, ctx.brush_radius, erase))

    @property
    def interacting(self) -> bool:
        return self._painting


class EraserTool(BrushTool):
    """The brush that only erases the active object."""

    def __init__(self) -> None:
        super().__init__(erase=True)
