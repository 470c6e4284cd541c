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


class FrameDamaged(VideoError):  # noqa: N818 (reads as a state: "frame damaged")
    """One frame of a video or frame folder is damaged: corrupt, truncated, missing, of the
    wrong size, or undecodable. The message reads ``<file>: frame N: <problem>``.

    Attributes:
        frame: the frame index.
        problem: what is wrong with it (one line, without the file and frame number).
    """

    def __init__(self, frame: int, path: str | Path, problem: str) -> None:
        self.frame = int(frame)
        self.problem = " ".join(problem.split())
        super().__init__(f"frame {self.frame}: {self.problem}", path)


class DatasetError(TrackpaintError):
    """An evaluation data set (DAVIS root, BADJA keypoint files) is missing or incomplete."""


class ManifestError(TrackpaintError):
    """A batch manifest is unreadable or malformed (``<manifest>: line N: <problem>``)."""
