"""Argument checks shared by the DAVIS and COCO exporters."""

from __future__ import annotations

from pathlib import Path

from tracker_core.errors import ExportError


def check_frame_hw(frame_hw: tuple[int, int], path: Path | None = None) -> tuple[int, int]:
    """Return ``(H, W)`` as ints after checking both are positive."""
    h, w = (int(v) for v in frame_hw)
    if h <= 0 or w <= 0:
        raise ExportError(f"frame size must be positive, got {h}x{w}", path)
    return h, w


def check_frame_index(index: int, num_frames: int, seen: set[int], path: Path) -> int:
    """Return ``index`` as int after checking it is in range and not given before."""
    i = int(index)
    if not 0 <= i < num_frames:
        raise ExportError(f"frame index {i} out of range 0..{num_frames - 1}", path)
    if i in seen:
        raise ExportError(f"frame {i} given twice", path)
    return i
