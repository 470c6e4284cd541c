"""The open document as the views see it: a Session over a Project, its videos, the current frame
and active object, and the session's change events forwarded to the GUI thread.

Nothing here edits labels: views call the :class:`~tracker_core.session.Session` commands
directly (``document.session``). This object only opens/saves/closes and keeps view state that
several widgets share (current frame, active object, active keypoint).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal

from tracker_core.encoder import Encoder
from tracker_core.errors import ProjectError, VideoError
from tracker_core.labels import ObjectSpec
from tracker_core.masks import load_mask
from tracker_core.project import PROJECT_SUFFIX, FrameState, Project
from tracker_core.propagator import DEFAULT_PRESET
from tracker_core.session import ChangeEvent, Session
from tracker_core.video import VideoSource

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "resources" / "sample"
SAMPLE_CLIP = SAMPLE_DIR / "bear"
SAMPLE_MASK = SAMPLE_DIR / "bear_00000.png"

AskRecover = Callable[[Path], bool]


def is_project_file(path: Path) -> bool:
    """A Trackpaint project (by suffix or SQLite header) rather than a video or frame folder."""
    if path.suffix == PROJECT_SUFFIX:
        return True
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


@dataclass(frozen=True)
class Opened:
    """What :func:`open_document` built; the caller owns (and closes) all of it."""

    project: Project
    display: VideoSource
    worker_video: VideoSource


def _open_videos(path: Path) -> tuple[VideoSource, VideoSource]:
    display = VideoSource.open(path)
    try:
        worker = VideoSource.open(path, cache_size=8)
    except BaseException:
        display.close()
        raise
    return display, worker


def open_document(
    path: Path, scratch_dir: Path | None, ask_recover: AskRecover | None = None
) -> Opened:
    """Open a project file, or a video file / frame folder as a new project.

    When an autosave newer than the project exists, ``ask_recover(autosave_path)`` decides
    whether to open it instead. Raises VideoError/ProjectError with a one-line message.
    """
    path = Path(path).absolute()
    if not path.exists():
        raise VideoError("no such file or folder", path)
    if is_project_file(path):
        project = Project.open(path, scratch_dir=scratch_dir)
        recovery = project.recovery_path()
        if recovery is not None and ask_recover is not None and ask_recover(recovery):
            project.close()
            project = Project.open(path, from_autosave=True, scratch_dir=scratch_dir)
        video_path = project.video_path
    else:
        video_path = path
        project = None
    try:
        display, worker = _open_videos(video_path)
    except BaseException:
        if project is not None:
            project.close()
        raise
    try:
        if project is None:
            project = Project.new(
                video_path, len(display), display.height, display.width, scratch_dir=scratch_dir
            )
            project = _maybe_recover_unsaved(project, scratch_dir, ask_recover)
        elif (project.num_frames, project.height, project.width) != (
            len(display),
            display.height,
            display.width,
        ):
            raise ProjectError(
                f"the video has {len(display)} frames of {display.width}x{display.height} but "
                f"the project expects {project.num_frames} of {project.width}x{project.height}",
                path,
            )
    except BaseException:
        display.close()
        worker.close()
        if project is not None:
            project.close()
        raise
    return Opened(project, display, worker)


def _maybe_recover_unsaved(
    project: Project, scratch_dir: Path | None, ask_recover: AskRecover | None
) -> Project:
    """A new project on a video whose unsaved work was autosaved: offer that autosave."""
    recovery = project.recovery_path()
    if recovery is None or ask_recover is None or not ask_recover(recovery):
        return project
    target = recovery.with_name(recovery.name.removesuffix(".autosave"))
    recovered = Project.open(target, from_autosave=True, scratch_dir=scratch_dir)
    project.close()
    return recovered


class Document(QObject):
    """One open project for the views. ``changed`` carries every session
    :class:`~tracker_core.session.ChangeEvent`, always delivered on the GUI thread."""

    changed = Signal(object)
    frame_changed = Signal(int)
    active_object_changed = Signal(int)
    active_point_changed = Signal(int)
    _forward = Signal(object)

    def __init__(
        self,
        opened: Opened,
        encoder: Encoder | None,
        parent: QObject | None = None,
        preset: str = DEFAULT_PRESET,
    ):
        super().__init__(parent)
        self.project = opened.project
        self.display = opened.display
        self._worker_video = opened.worker_video
        self.session = Session(self.project, self._worker_video, encoder=encoder, preset=preset)
        self._frame = 0
        self._active_object = 0
        self._active_point = 0
        self._closed = False
        # Session callbacks fire on the thread that made the change (the worker for propagated
        # frames); a queued hop brings them to this object's (GUI) thread.
        self._forward.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._unsubscribe = self.session.subscribe(self._on_session_event)
        objects = self.project.objects
        if objects:
            self._active_object = objects[0].id

    # ---- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Release project scratch and videos (jobs must be finished first)."""
        self._closed = True
        self._unsubscribe()
        self.project.close()
        self.display.close()
        self._worker_video.close()

    @property
    def title(self) -> str:
        path = self.project.path or self.project.video_path
        return path.name + (" *" if self.project.modified else "")

    @property
    def num_frames(self) -> int:
        return self.project.num_frames

    # ---- shared view state -------------------------------------------------------------------

    @property
    def frame(self) -> int:
        return self._frame

    def set_frame(self, index: int) -> None:
        index = int(np.clip(index, 0, self.num_frames - 1))
        if index != self._frame:
            self._frame = index
            self.frame_changed.emit(index)

    @property
    def active_object(self) -> ObjectSpec | None:
        """The object new strokes / points go to (None when there are no objects)."""
        try:
            return self.project.object(self._active_object)
        except KeyError:
            return None

    def set_active_object(self, object_id: int) -> None:
        self.project.object(object_id)
        if object_id != self._active_object:
            self._active_object = object_id
            self._active_point = 0
            self.active_object_changed.emit(object_id)
            self.active_point_changed.emit(0)

    def select_object_by_position(self, position: int) -> None:
        """Keys 1–9: make the ``position``-th object (1-based) active when it exists."""
        objects = self.project.objects
        if 1 <= position <= len(objects):
            self.set_active_object(objects[position - 1].id)

    @property
    def active_point(self) -> int:
        return self._active_point

    def set_active_point(self, index: int) -> None:
        if index != self._active_point:
            self._active_point = index
            self.active_point_changed.emit(index)

    def frame_state(self) -> FrameState:
        return self.project.state(self._frame)

    # ---- convenience -------------------------------------------------------------------------

    def load_sample_keyframe(self, name: str = "bear") -> ObjectSpec:
        """Add a mask object and paint the bundled sample mask on frame 0 (first launch)."""
        mask = load_mask(SAMPLE_MASK, expected_hw=(self.project.height, self.project.width))
        spec = self.session.add_object(name)
        mask = np.where(mask > 0, spec.id, 0).astype(np.uint8)
        self.session.set_mask(0, mask)
        self.set_active_object(spec.id)
        return spec

    def remove_autosave(self) -> None:
        """Forget the recovery file (the user chose to discard the changes)."""
        with contextlib.suppress(OSError):
            self.project.autosave_path().unlink(missing_ok=True)

    # ---- events ------------------------------------------------------------------------------

    def _on_session_event(self, event: ChangeEvent) -> None:
        if QThread.currentThread() is self.thread():
            self._deliver(event)  # an edit made on the GUI thread: repaint at once
        else:
            self._forward.emit(event)  # a propagated frame: hop to the GUI thread

    def _deliver(self, event: ChangeEvent) -> None:
        if self._closed:
            return
        if event.objects_changed and self.active_object is None:
            objects = self.project.objects
            if objects:
                self.set_active_object(objects[0].id)
        self.changed.emit(event)
