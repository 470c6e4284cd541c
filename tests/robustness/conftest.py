"""Shared helpers for the robustness tests: a small annotated clip and message checks."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures_video import make_moving_square_frames, write_video
from tracker_core.errors import TrackpaintError
from tracker_core.labels import FrameLabels
from tracker_core.project import FrameState, Project
from tracker_core.session import Session
from tracker_core.video import VideoSource

N, H, W = 20, 64, 96


def assert_one_line_naming(exc: BaseException, path: Path) -> str:
    """Check ``exc`` is a TrackpaintError whose message is one line naming ``path``.

    Args:
        exc: the raised exception.
        path: the file or folder the message must name.

    Returns:
        The message.
    """
    assert isinstance(exc, TrackpaintError), f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert "\n" not in message and "\r" not in message, message
    assert str(path) in message, f"{path} not named in: {message}"
    return message


def exported_frames(project: Project) -> list[tuple[int, FrameLabels]]:
    """``(index, labels)`` of every non-empty frame, for the export functions."""
    states = project.states()
    return [(t, project.labels(t)) for t in range(project.num_frames) if states[t]]


def annotate(session: Session, frames: int = 3) -> list[np.ndarray]:
    """Add one mask object and paint a square on the first ``frames`` frames.

    Returns:
        The painted ``(H, W) uint8`` masks, frame 0 first.
    """
    project = session.project
    oid = session.add_object("square").id
    masks = []
    for t in range(frames):
        mask = np.zeros((project.height, project.width), np.uint8)
        mask[10 + t : 30 + t, 20 + 2 * t : 40 + 2 * t] = oid
        session.set_mask(t, mask)
        masks.append(mask)
    return masks


def assert_holds(project: Project, masks: list[np.ndarray]) -> None:
    """Frames ``0 .. len(masks) - 1`` are keyframes holding exactly ``masks``."""
    for t, mask in enumerate(masks):
        assert project.state(t) == FrameState.PAINTED
        np.testing.assert_array_equal(project.labels(t).mask, mask)


def _inside(path: object, folder: Path) -> bool:
    """Whether an ``os`` call's path argument lies inside ``folder``."""
    if isinstance(path, int):
        return False
    try:
        resolved = Path(os.fsdecode(path)).absolute()
    except TypeError:
        return False
    return resolved == folder or folder in resolved.parents


def make_read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make writes inside ``folder`` fail with EACCES, as a read-only folder would for a
    non-root user: ``os.open`` and ``io.open`` (pathlib's) for writing, ``os.mkdir``,
    ``os.replace`` and ``os.rename``."""
    folder = folder.absolute()
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def denied(path: object) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))

    real_open, real_mkdir, real_io_open = os.open, os.mkdir, io.open
    real_replace, real_rename = os.replace, os.rename

    def fake_open(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if flags & write_flags and _inside(path, folder):
            raise denied(path)
        return real_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if _inside(path, folder):
            raise denied(path)
        return real_mkdir(path, *args, **kwargs)

    def guard(real: Callable[..., None]) -> Callable[..., None]:
        def fake(src, dst, *args, **kwargs):  # type: ignore[no-untyped-def]
            if _inside(src, folder) or _inside(dst, folder):
                raise denied(dst)
            return real(src, dst, *args, **kwargs)

        return fake

    def fake_io_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if any(m in mode for m in "wax+") and _inside(file, folder):
            raise denied(file)
        return real_io_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_io_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "replace", guard(real_replace))
    monkeypatch.setattr(os, "rename", guard(real_rename))


def make_disk_full(monkeypatch: pytest.MonkeyPatch, folder: Path) -> list[str]:
    """Make ``os.fsync`` of any regular file inside ``folder`` fail with ENOSPC (the point at
    which a nearly full disk reports delayed-allocation failures). Returns the list the fake
    appends the failed file names to, so a test can check the failure was really hit."""
    folder = folder.absolute()
    real_fsync = os.fsync
    hits: list[str] = []

    def fake_fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if _inside(target, folder) and Path(target).is_file():
            hits.append(target)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fake_fsync)
    return hits


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """A 20-frame 64x96 MJPG ``.avi`` of a moving square."""
    frames, _ = make_moving_square_frames(N, H, W)
    return write_video(tmp_path / "clip.avi", frames)


@pytest.fixture
def session(clip: Path, tmp_path: Path) -> Iterator[Session]:
    """A session over a new project on ``clip`` with three painted keyframes, saved once."""
    video = VideoSource.open(clip)
    project = Project.new(clip, len(video), video.height, video.width)
    sess = Session(project, video)
    annotate(sess)
    sess.save(tmp_path / "work.trackpaint")
    yield sess
    project.close()
    video.close()
