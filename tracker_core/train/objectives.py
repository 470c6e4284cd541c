"""Self-supervised objectives: colorization (Vondrick 2018), the contrastive random walk (CRW),
and distillation from a trained (itself self-supervised) teacher encoder.

Shapes: a clip batch is (B, T, 3, H, W) network input; features are (B, T, C, h, w) with
h = ceil(H / stride). In colorization the first T-1 frames are references and the last frame is
the target whose quantised colour is predicted by copying reference colours through a softmax
affinity. CRW (Jabri et al. 2020) walks forward and back in time over the feature cells and
asks the walk to return to its start. Distillation asks a (smaller) student to reproduce a frozen
teacher's L2-normalised features per cell (cosine) and the teacher's target-to-reference affinity
softmax (KL), which is what label propagation uses; it needs no labels either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tracker_core.nets import lab_to_input, rgb_to_lab

OBJECTIVES = ("colorization", "colorization+crw", "crw", "distill")


@dataclass(frozen=True)
class ObjectiveConfig:
    """Loss hyper-parameters.

    ``temperature``: colorization affinity softmax temperature (features are L2-normalised).
    ``crw_*``: random-walk temperature, edge-dropout rate, weight, and the pooling of feature
    cells into walk nodes. ``*_grey`` / ``*_drop_one``: per-frame probabilities of zeroing both
    ab channels (grey) or one random Lab channel (CorrFlow channel dropout), for the target and
    the reference frames; the remainder keeps full colour. ``jitter``: brightness/contrast
    jitter amplitude applied to L (input only, never to the colour targets).
    ``distill_*``: weights of the feature-cosine and affinity-KL terms and the affinity softmax
    temperature of the ``distill`` objective. Distillation feeds teacher and student the same
    full-colour input with only the L jitter (no grey / channel dropout: at inference frames are
    always in colour, and dropout exists to stop colorization from copying the input's colour).
    """

    objective: str = "colorization"
    temperature: float = 0.05
    crw_temperature: float = 0.07
    crw_edge_dropout: float = 0.1
    crw_weight: float = 0.5
    crw_pool: int = 2
    target_grey: float = 0.6
    target_drop_one: float = 0.3
    ref_grey: float = 0.3
    ref_drop_one: float = 0.4
    jitter: float = 0.3
    distill_feature_weight: float = 1.0
    distill_affinity_weight: float = 1.0
    distill_temperature: float = 0.05

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r} (known: {OBJECTIVES})")


# --------------------------------------------------------------------------- colour clusters
def kmeans(
    points: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 30
) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding.

    Args:
        points: (N, D) float array, N >= k.
    Returns:
        (k, D) float32 centroids, sorted lexicographically (deterministic order).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or len(points) < k:
        raise ValueError(f"kmeans needs (N >= {k}, D) points, got {points.shape}")
    centroids = [points[int(rng.integers(len(points)))]]
    dist = ((points - centroids[0]) ** 2).sum(1)
    for _ in range(1, k):
        probs = dist / dist.sum() if dist.sum() > 0 else None
        centroids.append(points[int(rng.choice(len(points), p=probs))])
        dist = np.minimum(dist, ((points - centroids[-1]) ** 2).sum(1))
    centers = np.stack(centroids)
    for _ in range(iterations):
        assign = ((points[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
        for j in range(k):
            members = points[assign == j]
            if len(members):
                centers[j] = members.mean(0)
    order = np.lexsort(centers.T[::-1])
    return centers[order].astype(np.float32)


def fit_ab_clusters(
    frames: Iterable[np.ndarray],
    rng: np.random.Generator,
    k: int = 16,
    max_points: int = 60000,
) -> np.ndarray:
    """Fit ``k`` colour clusters on the Lab ``ab`` values of RGB frames.

    Args:
        frames: iterable of (H, W, 3) uint8 RGB frames (downscaled internally to <= 64 px).
    Returns:
        (k, 2) float32 ab centroids in Lab units.
    """
    samples = []
    for frame in frames:
        step = max(1, min(frame.shape[:2]) // 64)
        small = np.ascontiguousarray(frame[::step, ::step])
        lab = rgb_to_lab(torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0)
        samples.append(lab[0, 1:].reshape(2, -1).T.numpy())
    points = np.concatenate(samples)
    if len(points) > max_points:
        points = points[rng.choice(len(points), max_points, replace=False)]
    return kmeans(points, k, rng)


def soft_colour_labels(lab: torch.Tensor, centroids: torch.Tensor, stride: int) -> torch.Tensor:
    """Quantise ab to the nearest centroid per pixel, then average the one-hots per feature cell.

    Args:
        lab: (N, 3, H, W) Lab.
        centroids: (K, 2) ab centroids.
    Returns:
        (N, K, ceil(H/stride), ceil(W/stride)) label distributions (sum to 1 over K).
    """
    ab = lab[:, 1:]
    dist = ((ab[:, None] - centroids[None, :, :, None, None]) ** 2).sum(2)  # (N, K, H, W)
    onehot = F.one_hot(dist.argmin(1), centroids.shape[0]).permute(0, 3, 1, 2).float()
    return F.avg_pool2d(onehot, stride, stride, ceil_mode=True)


# --------------------------------------------------------------------------- input augmentation
def augment_input(
    clean: torch.Tensor, rng: np.random.Generator, config: ObjectiveConfig
) -> torch.Tensor:
    """Grey / channel-dropout + brightness-contrast jitter, per frame.

    Args:
        clean: (B, T, 3, H, W) scaled Lab input (see ``lab_to_input``); frame T-1 is the target.
    Returns:
        (B, T, 3, H, W) augmented input (new tensor).
    """
    B, T = clean.shape[:2]
    keep = np.ones((B, T, 3), dtype=np.float32)
    for b in range(B):
        for t in range(T):
            grey, drop_one = (
                (config.target_grey, config.target_drop_one)
                if t == T - 1
                else (config.ref_grey, config.ref_drop_one)
            )
            u = rng.random()
            if u < grey:
                keep[b, t, 1:] = 0.0
            elif u < grey + drop_one:
                keep[b, t, int(rng.integers(3))] = 0.0
    contrast = 1.0 + rng.uniform(-config.jitter, config.jitter, size=(B, T))
    brightness = rng.uniform(-config.jitter, config.jitter, size=(B, T))
    device, dtype = clean.device, clean.dtype
    out = clean * torch.from_numpy(keep).to(device, dtype)[..., None, None]
    lightness = out[:, :, :1] * torch.from_numpy(contrast).to(device, dtype)[..., None, None, None]
    lightness = lightness + torch.from_numpy(brightness).to(device, dtype)[..., None, None, None]
    lightness = lightness * torch.from_numpy(keep[..., :1]).to(device, dtype)[..., None, None]
    return torch.cat([lightness.clamp(-1.5, 1.5), out[:, :, 1:]], dim=2)


# --------------------------------------------------------------------------- losses
def colorization_loss(
    feats: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Copy colour-cluster distributions from the T-1 references to the target; cross-entropy.

    Args:
        feats: (B, T, C, h, w) L2-normalised features; frames 0..T-2 are references.
        labels: (B, T, K, h, w) colour-cluster distributions per cell.
    Returns:
        scalar mean cross-entropy over target cells.
    """
    B, C = feats.shape[0], feats.shape[2]
    K = labels.shape[2]
    target = feats[:, -1].flatten(2).transpose(1, 2)  # (B, hw, C)
    refs = feats[:, :-1].permute(0, 2, 1, 3, 4).reshape(B, C, -1)  # (B, C, (T-1)hw)
    attn = torch.softmax(torch.bmm(target, refs) / temperature, dim=-1)  # (B, hw, (T-1)hw)
    ref_labels = labels[:, :-1].permute(0, 1, 3, 4, 2).reshape(B, -1, K)  # (B, (T-1)hw, K)
    pred = torch.bmm(attn, ref_labels)  # (B, hw, K)
    truth = labels[:, -1].flatten(2).transpose(1, 2)  # (B, hw, K)
    return -(truth * torch.log(pred.clamp_min(1e-6))).sum(-1).mean()


def _transition(
    a: torch.Tensor, b: torch.Tensor, temperature: float, dropout: float, gen: torch.Generator
) -> torch.Tensor:
    """Row-stochastic transition from nodes a (B, N, C) to nodes b (B, M, C), with edge dropout."""
    logits = torch.bmm(a, b.transpose(1, 2)) / temperature
    probs = torch.softmax(logits, dim=-1)
    if dropout > 0:
        mask = (torch.rand(probs.shape, generator=gen) >= dropout).to(probs.device, probs.dtype)
        probs = probs * mask
        probs = probs / probs.sum(-1, keepdim=True).clamp_min(1e-12)
    return probs


def crw_loss(
    feats: torch.Tensor, temperature: float, edge_dropout: float, pool: int, gen: torch.Generator
) -> torch.Tensor:
    """Contrastive random walk over palindromes 0→k→0 for every k in 1..T-1.

    Args:
        feats: (B, T, C, h, w) features (pooled by ``pool`` into nodes, then L2-normalised).
        gen: CPU generator for the edge-dropout masks (deterministic training).
    Returns:
        scalar mean cross-entropy of returning to the start node.
    """
    B, T, C = feats.shape[:3]
    nodes = F.avg_pool2d(feats.flatten(0, 1), pool, pool, ceil_mode=True)
    nodes = F.normalize(nodes.flatten(2).transpose(1, 2), dim=-1)  # (B*T, N, C)
    nodes = nodes.reshape(B, T, -1, C)
    N = nodes.shape[2]
    forward = [
        _transition(nodes[:, t], nodes[:, t + 1], temperature, edge_dropout, gen)
        for t in range(T - 1)
    ]
    backward = [
        _transition(nodes[:, t + 1], nodes[:, t], temperature, edge_dropout, gen)
        for t in range(T - 1)
    ]
    target = torch.arange(N, device=feats.device).repeat(B)
    losses = []
    walk_out = None
    for k in range(1, T):
        walk_out = forward[k - 1] if walk_out is None else torch.bmm(walk_out, forward[k - 1])
        walk = walk_out
        for t in range(k - 1, -1, -1):
            walk = torch.bmm(walk, backward[t])
        losses.append(F.nll_loss(torch.log(walk.clamp_min(1e-20)).flatten(0, 1), target))
    return torch.stack(losses).mean()


def feature_distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean cosine distance between student and teacher features, per cell.

    Args:
        student, teacher: (N, C, h, w) features (normalised here).
    Returns:
        scalar mean of 1 - cos over the N*h*w cells.
    """
    cos = (F.normalize(student, dim=1) * F.normalize(teacher, dim=1)).sum(1)
    return (1.0 - cos).mean()


def affinity_logits(feats: torch.Tensor, temperature: float) -> torch.Tensor:
    """Target-to-reference affinity logits of a clip batch, as in colorization and propagation.

    Args:
        feats: (B, T, C, h, w) L2-normalised features; frames 0..T-2 are references, T-1 the target.
    Returns:
        (B, h*w, (T-1)*h*w) cosine similarities / temperature.
    """
    B, C = feats.shape[0], feats.shape[2]
    target = feats[:, -1].flatten(2).transpose(1, 2)  # (B, hw, C)
    refs = feats[:, :-1].permute(0, 2, 1, 3, 4).reshape(B, C, -1)  # (B, C, (T-1)hw)
    return torch.bmm(target, refs) / temperature


def affinity_distill_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(teacher || student) of each target cell's softmax over the reference cells.

    Args:
        student, teacher: (B, T, C, h, w) L2-normalised features.
    Returns:
        scalar mean KL over the B*h*w target cells.
    """
    log_q = torch.log_softmax(affinity_logits(student, temperature), dim=-1)
    log_p = torch.log_softmax(affinity_logits(teacher, temperature), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()


def jitter_only(config: ObjectiveConfig) -> ObjectiveConfig:
    """``config`` without grey / channel dropout (distillation input: colour + L jitter)."""
    return replace(config, target_grey=0.0, target_drop_one=0.0, ref_grey=0.0, ref_drop_one=0.0)


def clip_losses(
    net: nn.Module,
    clips: torch.Tensor,
    centroids: torch.Tensor,
    config: ObjectiveConfig,
    rng: np.random.Generator,
    teacher: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """All losses of the configured objective for one batch.

    Args:
        net: encoder with ``.stride``; (N, 3, H, W) -> (N, C, h, w).
        clips: (B, T, H, W, 3) uint8 RGB on the training device.
        centroids: (K, 2) ab centroids on the same device (unused by ``distill``).
        teacher: frozen encoder with the student's stride and output dim (``distill`` only).
    Returns:
        dict with "loss" (the total to minimise) and the individual terms.
    """
    B, T, H, W, _ = clips.shape
    rgb = clips.flatten(0, 1).permute(0, 3, 1, 2).float() / 255.0
    lab = rgb_to_lab(rgb)  # (B*T, 3, H, W)
    clean = lab_to_input(lab).reshape(B, T, 3, H, W)
    if config.objective == "distill":
        if teacher is None:
            raise ValueError("the distill objective needs a teacher network")
        inputs = augment_input(clean, rng, jitter_only(config)).flatten(0, 1)
        with torch.no_grad():
            target = teacher.eval()(inputs)
        feats = net(inputs)
        if target.shape != feats.shape:
            raise ValueError(
                f"student output {tuple(feats.shape)} does not match the teacher's "
                f"{tuple(target.shape)} (same stride and dim needed)"
            )
        student_u = F.normalize(feats, dim=1).reshape(B, T, *feats.shape[1:])
        teacher_u = F.normalize(target, dim=1).reshape(B, T, *target.shape[1:])
        feature = feature_distill_loss(feats, target)
        affinity = affinity_distill_loss(student_u, teacher_u, config.distill_temperature)
        loss = config.distill_feature_weight * feature + config.distill_affinity_weight * affinity
        return {"feature": feature, "affinity": affinity, "loss": loss}
    inputs = augment_input(clean, rng, config)
    feats = net(inputs.flatten(0, 1))
    feats = feats.reshape(B, T, *feats.shape[1:])
    terms: dict[str, torch.Tensor] = {}
    if config.objective in ("colorization", "colorization+crw"):
        labels = soft_colour_labels(lab, centroids, net.stride)
        labels = labels.reshape(B, T, *labels.shape[1:])
        terms["color"] = colorization_loss(F.normalize(feats, dim=2), labels, config.temperature)
    if config.objective in ("crw", "colorization+crw"):
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        crw = crw_loss(feats, config.crw_temperature, config.crw_edge_dropout, config.crw_pool, gen)
        terms["crw"] = crw
    weights = {"color": 1.0, "crw": config.crw_weight}
    terms["loss"] = sum(weights[k] * v for k, v in terms.items())
    return terms


__all__ = [
    "OBJECTIVES",
    "ObjectiveConfig",
    "affinity_distill_loss",
    "affinity_logits",
    "augment_input",
    "clip_losses",
    "colorization_loss",
    "crw_loss",
    "feature_distill_loss",
    "fit_ab_clusters",
    "kmeans",
    "soft_colour_labels",
]
