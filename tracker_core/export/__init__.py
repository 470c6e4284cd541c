"""Export a project's labels to DAVIS indexed PNGs / COCO JSON, and import them back.

Functions over plain data (``ObjectSpec``, ``FrameLabels``), independent of the project document:

- :func:`export_davis` / :func:`import_davis`: ``Annotations/<video>/NNNNN.png``, DAVIS palette.
- :func:`export_coco` / :func:`import_coco`: one JSON file, masks as RLE or polygons, keypoints.

All failures (unwritable folder, full disk, malformed input) raise ``ExportError`` naming the path.
"""

from tracker_core.export.coco import export_coco, frame_file_names, import_coco
from tracker_core.export.davis import export_davis, import_davis

__all__ = ["export_coco", "export_davis", "frame_file_names", "import_coco", "import_davis"]
