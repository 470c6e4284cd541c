"""Shared fixtures for the export tests: small multi-object masks and a simulated full disk."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from tracker_core.labels import FrameLabels, ObjectSpec

FRAME_HW = (24, 32)


@pytest.fixture
def frame_hw() -> tuple[int, int]:
    """``(H, W)`` of the test video."""
    return FRAME_HW


@pytest.fixture
def masks() -> dict[int, np.ndarray]:
    """Labelled frames of a 6-frame video: ids 1, 2 and 7; frames 1 and 4 unlabelled,
    frame 3 labelled but empty. Each mask is ``(24, 32) uint8``."""
    out: dict[int, np.ndarray] = {}
    a = np.zeros(FRAME_HW, np.uint8)
    a[2:10, 3:12] = 1
    a[12:20, 20:30] = 2
    a[5, 25] = 7  # a single pixel
    out[0] = a
    b = np.zeros(FRAME_HW, np.uint8)
    b[0:6, 0:6] = 7  # touches the image corner
    b[10:24, 10:14] = 1  # touches the bottom edge
    b[15:18, 1:30] = 2  # crosses object 1
    out[2] = b
    out[3] = np.zeros(FRAME_HW, np.uint8)
    c = np.zeros(FRAME_HW, np.uint8)
    c[np.eye(*FRAME_HW, dtype=bool)] = 2  # a one-pixel diagonal line
    out[5] = c
    return out


@pytest.fixture
def mask_objects() -> list[ObjectSpec]:
    """Mask objects with ids 1, 2 and 7."""
    return [
        ObjectSpec(1, "cat", (200, 10, 10)),
        ObjectSpec(2, "dog", (10, 200, 10)),
        ObjectSpec(7, "ball", (10, 10, 200)),
    ]


@pytest.fixture
def labelled(masks: dict[int, np.ndarray]) -> list[tuple[int, FrameLabels]]:
    """The masks as ``(frame index, FrameLabels)`` pairs."""
    return [(i, FrameLabels(mask=m)) for i, m in masks.items()]


@pytest.fixture
def no_space(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``os.replace`` fail as on a full disk (works even as root)."""

    def full_disk(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))

    monkeypatch.setattr(os, "replace", full_disk)
