"""Propagation confidence: how it is computed from the propagator's soft labels, and the ONE rule
for which frames count as uncertain (the timeline's marks and ``N`` = next uncertain frame).

Confidence of a mask object on a propagated frame (:func:`object_confidences`): the sharpness of
the soft labels near the object — the mean of ``2 * (top probability - 0.5)`` over the cells where
its probability exceeds 0.05 — times a penalty when it shrank below a quarter of its area on the
start frame (``area / (0.25 * start area)``, at most 1): a vanishing object is the classic silent
failure. Measured on the 10 + 20 dev sequences (``benchmarks/confidence.py``, RESULTS.md): AUC 0.88
for detecting frames with J < 0.85; fifteen other definitions and combinations (boundary-band
fraction, entropy, largest-component share, area change vs the previous frame or the start,
temporal smoothing) did not improve it on both dev sets, so this one is kept. Keypoint objects
have no confidence measure (nan).

:data:`DEFAULT_UNCERTAIN_THRESHOLD` is chosen by that benchmark: the smallest threshold that finds
at least 80 % of the bad frames (pooled recall 0.82, precision 0.89; it holds on each dev set).
The previous fixed 0.5 found 4 % of them. The GUI lets the user change it (View menu).
"""

from __future__ import annotations

import numpy as np
import torch

from tracker_core.project import FrameState, Project

DEFAULT_UNCERTAIN_THRESHOLD = 0.73
NEAR = 0.05  # an object's cells: where its probability exceeds this
SHRINK = 0.25  # no penalty while an object keeps at least this share of its start area


def object_confidences(soft_mask: torch.Tensor, start_area: torch.Tensor | None) -> torch.Tensor:
    """Per-object confidence in [0, 1] (higher = surer) of one propagated frame.

    Args:
        soft_mask: ``(K, h, w)`` soft labels on the feature grid, channel 0 background, channels
            ``1..K-1`` the mask objects (cells sum to 1).
        start_area: ``(K-1,)`` each object's area (in cells) on the frame propagation started
            from, or None (no shrink penalty).

    Returns:
        ``(K-1,)`` float32: sharpness near the object times its shrink penalty. An object with
        no cell above :data:`NEAR` has sharpness 1.0, so it scores 1.0 when it was absent at
        the start too and about 0 when it was present (it vanished).
    """
    k = soft_mask.shape[0] - 1
    if k < 1:
        return torch.zeros(0)
    top = soft_mask.max(dim=0).values  # (h, w)
    sharp = ((top - 0.5).clamp(min=0) * 2).flatten()
    near = (soft_mask[1:] > NEAR).flatten(1).float()  # (K-1, h*w)
    count = near.sum(dim=1)
    score = torch.where(count > 0, (near @ sharp) / count.clamp(min=1), torch.ones(k))
    if start_area is not None:
        area = soft_mask[1:].flatten(1).sum(dim=1)
        present = start_area > 0.5
        ratio = (area / (SHRINK * start_area.clamp(min=1e-6))).clamp(max=1.0)
        score = torch.where(present, score * ratio, score)
    return score.float()


def uncertain_mask(states: np.ndarray, confidences: np.ndarray, threshold: float) -> np.ndarray:
    """``(N,) bool``: PROPAGATED frames whose confidence is below ``threshold``.

    states: ``(N,) uint8`` FrameState; confidences: ``(N,) float`` (nan = none, never uncertain).
    Keyframes have no confidence, and stale frames are already marked as needing a new run.
    """
    conf = np.asarray(confidences, np.float64)
    with np.errstate(invalid="ignore"):
        low = np.isfinite(conf) & (conf < threshold)
    return (np.asarray(states) == FrameState.PROPAGATED) & low


def uncertain_frames(
    project: Project, threshold: float, object_id: int | None = None
) -> np.ndarray:
    """``(M,) int64`` frames, ascending, where ``object_id`` (None: any object) is PROPAGATED
    with a confidence below ``threshold``: what the timeline marks and ``N`` visits."""
    ids = [o.id for o in project.objects] if object_id is None else [object_id]
    marks = np.zeros(project.num_frames, bool)
    for oid in ids:
        marks |= uncertain_mask(
            project.object_states(oid), project.object_confidences(oid), threshold
        )
    return np.flatnonzero(marks)
