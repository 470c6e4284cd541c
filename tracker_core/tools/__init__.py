"""Canvas tools as Qt-free objects, and THE tool registry.

The canvas, the action table (menu + shortcuts + Help → Shortcuts) and the toolbar all read
:data:`TOOLS`; a new tool is one module with a :class:`~tracker_core.tools.base.Tool` and one
:class:`ToolSpec` line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from tracker_core.labels import ObjectKind
from tracker_core.tools.base import (
    BaseTool,
    Overlay,
    PlainContext,
    PointerEvent,
    Tool,
    ToolContext,
)
from tracker_core.tools.brush import BrushTool, EraserTool
from tracker_core.tools.fill import FillTool
from tracker_core.tools.keypoints import KeypointTool
from tracker_core.tools.polygon import PolygonTool
from tracker_core.tools.smart import SmartSelectTool

CursorKind = Literal["brush", "cross", "point"]  # brush outline / crosshair / arrow


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the views see it. ``label`` may hold a ``&`` mnemonic; ``icon`` names a
    drawing in ``app/icons.py``; ``edits`` is the object kind it works on; ``mouse`` is the
    Help → Shortcuts line; ``hint`` the status-bar hint while it is active."""

    name: str
    label: str
    shortcut: str
    icon: str
    cursor: CursorKind
    edits: ObjectKind
    tip: str
    mouse: str
    hint: str
    factory: Callable[[], Tool]


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "brush",
        "&Brush",
        "B",
        "brush",
        "brush",
        "mask",
        "Paint the active mask object",
        "Left-drag paints the active object; right-drag erases; [ and ] resize",
        "Brush: drag to paint, right-drag to erase, [ ] resize",
        BrushTool,
    ),
    ToolSpec(
        "eraser",
        "&Eraser",
        "E",
        "eraser",
        "brush",
        "mask",
        "Erase the active mask object",
        "Drag erases the active object only",
        "Eraser: drag to erase the active object",
        EraserTool,
    ),
    ToolSpec(
        "polygon",
        "&Polygon",
        "P",
        "polygon",
        "cross",
        "mask",
        "Fill a polygon with the active mask object",
        "Click adds a vertex; double-click, Enter or the first vertex fills; Backspace undoes "
        "a vertex; Esc cancels",
        "Polygon: click vertices, double-click or Enter to fill, Esc to cancel",
        PolygonTool,
    ),
    ToolSpec(
        "smart",
        "&Smart select",
        "S",
        "smart",
        "cross",
        "mask",
        "Drag a box around an object to segment it; click to add or remove parts",
        "Drag a box segments the object; then left-click adds, right-click removes; a click "
        "without a box refines the object's mask",
        "Smart select: drag a box, then left-click adds, right-click removes",
        SmartSelectTool,
    ),
    ToolSpec(
        "fill",
        "Fill &hole",
        "G",
        "fill",
        "cross",
        "mask",
        "Fill an enclosed gap with the active mask object",
        "Click inside an enclosed gap fills it with the active object",
        "Fill hole: click inside a gap enclosed by the mask",
        FillTool,
    ),
    ToolSpec(
        "keypoints",
        "&Keypoints",
        "K",
        "keypoints",
        "point",
        "keypoints",
        "Place, move and delete the points of the active keypoint object",
        "Click places the selected point; drag moves; right-click deletes; Shift+click "
        "toggles visible / occluded",
        "Keypoints: click to place, drag to move, right-click deletes, Shift+click occludes",
        KeypointTool,
    ),
)


def tool_spec(name: str) -> ToolSpec:
    """The registry entry called ``name``; ValueError for an unknown tool."""
    for spec in TOOLS:
        if spec.name == name:
            return spec
    raise ValueError(f"unknown tool {name!r} (known: {', '.join(s.name for s in TOOLS)})")


__all__ = [
    "TOOLS",
    "BaseTool",
    "CursorKind",
    "Overlay",
    "PlainContext",
    "PointerEvent",
    "Tool",
    "ToolContext",
    "ToolSpec",
    "tool_spec",
]
