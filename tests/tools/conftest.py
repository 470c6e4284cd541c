"""Fixtures for tool tests: a session on a tiny synthetic image and a Qt-free tool context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tracker_core.project import Project
from tracker_core.session import Session
from tracker_core.tools import PlainContext

H, W = 64, 80


def disk_image(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A red disk (radius 14 at (40, 30)) and a blue square (10 px at (8..18, 44..54)) on a
    noisy green background. Returns ``(image (H, W, 3) uint8, disk mask (H, W) bool)``."""
    rng = np.random.default_rng(seed)
    image = np.empty((H, W, 3), np.float32)
    image[:] = (60, 150, 70)
    ys, xs = np.mgrid[:H, :W]
    disk = (xs - 40) ** 2 + (ys - 30) ** 2 <= 14**2
    image[disk] = (200, 40, 40)
    image[44:54, 8:18] = (40, 60, 200)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), disk


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    project = Project.new(tmp_path / "clip", 3, H, W, scratch_dir=tmp_path)
    yield Session(project)
    project.close()


@pytest.fixture
def ctx(session: Session) -> PlainContext:
    image, _ = disk_image()
    return PlainContext(session, images=lambda _frame: image, brush_radius=3.0)
