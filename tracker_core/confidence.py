"""Propagation confidence: how it is computed from the propagator's soft labels, and the ONE rule
for which frames count as uncertain (the timeline's marks, ``N`` = next uncertain frame).

Placeholder while the benchmark data is collected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tracker_core.project import FrameState, Project

DEFAULT_UNCERTAIN_THRESHOLD = 0.5
DEFINITIONS = ("sharpness",)


def uncertain_mask(states: np.ndarray, confidences: np.ndarray, threshold: float) -> np.ndarray:
    """``(N,) bool``: PROPAGATED frames whose confidence is below ``threshold``.

    states: ``(N,) uint8`` FrameState; confidences: ``(N,) float`` (nan = none, never uncertain).
    Keyframes have no confidence and stale frames are already marked as needing a new run.
    """
    conf = np.asarray(confidences, np.float64)
    with np.errstate(invalid="ignore"):
        low = np.isfinite(conf) & (conf < threshold)
    return (np.asarray(states) == FrameState.PROPAGATED) & low


def uncertain_frames(
    project: Project, threshold: float, object_id: int | None = None
) -> np.ndarray:
    """``(M,) int64`` frames, ascending, where ``object_id`` (None: any object) is PROPAGATED
    with a confidence below ``threshold``."""
    if object_id is not None:
        marks = uncertain_mask(
            project.object_states(object_id), project.object_confidences(object_id), threshold
        )
        return np.flatnonzero(marks)
    marks = np.zeros(project.num_frames, bool)
    for spec in project.objects:
        marks |= uncertain_mask(
            project.object_states(spec.id), project.object_confidences(spec.id), threshold
        )
    return np.flatnonzero(marks)


@dataclass(frozen=True)
class ConfidenceInputs:
    soft: torch.Tensor


def confidence_trace(inputs: ConfidenceInputs, definition: str) -> np.ndarray:
    from tracker_core.propagate import mask_confidence

    soft = inputs.soft
    start_area = soft[0, 1:].flatten(1).sum(dim=1)
    out = [1.0] + [mask_confidence(soft[t], start_area) for t in range(1, len(soft))]
    return np.array(out)
