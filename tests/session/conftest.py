"""Fixtures for project/session tests: tiny in-memory videos and a recording fake propagator."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tracker_core.labels import FrameLabels
from tracker_core.project import Project
from tracker_core.propagate import FeatureCache, PropagatedFrame, PropagationConfig
from tracker_core.session import Session

H, W, N = 24, 32, 12


class ArrayVideo:
    """A list of frames behind the two things the session uses: ``len()`` and ``frame(i)``."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self._frames = frames

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, index: int) -> np.ndarray:
        return self._frames[index]


@dataclass
class FakePropagator:
    """A :class:`~tracker_core.propagator.Propagator` that copies the start frame's labels to
    every frame; confidence falls by 0.1 per frame from the start. Records each call as
    ``(start, stop, sorted reference keys, start labels)``."""

    calls: list[tuple[int, int, list[int], FrameLabels]] = field(default_factory=list)
    computed: list[int] = field(default_factory=list)
    name: str = "fake"
    encoder: object = field(default_factory=object)
    config: PropagationConfig = field(default_factory=PropagationConfig)

    def new_cache(self) -> FeatureCache:
        return FeatureCache()

    def propagate(
        self,
        frames,
        start: int,
        stop: int,
        references: Mapping[int, FrameLabels],
        num_keypoints: Mapping[int, int],
        *,
        cache=None,
        on_warmup=None,
    ) -> Iterator[PropagatedFrame]:
        assert start in references
        first = references[start]
        self.calls.append((start, stop, sorted(references), first))
        return self._run(frames, start, stop, first)

    def _run(self, frames, start: int, stop: int, first: FrameLabels) -> Iterator[PropagatedFrame]:
        step = 1 if stop > start else -1
        for idx in range(start + step, stop, step):
            frames(idx)
            self.computed.append(idx)
            conf = max(0.0, 1.0 - 0.1 * abs(idx - start))
            yield PropagatedFrame(idx, first, conf)


def square_mask(x: int, y: int = 6, size: int = 8, object_id: int = 1) -> np.ndarray:
    """``(H, W) uint8`` mask with a ``size`` square of ``object_id`` at column ``x``, row ``y``."""
    mask = np.zeros((H, W), np.uint8)
    mask[y : y + size, x : x + size] = object_id
    return mask


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """An unsaved N-frame H x W project with no objects."""
    proj = Project.new(tmp_path / "clip.avi", N, H, W)
    yield proj
    proj.close()


@pytest.fixture
def fake() -> FakePropagator:
    return FakePropagator()


@pytest.fixture
def session(project: Project, fake: FakePropagator) -> Session:
    """A session over ``project`` with one mask object (id 1, "car") and the fake propagator."""
    frames = [np.full((H, W, 3), i, np.uint8) for i in range(N)]
    sess = Session(project, ArrayVideo(frames), propagator=fake)
    sess.add_object("car")
    return sess
