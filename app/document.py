"""The open document as the views see it: a Session over a Project, its videos, the current frame
and active object, and the session's change events forwarded to the GUI thread.

Nothing here edits labels: views call the :class:`~tracker_core.session.Session` commands
directly (``document.session``). This object only opens/saves/closes and keeps view state that
several widgets share (current frame, active object, active keypoint).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal

from tracker_core.encoder import Encoder
from tracker_core.errors import FrameDamaged, ProjectError, VideoError
from tracker_core.labels import ObjectSpec
from tracker_core.masks import load_mask
from tracker_core.project import PROJECT_SUFFIX, FrameState, Project
from tracker_core.propagator import DEFAULT_PRESET
from tracker_core.recovery import Autosave, RecoveryStore, busy_note
from tracker_core.session import ChangeEvent, Session
from tracker_core.video import DamagedFrame, VideoSource

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "resources" / "sample"
SAMPLE_CLIP = SAMPLE_DIR / "bear"
SAMPLE_MASK = SAMPLE_DIR / "bear_00000.png"


class Recovery(enum.Enum):
    """The user's answer to "recover unsaved work?"."""

    RECOVER = "recover"  # open the autosaved state (it becomes this process's autosave)
    DISCARD = "discard"  # delete the autosave and open what was saved (or the bare video)
    CANCEL = "cancel"  # open nothing; keep the autosave for later


AskRecover = Callable[[Autosave, str], Recovery]
"""Asked with the autosave on offer and the question's text (age, contents, whose work)."""


class OpenCancelledError(Exception):
    """The user chose not to open the document now (the autosave is kept)."""


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
    notes: tuple[str, ...] = ()  # status lines (e.g. another instance's autosave left alone)


def _open_videos(path: Path) -> tuple[VideoSource, VideoSource]:
    display = VideoSource.open(path)
    try:
        worker = VideoSource.open(path, cache_size=8)
    except BaseException:
        display.close()
        raise
    return display, worker


def open_document(
    path: Path,
    scratch_dir: Path | None,
    ask_recover: AskRecover | None = None,
    recovery: RecoveryStore | None = None,
) -> Opened:
    """Open a project file, or a video file / frame folder as a new project.

    When ``recovery`` (default: the per-user folder) holds an autosave of exactly this document
    (the project file, or the video of never-saved work) that no other running instance owns,
    ``ask_recover`` decides: recover it, discard it, or cancel (raises OpenCancelledError). Raises
    VideoError/ProjectError with a one-line message.
    """
    store = recovery if recovery is not None else RecoveryStore()
    path = Path(path).absolute()
    if not path.exists():
        raise VideoError("no such file or folder", path)
    project: Project | None = None
    notes: list[str] = []
    display = worker = None
    try:
        if is_project_file(path):
            project = Project.open(path, scratch_dir=scratch_dir, recovery=store)
            project = _offer_recovery(project, scratch_dir, store, ask_recover, notes)
            video_path = project.video_path
        else:
            video_path = path
        display, worker = _open_videos(video_path)
        if project is None:
            project = Project.new(
                video_path,
                len(display),
                display.height,
                display.width,
                scratch_dir=scratch_dir,
                recovery=store,
            )
            project = _offer_recovery(project, scratch_dir, store, ask_recover, notes)
        if (project.num_frames, project.height, project.width) != (
            len(display),
            display.height,
            display.width,
        ):
            raise ProjectError(
                f"the video has {len(display)} frames of {display.width}x{display.height} but "
                f"the project expects {project.num_frames} of {project.width}x{project.height}",
                project.path or path,
            )
    except BaseException:
        for video in (display, worker):
            if video is not None:
                video.close()
        if project is not None:
            project.close()
        raise
    return Opened(project, display, worker, tuple(notes))


def _offer_recovery(
    project: Project,
    scratch_dir: Path | None,
    store: RecoveryStore,
    ask_recover: AskRecover | None,
    notes: list[str],
) -> Project:
    """Offer the autosave that belongs to ``project`` (if any); returns the document to edit
    (``project`` itself, or the recovered one, in which case ``project`` is closed)."""
    offer = project.recovery_offer()
    notes.extend(busy_note(a) for a in offer.busy)
    if offer.autosave is None or ask_recover is None:
        return project
    answer = ask_recover(offer.autosave, store.question(offer.autosave))
    if answer is Recovery.CANCEL:
        raise OpenCancelledError(str(offer.autosave.path))
    if answer is Recovery.DISCARD:
        store.discard(offer)
        return project
    recovered = Project.recover(offer.autosave, scratch_dir=scratch_dir, recovery=store)
    project.close()
    try:
        recovered.adopt(offer)
    except ProjectError as exc:  # the offered file stays: it is still the only copy on disk
        notes.append(f"The recovered work could not be autosaved: {exc}")
    return recovered


class Document(QObject):
    """One open project for the views. ``changed`` carries every session
    :class:`~tracker_core.session.ChangeEvent`, always delivered on the GUI thread."""

    changed = Signal(object)
    frame_changed = Signal(int)
    damage_found = Signal()  # the display met a damaged frame it did not know of
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

    # ---- frames ------------------------------------------------------------------------------

    def frame_image(self, index: int) -> np.ndarray | DamagedFrame:
        """Frame ``index`` for display, ``(H, W, 3) uint8`` RGB, or what is wrong with it when it
        is damaged (then ``damage_found`` fires if that was news)."""
        known = self.display.is_damaged(index)
        if known is not None:
            return known
        decoded = self._worker_video.cached(index)  # just propagated: already decoded, reuse it
        if decoded is not None:
            return decoded
        try:
            return self.display.frame(index)
        except FrameDamaged as exc:
            self.damage_found.emit()
            return DamagedFrame(exc.frame, exc.path or self.display.info.path, exc.problem)

    def damaged(self) -> dict[int, DamagedFrame]:
        """The damaged frames found so far, by index: at open, by display, by propagation."""
        found = {d.index: d for d in self._worker_video.damaged}
        found.update((d.index, d) for d in self.display.damaged)
        return found

    # ---- convenience -------------------------------------------------------------------------

    def load_sample_keyframe(self, name: str = "bear") -> ObjectSpec:
        """Add a mask object and paint the bundled sample mask on frame 0 (first launch)."""
        mask = load_mask(SAMPLE_MASK, expected_hw=(self.project.height, self.project.width))
        spec = self.session.add_object(name)
        mask = np.where(mask > 0, spec.id, 0).astype(np.uint8)
        self.session.set_mask(0, mask)
        self.project.mark_unmodified()  # the bundled keyframe is the sample, not unsaved work
        self.set_active_object(spec.id)
        return spec

    def remove_autosave(self) -> None:
        """Forget this document's autosave (the user chose to discard the changes)."""
        self.project.discard_autosave()

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
