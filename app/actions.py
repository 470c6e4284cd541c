"""The action table: every menu command with its shortcut(s), in one place.

The main window supplies a handler per key (:func:`build_actions` refuses a table entry without
one); the Help → Shortcuts dialog is generated from the same table (:func:`shortcut_rows`), so
the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import QWidget

from tracker_core.tools import TOOLS

MENUS = ("File", "Edit", "Tools", "Navigate", "Propagate", "View", "Model", "Help")


@dataclass(frozen=True)
class ActionSpec:
    """One command: ``key`` names its handler; ``group`` makes checkable actions exclusive."""

    key: str
    text: str
    menu: str
    shortcuts: tuple[str, ...] = ()
    tip: str = ""
    checkable: bool = False
    group: str = ""
    separator_before: bool = False
    icon: str = ""  # a drawing in app/icons.py (toolbar and menu)


ACTIONS: tuple[ActionSpec, ...] = (
    # File
    ActionSpec("open", "&Open video, folder or project…", "File", ("Ctrl+O",)),
    ActionSpec("open_folder", "Open &frame folder…", "File", ("Ctrl+Shift+O",)),
    ActionSpec("open_sample", "Open &sample clip", "File"),
    ActionSpec("save", "&Save project", "File", ("Ctrl+S",), separator_before=True),
    ActionSpec("save_as", "Save project &as…", "File", ("Ctrl+Shift+S",)),
    ActionSpec("export", "&Export DAVIS / COCO…", "File", ("Ctrl+E",), separator_before=True),
    ActionSpec("quit", "&Quit", "File", ("Ctrl+Q",), separator_before=True),
    # Edit
    ActionSpec("undo", "&Undo", "Edit", ("Ctrl+Z",), icon="undo"),
    ActionSpec("redo", "&Redo", "Edit", ("Ctrl+Shift+Z", "Ctrl+Y"), icon="redo"),
    ActionSpec(
        "fill_holes",
        "&Fill holes",
        "Edit",
        ("H",),
        "Fill the background holes inside the active object on this frame",
        separator_before=True,
        icon="fill_holes",
    ),
    ActionSpec(
        "make_keyframe",
        "Accept frame as &keyframe",
        "Edit",
        ("A",),
        "Keep this propagated frame as it is, as a keyframe",
    ),
    ActionSpec("clear_frame", "&Clear frame", "Edit", ("Shift+Del",)),
    ActionSpec("add_object", "&New mask object…", "Edit", ("Ctrl+N",), separator_before=True),
    ActionSpec("add_keypoint_object", "New &keypoint object…", "Edit", ("Ctrl+Shift+N",)),
    *(ActionSpec(f"object_{i}", f"Select object {i}", "Edit", (str(i),)) for i in range(1, 10)),
    # Tools
    # one checkable action per registered tool (tracker_core.tools.TOOLS)
    *(
        ActionSpec(
            f"tool_{t.name}",
            t.label,
            "Tools",
            (t.shortcut,),
            t.tip,
            checkable=True,
            group="tool",
            icon=t.icon,
        )
        for t in TOOLS
    ),
    ActionSpec("brush_smaller", "Brush smaller", "Tools", ("[",), separator_before=True),
    ActionSpec("brush_larger", "Brush larger", "Tools", ("]",)),
    # Navigate
    ActionSpec("prev_frame", "&Previous frame", "Navigate", ("Left",)),
    ActionSpec("next_frame", "&Next frame", "Navigate", ("Right",)),
    ActionSpec("back_10", "Back 10 frames", "Navigate", ("Shift+Left",)),
    ActionSpec("forward_10", "Forward 10 frames", "Navigate", ("Shift+Right",)),
    ActionSpec("first_frame", "First frame", "Navigate", ("Home",)),
    ActionSpec("last_frame", "Last frame", "Navigate", ("End",)),
    ActionSpec("play", "Play / pause", "Navigate", ("Space",), checkable=True),
    ActionSpec(
        "next_uncertain",
        "Next &uncertain frame",
        "Navigate",
        ("N",),
        "Jump to the next propagated frame whose confidence is below the threshold",
        separator_before=True,
        icon="next_uncertain",
    ),
    ActionSpec("next_keyframe", "Next keyframe", "Navigate", ("Ctrl+Right",)),
    ActionSpec("prev_keyframe", "Previous keyframe", "Navigate", ("Ctrl+Left",)),
    # Propagate
    ActionSpec(
        "propagate_forward",
        "Propagate &forward",
        "Propagate",
        ("F",),
        "Propagate from this frame to the next keyframe (or the end)",
        icon="forward",
    ),
    ActionSpec(
        "propagate_backward", "Propagate &backward", "Propagate", ("Shift+F",), icon="backward"
    ),
    ActionSpec("propagate_both", "Propagate both &ways", "Propagate", ("Ctrl+F",), icon="both"),
    ActionSpec(
        "follow",
        "F&ollow the propagation",
        "Propagate",
        tip="Show each frame as it is propagated",
        checkable=True,
    ),
    ActionSpec(
        "cancel_job", "&Cancel", "Propagate", ("Esc",), separator_before=True, icon="cancel"
    ),
    # View
    ActionSpec("zoom_in", "Zoom &in", "View", ("Ctrl+=", "Ctrl++")),
    ActionSpec("zoom_out", "Zoom &out", "View", ("Ctrl+-",)),
    ActionSpec("zoom_fit", "&Fit to window", "View", ("Ctrl+0",)),
    ActionSpec(
        "outline",
        "&Outline mode",
        "View",
        ("O",),
        checkable=True,
        separator_before=True,
        icon="outline",
    ),
    ActionSpec("opacity_up", "Overlay more opaque", "View", ("Ctrl+]",)),
    ActionSpec("opacity_down", "Overlay more transparent", "View", ("Ctrl+[",)),
    ActionSpec(
        "uncertain_threshold",
        "Uncertainty &threshold…",
        "View",
        tip="Below which confidence a propagated frame is uncertain (timeline dots, N)",
        separator_before=True,
    ),
    # Model
    ActionSpec("load_model", "&Load model checkpoint…", "Model"),
    ActionSpec("use_lab", "Use the colour (Lab) encoder", "Model"),
    ActionSpec(
        "preset_fast",
        "Preset: &fast",
        "Model",
        tip="Propagate with the fast preset (the default)",
        checkable=True,
        group="preset",
        separator_before=True,
    ),
    ActionSpec(
        "preset_accurate",
        "Preset: a&ccurate",
        "Model",
        tip="Propagate with the accurate preset (more memory frames, ~1.4x the time per frame)",
        checkable=True,
        group="preset",
    ),
    ActionSpec(
        "adapt",
        "&Adapt model to this video…",
        "Model",
        tip="Fine-tune the learned model on this video without labels (test-time adaptation)",
        separator_before=True,
    ),
    # Help
    ActionSpec("shortcuts", "&Shortcuts", "Help", ("F1",)),
    ActionSpec("about", "&About Trackpaint", "Help"),
)

MOUSE_HELP: tuple[tuple[str, str], ...] = (
    ("Wheel", "Zoom around the cursor"),
    ("Middle-drag / Alt+drag", "Pan"),
    *((f"Mouse ({t.label.replace('&', '')})", t.mouse) for t in TOOLS),
    ("Click the timeline", "Jump to that frame"),
)


def shortcut_text(spec: ActionSpec) -> str:
    """Shortcuts as the user sees them (native text), joined with ``, ``."""
    return ", ".join(
        QKeySequence(s).toString(QKeySequence.SequenceFormat.NativeText) for s in spec.shortcuts
    )


def shortcut_rows() -> list[tuple[str, str, str]]:
    """``(menu, command, shortcuts)`` for every action that has a shortcut; the nine
    "Select object N" actions share one row."""
    rows: list[tuple[str, str, str]] = []
    for spec in ACTIONS:
        if not spec.shortcuts:
            continue
        if spec.key.startswith("object_"):
            if spec.key == "object_1":
                rows.append((spec.menu, "Select object by its position in the list", "1 … 9"))
            continue
        rows.append((spec.menu, spec.text.replace("&", "").rstrip("…"), shortcut_text(spec)))
    return rows


def build_actions(
    parent: QWidget,
    handlers: Mapping[str, Callable[[], None]],
    wrap: Callable[[Callable[[], None]], Callable[[], None]] = lambda f: f,
    icons: Callable[[str], QIcon] | None = None,
) -> dict[str, QAction]:
    """Create a QAction per table entry, connected to ``wrap(handlers[key])``.

    Raises KeyError when a handler is missing (every command in the table must do something).
    The actions are added to ``parent`` so their shortcuts work window-wide; ``icons(name)``
    supplies the icon of entries that name one.
    """
    missing = [spec.key for spec in ACTIONS if spec.key not in handlers]
    if missing:
        raise KeyError(f"no handler for actions {missing}")
    actions: dict[str, QAction] = {}
    groups: dict[str, QActionGroup] = {}
    for spec in ACTIONS:
        action = QAction(spec.text, parent)
        action.setObjectName(f"action_{spec.key}")
        if spec.shortcuts:
            action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
        tip = spec.tip or spec.text.replace("&", "").rstrip("…")
        if spec.shortcuts:
            tip = f"{tip} ({shortcut_text(spec)})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.setCheckable(spec.checkable)
        if spec.icon and icons is not None:
            action.setIcon(icons(spec.icon))
        if spec.group:
            group = groups.setdefault(spec.group, QActionGroup(parent))
            group.setExclusive(True)
            group.addAction(action)
        action.triggered.connect(_caller(wrap(handlers[spec.key])))
        parent.addAction(action)
        actions[spec.key] = action
    return actions


def _caller(fn: Callable[[], None]) -> Callable[[bool], None]:
    def call(_checked: bool = False) -> None:
        fn()

    return call
