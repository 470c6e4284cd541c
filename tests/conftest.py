"""Shared pytest fixtures: synthetic clips on disk, a private recovery folder. Qt runs offscreen
in every test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures_video import (
    make_moving_square_frames,
    write_frame_folder,
    write_video,
)
from tracker_core.recovery import RECOVERY_ENV

Clip = tuple[Path, list[np.ndarray], list[np.ndarray]]


@pytest.fixture(autouse=True)
def recovery_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test (and every child process it starts) autosaves into its own folder, never into
    the user's real recovery folder: ``$TRACKPAINT_RECOVERY_DIR`` points there."""
    folder = tmp_path_factory.mktemp("recovery")
    monkeypatch.setenv(RECOVERY_ENV, str(folder))
    return folder


@pytest.fixture(autouse=True, scope="session")
def _private_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Exported ONNX graphs go to a temporary folder, never the user's cache."""
    old = os.environ.get("TRACKPAINT_CACHE")
    os.environ["TRACKPAINT_CACHE"] = str(tmp_path_factory.mktemp("model-cache"))
    yield
    if old is None:
        os.environ.pop("TRACKPAINT_CACHE", None)
    else:
        os.environ["TRACKPAINT_CACHE"] = old


@pytest.fixture
def frame_folder(tmp_path: Path) -> Clip:
    """A 12-frame 64x96 moving-square clip as lossless PNGs ``00000.png`` ... in a folder.

    Returns:
        ``(folder, frames, masks)``: frames ``(64, 96, 3) uint8`` RGB equal to the decoded
        files, masks ``(64, 96) uint8`` with id 1 on the square.
    """
    frames, masks = make_moving_square_frames()
    folder = tmp_path / "frames"
    write_frame_folder(folder, frames)
    return folder, frames, masks


@pytest.fixture
def video_file(tmp_path: Path) -> Clip:
    """The same 12-frame clip as an MJPG ``.avi`` at 25 fps.

    Returns:
        ``(path, frames, masks)``: frames are the source frames (MJPG is lossy, so decoded
        frames differ slightly), masks ``(64, 96) uint8`` with id 1 on the square.
    """
    frames, masks = make_moving_square_frames()
    path = write_video(tmp_path / "clip.avi", frames)
    return path, frames, masks
