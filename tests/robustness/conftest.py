"""Shared helpers for the robustness tests: a small annotated clip and message checks."""

from __future__ import annotations

from collections.abc import Iterator
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
