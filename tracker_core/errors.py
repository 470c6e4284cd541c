"""Error types. Every message is one line that names the file (if any) and the problem."""

from __future__ import annotations

from pathlib import Path


class TrackpaintError(Exception):
    """Base class for errors that are shown to the user as a one-line message."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        text = message if path is None else f"{path}: {message}"
        super().__init__(" ".join(text.split()))


class VideoError(TrackpaintError):
    """A video file or frame folder cannot be opened or decoded."""


class MaskError(TrackpaintError):
    """A mask or keypoint label is malformed (size, dtype, id range, empty)."""


class ProjectError(TrackpaintError):
    """A project file is missing, broken, or of an unsupported version."""


class ExportError(TrackpaintError):
    """Export/import failed (unwritable folder, full disk, malformed COCO/DAVIS input)."""


class ModelError(TrackpaintError):
    """A model checkpoint cannot be loaded."""
