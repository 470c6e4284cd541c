"""The training loop: deterministic, resumable, checkpointing, with a progress bar.

Files written for ``out = path/to/model.pt``:
- ``model.pt``: the network checkpoint (``tracker_core.nets.save_net`` format); its meta holds the
  training config, the ab colour centroids, the command, the step count and the wall time.
- ``model.state.pt``: optimizer state, step, wall time and the sampler RNG state (for ``--resume``).
- ``model.json``: the same config + progress as readable JSON.

With the ``distill`` objective the frozen teacher checkpoint is ``TrainConfig.teacher``: the
student starts from the teacher's weights wherever a parameter has the same name and shape
(``init_from_teacher``), and its checkpoint takes the teacher's colour centroids (used by
test-time adaptation) and records the teacher's path and weights hash (checked on resume).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tracker_core.errors import ModelError
from tracker_core.nets import NetConfig, TrackNet, load_net, save_net
from tracker_core.runtime import weights_hash
from tracker_core.train.data import (
    CacheConfig,
    ClipBank,
    SamplerConfig,
    build_cache,
    iter_pixels,
    sample_batch,
)
from tracker_core.train.objectives import ObjectiveConfig, clip_losses, fit_ab_clusters


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (together with the data and the seed).

    ``lab_weight`` does not affect training: it is recorded in the checkpoint meta as the
    recommended weight of the Lab colour fused with the learned features at inference.
    ``teacher`` (a checkpoint path) and ``init_from_teacher`` are used by the ``distill``
    objective only.
    """

    steps: int = 3000
    batch_size: int = 8
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup: int = 100
    weight_decay: float = 1e-4
    seed: int = 0
    num_clusters: int = 16
    cluster_frames: int = 300
    ckpt_every: int = 250
    lab_weight: float = 8.0
    net: NetConfig = field(default_factory=NetConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    teacher: str = ""
    init_from_teacher: bool = True

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly nested dict."""
        data = asdict(self)
        data["net"] = self.net.to_dict()
        data["sampler"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in data["sampler"].items()
        }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`."""
        flat = {k: v for k, v in data.items() if k not in ("net", "sampler", "objective", "cache")}
        sampler = {k: tuple(v) if isinstance(v, list) else v for k, v in data["sampler"].items()}
        return cls(
            **flat,
            net=NetConfig.from_dict(data["net"]),
            sampler=SamplerConfig(**sampler),
            objective=ObjectiveConfig(**data["objective"]),
            cache=CacheConfig(**data["cache"]),
        )


@dataclass(frozen=True)
class StepReport:
    """What the loop reports after each step (for progress callbacks)."""

    step: int
    total: int
    losses: dict[str, float]
    lr: float


def state_path(checkpoint: str | Path) -> Path:
    """Sibling file holding the optimizer/RNG state of a checkpoint."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".state.pt")


def config_path(checkpoint: str | Path) -> Path:
    """Sibling JSON with the config and progress of a checkpoint."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + ".json")


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up then cosine decay to ``lr * min_lr_ratio`` at ``config.steps``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def prepare_bank(
    roots: Sequence[str | Path], cache_dir: str | Path, config: CacheConfig
) -> ClipBank:
    """Build (or reuse) the downscaled cache for ``roots`` and open it."""
    return ClipBank.from_files(build_cache(roots, cache_dir, config))


def train_step(
    net: TrackNet,
    optimizer: torch.optim.Optimizer,
    clips: torch.Tensor,
    centroids: torch.Tensor,
    config: ObjectiveConfig,
    rng: np.random.Generator,
    teacher: TrackNet | None = None,
) -> dict[str, float]:
    """One optimisation step on a (B, T, H, W, 3) uint8 clip batch; returns the loss terms."""
    net.train()
    terms = clip_losses(net, clips, centroids, config, rng, teacher=teacher)
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
    optimizer.step()
    return {k: float(v.detach()) for k, v in terms.items()}


def make_optimizer(net: TrackNet, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over all parameters."""
    return torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def save_training(
    out: Path,
    net: TrackNet,
    optimizer: torch.optim.Optimizer,
    rng: np.random.Generator,
    centroids: np.ndarray,
    config: TrainConfig,
    progress: dict[str, Any],
    teacher_hash: str | None = None,
) -> None:
    """Write the checkpoint, its resume state and its JSON config (see module docstring)."""
    meta = {
        "objective": config.objective.objective,
        "input": "lab_scaled (L/50-1, a/110, b/110)",
        "train_config": config.to_dict(),
        "ab_centroids": centroids.tolist(),
        "lab_weight": config.lab_weight,
        **progress,
    }
    if teacher_hash is not None:
        meta["teacher"] = {"path": config.teacher, "weights_sha256": teacher_hash}
    save_net(out, net, meta)
    state = {
        "optimizer": optimizer.state_dict(),
        "step": progress["steps"],
        "wall_time_s": progress["wall_time_s"],
        "rng": json.dumps(rng.bit_generator.state),
    }
    tmp = state_path(out).with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(state_path(out))
    config_path(out).write_text(json.dumps(meta | {"ab_centroids": centroids.tolist()}, indent=2))


def load_teacher(path: str | Path, device: torch.device) -> tuple[TrackNet, dict[str, Any]]:
    """The frozen teacher network (eval mode, no gradients) and its meta."""
    if not str(path):
        raise ModelError("the distill objective needs a teacher checkpoint (--teacher)")
    teacher, meta = load_net(path, map_location=str(device))
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher.eval(), meta


def init_from(student: TrackNet, teacher: TrackNet) -> list[str]:
    """Copy every teacher tensor whose name and shape match into ``student``; returns the names."""
    source = teacher.state_dict()
    state = student.state_dict()
    copied = [k for k, v in state.items() if k in source and source[k].shape == v.shape]
    student.load_state_dict(state | {k: source[k].clone() for k in copied})
    return copied


def _resume(resume: Path, device: torch.device) -> tuple[TrackNet, dict[str, Any], dict[str, Any]]:
    """Load a checkpoint and its state file; raises ModelError when the state file is missing."""
    net, meta = load_net(resume, map_location=str(device))
    if not state_path(resume).is_file():
        raise ModelError(
            "resume state file missing (expected next to the checkpoint)", state_path(resume)
        )
    state = torch.load(state_path(resume), map_location=str(device), weights_only=True)
    return net, meta, state


def train(
    config: TrainConfig,
    roots: Sequence[str | Path],
    out: str | Path,
    *,
    device: str = "cpu",
    cache_dir: str | Path = "data_cache",
    resume: str | Path | None = None,
    command: str = "",
    bank: ClipBank | None = None,
    show_progress: bool = True,
    on_step: Callable[[StepReport], None] | None = None,
    stop_at: int | None = None,
) -> Path:
    """Train (or continue training) an encoder; returns the checkpoint path.

    With ``resume``, the network, optimizer, step, wall time, centroids and sampler RNG are
    restored and training continues to ``config.steps`` (the resumed run's config is used except
    for ``steps``, ``ckpt_every`` and ``lab_weight``, taken from ``config``).
    ``bank`` overrides ``roots`` (used by tests). ``stop_at`` ends the run early at that step
    (checkpointed) without changing the learning-rate schedule, so it can be resumed later.
    With ``distill``, a resumed run reloads the recorded teacher (or ``config.teacher`` when set,
    e.g. after the file moved) and refuses one whose weights differ from the recorded hash.
    """
    out = Path(out)
    torch_device = torch.device(device)
    teacher: TrackNet | None = None
    teacher_meta: dict[str, Any] = {}
    if resume is not None:
        net, meta, state = _resume(Path(resume), torch_device)
        config = replace(
            TrainConfig.from_dict(meta["train_config"]),
            steps=config.steps,
            ckpt_every=config.ckpt_every,
            lab_weight=config.lab_weight,
            teacher=config.teacher or TrainConfig.from_dict(meta["train_config"]).teacher,
        )
        if config.objective.objective == "distill":
            teacher, _ = load_teacher(config.teacher, torch_device)
            recorded = meta.get("teacher", {}).get("weights_sha256")
            if recorded is not None and recorded != weights_hash(teacher):
                raise ModelError("teacher weights differ from the resumed run", config.teacher)
        rng = np.random.default_rng(config.seed)
        rng.bit_generator.state = json.loads(state["rng"])
        centroids = np.asarray(meta["ab_centroids"], dtype=np.float32)
        start, wall = int(state["step"]), float(state["wall_time_s"])
        optimizer = make_optimizer(net, config)
        optimizer.load_state_dict(state["optimizer"])
        commands = [*meta.get("commands", []), command]
    else:
        torch.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        net = TrackNet(config.net).to(torch_device)
        start, wall, centroids, commands = 0, 0.0, None, [command]
        if config.objective.objective == "distill":
            teacher, teacher_meta = load_teacher(config.teacher, torch_device)
            if config.init_from_teacher:
                init_from(net, teacher)
            if "ab_centroids" in teacher_meta:
                centroids = np.asarray(teacher_meta["ab_centroids"], dtype=np.float32)
        optimizer = make_optimizer(net, config)
    bank = bank if bank is not None else prepare_bank(roots, cache_dir, config.cache)
    if centroids is None:
        frames = iter_pixels(bank, rng, config.cluster_frames)
        centroids = fit_ab_clusters(frames, rng, config.num_clusters)
    centroids_t = torch.from_numpy(centroids).to(torch_device)
    teacher_hash = weights_hash(teacher) if teacher is not None else None
    progress = {
        "steps": start,
        "wall_time_s": wall,
        "command": command,
        "commands": commands,
        "data": [str(r) for r in roots],
        "last_losses": {},
    }
    bar = tqdm(
        total=config.steps,
        initial=start,
        disable=not show_progress,
        mininterval=5.0,
        dynamic_ncols=True,
        desc="train",
    )
    ema: dict[str, float] = {}
    tic = time.perf_counter()
    end = config.steps if stop_at is None else max(start, min(stop_at, config.steps))
    for step in range(start, end):
        lr = learning_rate(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = sample_batch(rng, bank, config.sampler, config.batch_size)
        clips = torch.from_numpy(batch).to(torch_device)
        losses = train_step(net, optimizer, clips, centroids_t, config.objective, rng, teacher)
        ema = {k: v if k not in ema else 0.98 * ema[k] + 0.02 * v for k, v in losses.items()}
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in ema.items()}, refresh=False)
        done = step + 1
        if done % config.ckpt_every == 0 or done == end:
            progress |= {
                "steps": done,
                "wall_time_s": wall + time.perf_counter() - tic,
                "last_losses": dict(ema),
            }
            save_training(out, net, optimizer, rng, centroids, config, progress, teacher_hash)
        if on_step is not None:
            on_step(StepReport(done, config.steps, losses, lr))
    bar.close()
    if start >= end:
        save_training(out, net, optimizer, rng, centroids, config, progress, teacher_hash)
    return out
