"""Batch fixtures: a few tiny synthetic clips with first-frame masks, a manifest writer, and one
real local Ray session shared by the Ray tests (``ray.init(num_cpus=2)``)."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fixtures_video import make_moving_square_frames, write_frame_folder, write_video
from tracker_core.masks import write_indexed_png
from tracker_core.project import Project
from tracker_core.recovery import RECOVERY_ENV

# fast protocol on the weight-free colour encoder; one torch thread so every runner computes
# with the same arithmetic (local pool vs Ray must give identical masks)
FAST = [
    "--model",
    "lab",
    "--radius",
    "2",
    "--keyframe-radius",
    "3",
    "--n-recent",
    "2",
    "--threads",
    "1",
]


@dataclass(frozen=True)
class Clip:
    """A clip on disk: ``video`` (frame folder or .avi), its ``mask`` file (frame 0), length."""

    name: str
    video: Path
    mask: Path
    frames: int


def make_clip(root: Path, name: str, n: int, seed: int, as_file: bool = False) -> Clip:
    """A moving-square clip of ``n`` 64x96 frames as a frame folder (or an MJPG .avi) and its
    frame-0 mask ``<name>-mask.png``."""
    frames, masks = make_moving_square_frames(n=n, seed=seed)
    if as_file:
        video = write_video(root / f"{name}.avi", frames)
    else:
        video = root / name
        write_frame_folder(video, frames)
    mask = root / f"{name}-mask.png"
    write_indexed_png(mask, masks[0])
    return Clip(name, video, mask, n)


@pytest.fixture
def clips(tmp_path: Path) -> list[Clip]:
    """Three short clips (two frame folders, one video file) under ``tmp_path/data``."""
    data = tmp_path / "data"
    data.mkdir()
    return [
        make_clip(data, "alpha", 8, 0),
        make_clip(data, "beta", 10, 1),
        make_clip(data, "gamma", 9, 2, as_file=True),
    ]


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """A CSV manifest with the union of the rows' keys as header."""
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: str(v) for k, v in row.items()})
    return path


def manifest_for(clips: Sequence[Clip], path: Path) -> Path:
    """A CSV manifest next to the data: ``video,mask`` relative to the manifest's folder."""
    rows = [
        {"video": c.video.relative_to(path.parent), "mask": c.mask.relative_to(path.parent)}
        for c in clips
    ]
    return write_csv(path, rows)


def project_masks(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(masks (N, H, W) uint8, states (N,), confidences (N,))`` of a project file."""
    with Project.open(path) as project:
        masks = np.stack([project.labels(i).mask for i in range(project.num_frames)])
        return masks, project.states(), project.confidences()


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real local Ray instance for the whole test session, shut down afterwards."""
    ray = pytest.importorskip("ray")
    recovery = tmp_path_factory.mktemp("ray-recovery")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {RECOVERY_ENV: str(recovery)}},
    )
    yield ray
    ray.shutdown()
