"""What every tool shares: the pointer event, the overlay it asks the view to draw, the context
it acts through, the protocol, and the rules for picking the object a tool edits.

A tool turns pointer/key input in **image coordinates** into Session commands. It never draws:
:meth:`Tool.overlay` describes what the view should show (a polyline with vertex handles, a box,
click markers, the brush outline). It never blocks: slow work goes through
:meth:`ToolContext.submit`, which the GUI runs on a worker thread and a test runs inline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from tracker_core.labels import ObjectSpec
from tracker_core.session import Session


def run_inline(
    work: Callable[[], Any], done: Callable[[Any], None], failed: Callable[[str], None]
) -> None:
    """Run ``work()`` now and hand its result to ``done``, or a one-line
    ``"<ExceptionType>: <message>"`` to ``failed`` (the way the GUI's worker reports errors)."""
    try:
        result = work()
    except Exception as exc:
        failed(f"{type(exc).__name__}: {exc}")
        return
    done(result)


Button = Literal["left", "right", "middle", "none"]
Point = tuple[float, float]
Key = Literal["escape", "enter", "backspace", "delete"]


@dataclass(frozen=True)
class PointerEvent:
    """A mouse event in image pixel coordinates (pixel centres at integers).

    ``button`` is the button pressed/released (``"none"`` for a hover move); ``pick`` is how
    many image pixels count as "on" a point or vertex at the current zoom."""

    x: float
    y: float
    button: Button = "left"
    shift: bool = False
    ctrl: bool = False
    pick: float = 6.0


@dataclass(frozen=True)
class Overlay:
    """What the view draws over the frame for the active tool (all in image coordinates).

    ``path``: a polyline (``closed`` joins the ends); ``handles``: vertex handles; ``box``:
    ``(x0, y0, x1, y1)``; ``clicks``: ``(x, y, positive)`` markers; ``brush``:
    ``(x, y, radius, erase)`` outline; ``moved_point``: ``(object id, point index, x, y)`` of a
    keypoint being dragged; ``busy``: a computation is running."""

    path: tuple[Point, ...] = ()
    closed: bool = False
    handles: tuple[Point, ...] = ()
    box: tuple[float, float, float, float] | None = None
    clicks: tuple[tuple[float, float, bool], ...] = ()
    brush: tuple[float, float, float, bool] | None = None
    moved_point: tuple[int, int, float, float] | None = None
    busy: bool = False


class ToolContext(Protocol):
    """What a tool may use: the session, the view state shared with other widgets, messages
    for the user, and a way to run slow work off the GUI thread."""

    @property
    def session(self) -> Session: ...

    @property
    def frame(self) -> int: ...

    @property
    def active_object(self) -> ObjectSpec | None: ...

    def set_active_object(self, object_id: int) -> None: ...

    @property
    def active_point(self) -> int: ...

    def set_active_point(self, index: int) -> None: ...

    @property
    def brush_radius(self) -> float: ...

    def frame_image(self) -> np.ndarray:
        """The current frame, ``(H, W, 3) uint8`` RGB."""
        ...

    def message(self, text: str) -> None:
        """A short hint for the status bar."""
        ...

    def overlay_changed(self) -> None:
        """The tool's overlay changed: the view should repaint it."""
        ...

    def submit(
        self,
        work: Callable[[], Any],
        done: Callable[[Any], None],
        failed: Callable[[str], None],
    ) -> None:
        """Run ``work()`` off the GUI thread; then call ``done(result)`` or ``failed(message)``
        on the GUI thread."""
        ...


class Tool(Protocol):
    """A canvas tool. Every method is called on the GUI thread."""

    def press(self, ctx: ToolContext, event: PointerEvent) -> None: ...

    def move(self, ctx: ToolContext, event: PointerEvent) -> None: ...

    def release(self, ctx: ToolContext, event: PointerEvent) -> None: ...

    def double_click(self, ctx: ToolContext, event: PointerEvent) -> None: ...

    def key(self, ctx: ToolContext, key: Key) -> bool:
        """Handle a key; True when it was used."""
        ...

    def cancel(self, ctx: ToolContext) -> None:
        """Drop whatever is in progress (Esc, frame or tool change)."""
        ...

    def overlay(self, ctx: ToolContext) -> Overlay: ...

    @property
    def interacting(self) -> bool:
        """Something is in progress that a frame change would interrupt."""
        ...


class BaseTool:
    """No-op defaults for the :class:`Tool` methods a tool does not need."""

    def press(self, ctx: ToolContext, event: PointerEvent) -> None:
        pass

    def move(self, ctx: ToolContext, event: PointerEvent) -> None:
        pass

    def release(self, ctx: ToolContext, event: PointerEvent) -> None:
        pass

    def double_click(self, ctx: ToolContext, event: PointerEvent) -> None:
        self.press(ctx, event)

    def key(self, ctx: ToolContext, key: Key) -> bool:
        return False

    def cancel(self, ctx: ToolContext) -> None:
        pass

    def overlay(self, ctx: ToolContext) -> Overlay:
        return Overlay()

    @property
    def interacting(self) -> bool:
        return False


# --------------------------------------------------------------------------- object rules


def default_object_name(session: Session) -> str:
    """``"object N"`` with the smallest N not used by an existing object name."""
    names = {o.name for o in session.project.objects}
    n = 1
    while f"object {n}" in names:
        n += 1
    return f"object {n}"


def mask_target(ctx: ToolContext) -> ObjectSpec | None:
    """The mask object a mask tool edits: the active one; when nothing is active and the project
    has no mask object, a new one (created and made active, so the user's first stroke is never
    dropped); None with a hint when a keypoint object is active."""
    spec = ctx.active_object
    if spec is not None and spec.kind == "mask":
        return spec
    session = ctx.session
    if spec is None and not session.project.mask_object_ids():
        spec = session.add_object(default_object_name(session))
        ctx.set_active_object(spec.id)
        ctx.message(f"Created mask object “{spec.name}” (rename it in the Objects panel)")
        return spec
    if spec is None:
        ctx.message("Select a mask object in the Objects panel (keys 1–9)")
    else:
        ctx.message(f"{spec.name} is a keypoint object: use the keypoint tool (K) or pick a mask")
    return None


def keypoint_target(ctx: ToolContext) -> ObjectSpec | None:
    """The active keypoint object, or None with a hint."""
    spec = ctx.active_object
    if spec is not None and spec.kind == "keypoints":
        return spec
    if not ctx.session.project.keypoint_object_ids():
        ctx.message("Add a keypoint object first (Edit → New keypoint object, Ctrl+Shift+N)")
    elif spec is not None:
        ctx.message(f"{spec.name} is a mask object: select a keypoint object")
    return None


def clamp(ctx: ToolContext, x: float, y: float) -> Point:
    """``(x, y)`` clipped to the image."""
    project = ctx.session.project
    return float(np.clip(x, 0, project.width - 1)), float(np.clip(y, 0, project.height - 1))


# --------------------------------------------------------------------------- a plain context


@dataclass
class PlainContext:
    """A Qt-free :class:`ToolContext` for tests and scripts: ``submit`` runs the work inline,
    messages are collected, images come from ``images(frame)``."""

    session: Session
    images: Callable[[int], np.ndarray] | None = None
    frame: int = 0
    active_object_id: int | None = None
    active_point: int = 0
    brush_radius: float = 12.0
    messages: list[str] = field(default_factory=list)
    repaints: int = 0

    @property
    def active_object(self) -> ObjectSpec | None:
        if self.active_object_id is None:
            return None
        try:
            return self.session.project.object(self.active_object_id)
        except KeyError:
            return None

    def set_active_object(self, object_id: int) -> None:
        self.active_object_id = object_id
        self.active_point = 0

    def set_active_point(self, index: int) -> None:
        self.active_point = index

    def frame_image(self) -> np.ndarray:
        if self.images is None:
            raise RuntimeError("this context has no images")
        return self.images(self.frame)

    def message(self, text: str) -> None:
        self.messages.append(text)

    def overlay_changed(self) -> None:
        self.repaints += 1

    def submit(
        self,
        work: Callable[[], Any],
        done: Callable[[Any], None],
        failed: Callable[[str], None],
    ) -> None:
        run_inline(work, done, failed)
