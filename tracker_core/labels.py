"""Label value types and their conversion to/from soft label maps on the feature grid.

Masks are ``(H, W) uint8`` object ids (0 = background). Keypoints of one keypoint object are
``(P, 3) float32`` rows ``(x, y, visible)`` in full-resolution pixels; unplaced = ``(nan, nan, 0)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

ObjectKind = Literal["mask", "keypoints"]


@dataclass(frozen=True)
class ObjectSpec:
    """One annotated object. Mask objects paint id ``id`` into the mask; keypoint objects own
    ``len(keypoint_names)`` named points. ``skeleton`` lists 0-based point index pairs."""

    id: int
    name: str
    color: tuple[int, int, int]
    kind: ObjectKind = "mask"
    keypoint_names: tuple[str, ...] = ()
    skeleton: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.id <= 255:
            raise ValueError(f"object id must be in 1..255, got {self.id}")
        if self.kind not in ("mask", "keypoints"):
            raise ValueError(f"object kind must be 'mask' or 'keypoints', got {self.kind!r}")
        if self.kind == "keypoints" and not self.keypoint_names:
            raise ValueError(f"keypoint object {self.name!r} needs at least one point name")
        n = len(self.keypoint_names)
        for a, b in self.skeleton:
            if not (0 <= a < n and 0 <= b < n):
                raise ValueError(f"skeleton edge ({a}, {b}) out of range for {n} points")


@dataclass(frozen=True)
class FrameLabels:
    """Everything one frame holds: an id mask (or None) and keypoints per keypoint object."""

    mask: np.ndarray | None = None
    keypoints: Mapping[int, np.ndarray] = field(default_factory=dict)

    def is_empty(self) -> bool:
        """True when the frame has no object pixels and no placed keypoint."""
        has_mask = self.mask is not None and bool(self.mask.any())
        has_kp = any(np.isfinite(k[:, 0]).any() for k in self.keypoints.values())
        return not (has_mask or has_kp)
