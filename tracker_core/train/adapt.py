"""Self-supervised test-time adaptation: fine-tune the encoder on the user's own video, no labels.

The same objective as training (colorization, optionally + CRW) is run for a few hundred steps
on random clips of the user's frames. Meant to run in a worker: it reports progress through a
callback and polls a cancel check between steps.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import nn

from tracker_core.train.data import ClipBank, SamplerConfig, sample_batch
from tracker_core.train.objectives import ObjectiveConfig, fit_ab_clusters
from tracker_core.train.trainer import train_step


@dataclass(frozen=True)
class AdaptConfig:
    """Fine-tuning hyper-parameters (small learning rate, small crops, few frames kept)."""

    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 1e-4
    short_side: int = 256
    max_frames: int = 240
    seed: int = 0
    num_clusters: int = 16
    sampler: SamplerConfig = field(default_factory=lambda: SamplerConfig(crop_size=128))
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)


def frames_to_bank(frames: Sequence[np.ndarray], short_side: int, max_frames: int) -> ClipBank:
    """Downscale (H, W, 3) uint8 RGB frames into one clip (T, h, w, 3), at most max_frames."""
    if len(frames) < 2:
        raise ValueError("adapt needs at least 2 frames")
    step = max(1, math.ceil(len(frames) / max_frames))
    small = []
    for frame in list(frames)[::step]:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 frames, got {frame.shape} {frame.dtype}")
        scale = min(1.0, short_side / min(frame.shape[:2]))
        size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
        small.append(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    return ClipBank([np.stack(small)])


def adapt(
    net: nn.Module,
    frames: Sequence[np.ndarray],
    steps: int,
    *,
    config: AdaptConfig = AdaptConfig(),
    centroids: np.ndarray | None = None,
    device: str = "cpu",
    progress: Callable[[int, int, float], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> nn.Module:
    """Fine-tune a copy of ``net`` on ``frames`` with the self-supervised objective.

    Args:
        net: encoder with ``.stride``; left untouched.
        frames: the user's video, (H, W, 3) uint8 RGB frames in temporal order.
        steps: optimisation steps (a few hundred is typical).
        centroids: (K, 2) ab colour clusters (e.g. the checkpoint's ``meta["ab_centroids"]``);
            fitted on ``frames`` when None.
        progress: called after every step with (step, steps, loss).
        should_cancel: polled before every step; when it returns True adaptation stops and the
            original ``net`` is returned unchanged.
    Returns:
        the adapted copy in eval mode (or ``net`` itself when cancelled or ``steps`` is 0).
    """
    if steps <= 0:
        return net
    rng = np.random.default_rng(config.seed)
    bank = frames_to_bank(frames, config.short_side, config.max_frames)
    if centroids is None:
        clip = bank.clips[0]
        picks = rng.choice(len(clip), size=min(len(clip), 32), replace=False)
        centroids = fit_ab_clusters((clip[i] for i in sorted(picks)), rng, config.num_clusters)
    centroids_t = torch.as_tensor(np.asarray(centroids, dtype=np.float32), device=device)
    tuned = copy.deepcopy(net).to(device)
    optimizer = torch.optim.AdamW(
        tuned.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for step in range(steps):
            if should_cancel is not None and should_cancel():
                return net
            clips = torch.from_numpy(sample_batch(rng, bank, config.sampler, config.batch_size)).to(
                device
            )
            losses = train_step(tuned, optimizer, clips, centroids_t, config.objective, rng)
            if progress is not None:
                progress(step + 1, steps, losses["loss"])
    return tuned.eval()
