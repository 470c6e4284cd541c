"""Export a project's labels to DAVIS indexed PNGs / COCO JSON, and import them back.

The entry point every caller uses -- the CLI, the GUI's export dialog, the tests -- is
:func:`export_project` with the format registry :data:`FORMATS` (``registry.py``): it owns frame
selection (every frame of the video is exported; frames without labels are written empty) and
naming (``Annotations/<video>/NNNNN.png``; ``<video>.json``).

Below it, functions over plain data (``ObjectSpec``, ``FrameLabels``), independent of the
project document:

- :func:`export_davis` / :func:`import_davis`: ``Annotations/<video>/NNNNN.png``, DAVIS palette.
- :func:`export_coco` / :func:`import_coco`: one JSON file, masks as RLE or polygons, keypoints.

Both write under the output rule of :mod:`tracker_core.outputs` (never at or inside an input,
replace only a previous Trackpaint export, atomic). All failures (a refused target, unwritable
folder, full disk, malformed input) raise ``ExportError`` naming the path.
"""

from tracker_core.export.coco import coco_problem, export_coco, frame_file_names, import_coco
from tracker_core.export.davis import export_davis, import_davis, objects_from_ids
from tracker_core.export.registry import (
    FORMATS,
    ExportFormat,
    ExportOptions,
    ExportResult,
    describe_exports,
    export_format,
    export_project,
    export_target,
    video_name,
)

__all__ = [
    "FORMATS",
    "ExportFormat",
    "ExportOptions",
    "ExportResult",
    "coco_problem",
    "describe_exports",
    "export_coco",
    "export_davis",
    "export_format",
    "export_project",
    "export_target",
    "frame_file_names",
    "import_coco",
    "import_davis",
    "objects_from_ids",
    "video_name",
]
