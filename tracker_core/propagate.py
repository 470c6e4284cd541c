"""The label propagator: copy labels from a memory of reference frames through a local affinity.

For every query cell ``j`` of the target frame, the candidates are the cells ``i`` of each
reference frame inside a ``(2R+1)^2`` window around ``j``. Scores are ``-|f_i - f_j|^2 / 2``; the
top-k candidates over all references are softmax-weighted (temperature ``tau``) and their label
vectors are averaged. The grid is processed in square tiles: each tile of ``T x T`` queries is
scored against the ``(T+2R)^2`` reference cells around it with one batched matmul against a view
of the reference (stored in row bands, so windows need no copying); the top-k then reads only
each query's own window, so no dense ``(hw)^2`` matrix is ever built.

Memory (MAST/CRW style): the user's keyframes nearest to the start (long-term) plus the start frame
and the last ``n_recent`` predictions (short-term). Predictions are fed back as soft labels.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from tracker_core.confidence import object_confidences
from tracker_core.encoder import Encoder, grid_size
from tracker_core.errors import FrameDamaged
from tracker_core.labels import FrameLabels
from tracker_core.pipeline import LoadAhead, SharedWork

# runs a frame's matching pieces, possibly with another thread's help (LoadAhead.share)
Share = Callable[[SharedWork[torch.Tensor]], list[torch.Tensor]]


@dataclass(frozen=True)
class PropagationConfig:
    """How labels are propagated. Radii are in feature-grid cells."""

    radius: int = 8
    keyframe_radius: int = 12
    topk: int = 10
    temperature: float = 0.05
    n_recent: int = 3  # 7 gives +1.2 J&F (learned, dev) at 183 vs 127 ms/frame on 2 cores
    n_keyframes: int = 3
    # Tile edge in cells; exact for any size. 0 = by feature width: 4 for narrow features (Lab:
    # 175 vs 194 ms CPU/frame at 8), 8 for wide ones (learned 67-d: 361 vs 425 ms at 4).
    tile: int = 0
    keypoint_sigma: float = 0.5
    keypoint_visible_threshold: float = 0.3
    # Keypoint decoding: "top3" = weighted mean of the 3 hottest cells (cell-quantised bias);
    # "peak" = soft-argmax in the (2w+1)^2 cells around the hottest cell (w = keypoint_window).
    keypoint_decode: str = "peak"  # BADJA dev PCK@0.1 35.5 vs 32.0 for "top3"
    keypoint_window: int = 1
    # Keypoint feedback into the memory: "sharp" re-renders visible points as fresh Gaussians at
    # their decoded position; "soft" keeps the copied heat.
    keypoint_feedback: str = "sharp"
    # Weight each joint's heat by its object's propagated mask probability before decoding and
    # feedback (0 = off; the owner is the mask holding most of its points in the start frame;
    # without one nothing changes). BADJA dev PCK@0.1 36.4 vs 35.5 without.
    keypoint_mask_weight: float = 1.0
    # Recent frames in the keypoints' memory (0 = n_recent). When larger than n_recent, joints
    # are copied in a pass of their own over this longer memory (same keys; only the tiles
    # near joints are scored), so masks keep their cost.
    keypoint_n_recent: int = 7  # BADJA dev PCK@0.1 bear 58.6 vs 55.4, horsejump 57.6 vs 53.9
    refine_radius: int = 4  # guided-filter radius in pixels for mask boundaries (0 = off)
    # The guided filter's coefficients on s x s block means (the fast guided filter, He & Sun
    # 2015), applied at full resolution; 1 = the exact filter. 2: dev / dev-b J&F 83.48 / 73.93
    # vs 83.44 / 73.91 exact, decoding a 480p bear mask 3.3 vs 6.6 ms (benchmarks/RESULTS.md).
    refine_subsample: int = 2
    # Frames taller than this are encoded and matched downscaled to this height (radii are in
    # grid cells, so a fixed work size keeps the windows' reach in the scene); labels are still
    # decoded and refined on the full frame. 0 = always the frame's own size.
    max_work_height: int = 480
    # Pass over damaged frames (frames() raising FrameDamaged): no result, not in memory.
    skip_damaged: bool = False
    # Region localisation (UVC / MAST style): the tiles near each mask object match every memory
    # frame in windows centred where the object came from, not at the query's own cell. The
    # object's position at t is extrapolated from the centroids of its propagated masks (t-1
    # plus ``region_velocity`` times the last step); the offset for a memory frame is that
    # position minus the object's centroid there. Tiles with a cell within ``region_margin``
    # cells of the object's predicted cells take its offsets; other tiles, keypoint-only videos
    # and objects that do not move are matched exactly as without it.
    # On with slack 0.5: dev / dev-b J&F 83.4 / 73.0 vs 72.6 / 72.0 off (fp32), at +7-13 % CPU
    # per frame (benchmarks/RESULTS.md, "Region localisation").
    region_localise: bool = True
    region_velocity: float = 1.0
    region_margin: int = 4
    # Each offset shrinks towards 0 by this fraction of the window radius per axis: small motion,
    # which the window covers anyway, moves no window (0: dev-b 66.9 vs 68.3 on 7 sequences).
    region_slack: float = 0.5
    # Project every frame's features onto the top principal directions (uncentred) of the start
    # frame's features (``feature_basis``): the matmuls scale with the channels, and the
    # projection drops directions the video does not use. 32 of the shipped 67: dev / dev-b J&F
    # 83.4 / 73.9 vs 83.25 / 73.0 with all, 24 and 40 also help both, 16 loses dev-b
    # (benchmarks/RESULTS.md, "Feature dimensions and encoding ahead"). 0 = all channels.
    feature_dims: int = 32
    # Decode and encode the next two frames on a worker thread while frame t is matched,
    # torch's threads split between the two (needs >= 2 threads; outputs are identical either
    # way; tracker_core/pipeline.py).
    encode_ahead: bool = True
    # Between its loads the worker scores some of frame t's tile runs (needs ``encode_ahead``;
    # outputs are identical): fast fp32 52.7 vs 64.5 ms/frame on 2 cores (benchmarks/RESULTS.md,
    # "The loading thread helps with the matching").
    split_matching: bool = True

    def __post_init__(self) -> None:
        if self.radius < 0 or self.keyframe_radius < 0:
            raise ValueError("radius must be >= 0")
        if self.topk < 1 or self.n_recent < 1 or self.n_keyframes < 1 or self.tile < 0:
            raise ValueError("topk, n_recent, n_keyframes must be >= 1 and tile >= 0")
        if self.max_work_height < 0:
            raise ValueError("max_work_height must be >= 0")
        if self.feature_dims < 0:
            raise ValueError("feature_dims must be >= 0")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")
        if self.keypoint_decode not in ("top3", "peak") or self.keypoint_window < 0:
            raise ValueError("keypoint_decode must be 'top3' or 'peak', keypoint_window >= 0")
        if self.keypoint_feedback not in ("sharp", "soft"):
            raise ValueError("keypoint_feedback must be 'sharp' or 'soft'")
        if not 0.0 <= self.keypoint_mask_weight <= 1.0:
            raise ValueError("keypoint_mask_weight must be in [0, 1]")
        if self.keypoint_n_recent < 0:
            raise ValueError("keypoint_n_recent must be >= 0")
        if self.region_velocity < 0 or self.region_margin < 0 or self.region_slack < 0:
            raise ValueError("region_velocity, region_margin and region_slack must be >= 0")


@dataclass(frozen=True)
class PropagatedFrame:
    """One propagated frame: decoded labels, a confidence in [0, 1], and the compute time."""

    index: int
    labels: FrameLabels
    confidence: float
    seconds: float = 0.0
    soft: torch.Tensor | None = field(default=None, repr=False)  # (K, h, w) grid labels
    # per object id (nan where the object has no measure); objects left out take ``confidence``
    object_confidence: Mapping[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelLayout:
    """Maps label channels: ``mask_ids`` (channel 0 = background) then keypoint heatmaps."""

    mask_ids: tuple[int, ...]
    keypoints: tuple[tuple[int, int], ...]  # (keypoint-object id, number of points)

    @property
    def num_mask_channels(self) -> int:
        return len(self.mask_ids) + 1

    @property
    def num_channels(self) -> int:
        return self.num_mask_channels + sum(p for _, p in self.keypoints)


# --------------------------------------------------------------------------- label encoding


def mask_to_soft(
    mask: np.ndarray,
    mask_ids: Sequence[int],
    grid_hw: tuple[int, int],
    work_hw: tuple[int, int] | None = None,
) -> torch.Tensor:
    """Id mask -> per-cell label fractions (area average over each cell).

    (H, W) uint8 -> (len(mask_ids) + 1, h, w) float32; channel 0 is background, cells sum to 1.
    ``work_hw``: the (smaller) size the grid was computed at; each object's plane is first
    area-averaged to it.
    """
    h, w = grid_hw
    src_hw = mask.shape[:2] if work_hw is None else work_hw
    sh, sw = math.ceil(src_hw[0] / h), math.ceil(src_hw[1] / w)
    pad = ((0, h * sh - src_hw[0]), (0, w * sw - src_hw[1]))

    def plane(obj: int) -> np.ndarray:
        if work_hw is None or work_hw == mask.shape[:2]:
            return (np.pad(mask, pad, mode="edge") == obj).astype(np.float32)
        small = cv2.resize(
            (mask == obj).astype(np.float32), work_hw[::-1], interpolation=cv2.INTER_AREA
        )
        return np.pad(small, pad, mode="edge")

    planes = [cv2.resize(plane(obj), (w, h), interpolation=cv2.INTER_AREA) for obj in mask_ids]
    fg = torch.from_numpy(np.stack(planes)) if planes else torch.zeros(0, h, w)
    return torch.cat([(1 - fg.sum(dim=0, keepdim=True)).clamp(min=0), fg], dim=0)


def keypoints_to_heatmaps(
    points: np.ndarray, stride: int, grid_hw: tuple[int, int], sigma: float
) -> torch.Tensor:
    """Keypoints -> Gaussian heatmaps on the grid (peak 1; zero for unplaced/invisible points).

    (P, 3) float (x, y, visible) in pixels -> (P, h, w) float32.
    """
    h, w = grid_hw
    ys = torch.arange(h, dtype=torch.float32)[:, None]
    xs = torch.arange(w, dtype=torch.float32)[None, :]
    maps = torch.zeros(len(points), h, w)
    for p, (x, y, vis) in enumerate(points):
        if vis > 0 and np.isfinite(x) and np.isfinite(y):
            cx, cy = (x + 0.5) / stride - 0.5, (y + 0.5) / stride - 0.5
            maps[p] = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
    return maps


def encode_labels(
    labels: FrameLabels,
    layout: LabelLayout,
    frame_hw: tuple[int, int],
    stride: int,
    sigma: float,
    work_hw: tuple[int, int] | None = None,
) -> torch.Tensor:
    """FrameLabels of a frame_hw frame -> (layout.num_channels, h, w) float32 soft labels on
    the grid of the frame, or of the frame resized to ``work_hw``."""
    size = frame_hw if work_hw is None else work_hw
    grid_hw = grid_size(size[0], size[1], stride)
    mask = labels.mask if labels.mask is not None else np.zeros(frame_hw, np.uint8)
    masks = mask_to_soft(mask, layout.mask_ids, grid_hw, None if size == frame_hw else size)
    work = rescale_keypoints(labels, frame_hw, size)
    return torch.cat([masks, encode_keypoints(work, layout, stride, grid_hw, sigma)], dim=0)


def rescale_keypoints(
    labels: FrameLabels, from_hw: tuple[int, int], to_hw: tuple[int, int]
) -> FrameLabels:
    """The labels with keypoint positions mapped from a from_hw frame to the same frame resized
    to to_hw (pixel centres align: ``x' = (x + 0.5) * W'/W - 0.5``); the mask is kept as is."""
    if from_hw == to_hw or not labels.keypoints:
        return labels
    sx, sy = to_hw[1] / from_hw[1], to_hw[0] / from_hw[0]
    moved = {}
    for obj, pts in labels.keypoints.items():
        out = np.array(pts, dtype=np.float32, copy=True)
        out[:, 0] = (out[:, 0] + 0.5) * sx - 0.5
        out[:, 1] = (out[:, 1] + 0.5) * sy - 0.5
        moved[obj] = out
    return dataclasses.replace(labels, keypoints=moved)


def encode_keypoints(
    labels: FrameLabels, layout: LabelLayout, stride: int, grid_hw: tuple[int, int], sigma: float
) -> torch.Tensor:
    """The keypoint channels of :func:`encode_labels`: (sum of points, h, w) heatmaps."""
    parts = [torch.zeros(0, *grid_hw)]
    for obj, count in layout.keypoints:
        pts = labels.keypoints.get(obj)
        if pts is None:
            pts = np.full((count, 3), np.nan, np.float32)
            pts[:, 2] = 0
        parts.append(keypoints_to_heatmaps(pts, stride, grid_hw, sigma))
    return torch.cat(parts, dim=0)


def _guided_coefficients(
    guide: np.ndarray, planes: np.ndarray, radius: int, eps: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per plane, the box-averaged linear coefficients (mean a, mean b) of the guided filter:
    the output is ``mean_a * guide + mean_b``. guide (H, W), planes (K, H, W) float32."""
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    denom = box(guide * guide) - mean_i * mean_i + np.float32(eps)  # var_i + eps
    tmp = np.empty_like(guide)
    for p in planes:
        mean_p = box(p)
        np.multiply(guide, p, out=tmp)
        a = box(tmp)
        a -= np.multiply(mean_i, mean_p, out=tmp)
        a /= denom
        mean_p -= np.multiply(a, mean_i, out=tmp)  # the bias
        yield box(a), box(mean_p)


def _block_mean(x: np.ndarray, s: int) -> np.ndarray:
    """(H, W) -> (ceil(H/s), ceil(W/s)) means of s x s blocks, the last ones edge-padded."""
    h, w = x.shape
    hs, ws = -(-h // s), -(-w // s)
    if (hs * s, ws * s) != (h, w):
        x = cv2.copyMakeBorder(x, 0, hs * s - h, 0, ws * s - w, cv2.BORDER_REPLICATE)
    return cv2.resize(x, (ws, hs), interpolation=cv2.INTER_AREA)  # an integer factor: exact


def _coarse_radius(radius: int, subsample: int) -> int:
    """The fast guided filter's box radius on s x s block means (at least one block)."""
    return max(1, round(radius / subsample))


def guided_filter(
    guide: np.ndarray, planes: np.ndarray, radius: int, eps: float, subsample: int = 1
) -> np.ndarray:
    """Edge-aware smoothing of probability planes by a grey guide image (He et al. 2010).

    guide: (H, W) float32 in [0, 1]; planes: (K, H, W) float32 -> (K, H, W) float32.
    ``subsample`` s > 1: the fast guided filter (He & Sun 2015): the coefficients are computed
    on s x s block means with radius ``radius / s`` and upsampled bilinearly, then applied to
    the full-resolution guide (about 1/s^2 of the box-filter work). Block boundaries lie on
    multiples of s from the top-left corner, so a crop starting at a multiple of s sees the
    same blocks as the whole image.
    """
    out = np.empty_like(planes)
    if subsample <= 1:
        for c, (mean_a, mean_b) in enumerate(_guided_coefficients(guide, planes, radius, eps)):
            np.multiply(mean_a, guide, out=out[c])
            out[c] += mean_b
        return out
    s = subsample
    h, w = guide.shape
    small = np.stack([_block_mean(p, s) for p in planes])
    size = (small.shape[2] * s, small.shape[1] * s)

    def up(x: np.ndarray) -> np.ndarray:
        return cv2.resize(x, size, interpolation=cv2.INTER_LINEAR)[:h, :w]

    coeffs = _guided_coefficients(_block_mean(guide, s), small, _coarse_radius(radius, s), eps)
    for c, (mean_a, mean_b) in enumerate(coeffs):
        np.multiply(up(mean_a), guide, out=out[c])
        out[c] += up(mean_b)
    return out


def _nonzero_box(plane: np.ndarray) -> tuple[int, int, int, int] | None:
    """(h, w) bool -> (y0, y1, x0, x1) bounding box of the True cells (end exclusive), or None."""
    rows, cols = np.flatnonzero(plane.any(axis=1)), np.flatnonzero(plane.any(axis=0))
    if not len(rows):
        return None
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def soft_to_mask(
    soft: torch.Tensor,
    mask_ids: Sequence[int],
    frame_hw: tuple[int, int],
    stride: int,
    frame: np.ndarray | None = None,
    refine_radius: int = 0,
    cell: tuple[float, float] | None = None,
    refine_subsample: int = 1,
) -> np.ndarray:
    """(1 + len(mask_ids), h, w) soft labels -> (H, W) uint8 id mask.

    ``cell``: (y, x) frame pixels per grid cell when the grid was computed on a resized frame
    (default: ``stride`` both ways). ``refine_subsample``: the guided filter's ``subsample``.

    Each object's probabilities are upsampled bilinearly to the frame, then (with a frame and
    ``refine_radius`` > 0) a guided filter snaps label boundaries to image edges; the id is the
    argmax with background = 1 - sum of the objects. Both steps are linear and keep constants,
    so this equals filtering the background plane too. Only the box around the cells where some
    object has probability > 0 is computed: outside it every plane is exactly 0 (background).
    """
    height, width = frame_hw
    out = np.zeros(frame_hw, np.uint8)
    fg = soft[1:].numpy()
    box = _nonzero_box(fg.max(axis=0) > 0) if len(fg) else None
    if box is None:
        return out
    _, h, w = soft.shape
    cell_y, cell_x = cell if cell is not None else (stride, stride)
    # the canvas the grid is upsampled to (covers the frame; cropped to it)
    canvas = (w * stride, h * stride) if cell is None else (round(w * cell_x), round(h * cell_y))
    r = refine_radius if frame is not None and refine_radius > 0 else 0
    sub = max(1, refine_subsample) if r > 0 else 1
    # pixels a cell reaches through the bilinear kernel (< 1 cell) and the filter (2r: box of
    # box; subsampled: 2 blocks of blocks each way and the bilinear upsampling)
    reach = 2 * r + 1 if sub == 1 else 2 * sub * (_coarse_radius(r, sub) + 1) + sub
    inner = math.ceil(max(cell_y, cell_x)) + reach
    outer = inner + reach  # and the pixels those depend on
    cy0, cy1, cx0, cx1 = box

    def span(c0: int, c1: int, size_c: float, margin: int, size: int) -> tuple[int, int]:
        # starts on a multiple of the subsampling, so a crop has the whole frame's blocks
        start = max(0, math.floor(c0 * size_c) - margin) // sub * sub
        return start, min(size, math.ceil(c1 * size_c) + margin)

    (oy0, oy1) = span(cy0, cy1, cell_y, outer, height)
    (ox0, ox1) = span(cx0, cx1, cell_x, outer, width)
    (iy0, iy1) = span(cy0, cy1, cell_y, inner, height)
    (ix0, ix1) = span(cx0, cx1, cell_x, inner, width)
    up = np.stack(
        [cv2.resize(p, canvas, interpolation=cv2.INTER_LINEAR)[oy0:oy1, ox0:ox1] for p in fg]
    )
    if r > 0:
        crop = np.ascontiguousarray(frame[oy0:oy1, ox0:ox1])  # type: ignore[index]
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        up = guided_filter(grey, up, r, 1e-3, sub)
    up = up[:, iy0 - oy0 : iy1 - oy0, ix0 - ox0 : ix1 - ox0]
    out[iy0:iy1, ix0:ix1] = _argmax_ids(up, mask_ids)
    return out


def _argmax_ids(up: np.ndarray, mask_ids: Sequence[int]) -> np.ndarray:
    """(K, H, W) object probabilities -> (H, W) uint8: the id of the argmax of background
    ``1 - sum`` and the objects (the first on ties, as ``np.argmax``), one plane at a time."""
    best = 1.0 - up.sum(axis=0)
    ids = np.zeros(best.shape, np.uint8)
    better = np.empty(best.shape, bool)
    for obj, plane in zip(mask_ids, up):
        np.greater(plane, best, out=better)
        ids[better] = obj
        np.maximum(best, plane, out=best)
    return ids


def gaussian_mass(sigma: float) -> float:
    """Total mass of a unit-peak Gaussian heatmap of width ``sigma`` cells on the grid."""
    r = math.ceil(4 * sigma) + 1
    d = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(d**2) / (2 * sigma**2))
    return float(g.sum() ** 2)


def peak_centroid(heat: torch.Tensor, window: int) -> tuple[float, float]:
    """Sub-cell position of the peak of one heatmap: the centroid of the (clamped >= 0) heat in
    the ``(2 window + 1)^2`` cells around the hottest cell (cut at the grid border).

    heat: (h, w) -> (y, x) in grid cells (cell centres at integers).
    """
    h, w = heat.shape
    peak = int(heat.argmax())
    py, px = divmod(peak, w)
    y0, y1 = max(0, py - window), min(h, py + window + 1)
    x0, x1 = max(0, px - window), min(w, px + window + 1)
    patch = heat[y0:y1, x0:x1].clamp(min=0).double()
    total = float(patch.sum())
    if total <= 0:
        return float(py), float(px)
    ys = torch.arange(y0, y1, dtype=torch.float64)[:, None]
    xs = torch.arange(x0, x1, dtype=torch.float64)[None, :]
    return float((patch * ys).sum() / total), float((patch * xs).sum() / total)


def heatmaps_to_keypoints(
    maps: torch.Tensor,
    stride: int,
    visible_threshold: float,
    sigma: float = 0.5,
    decode: str = "top3",
    window: int = 1,
) -> np.ndarray:
    """(P, h, w) heatmaps -> (P, 3) float32 (x, y, visible) in pixels.

    ``decode="top3"``: the weighted mean of the 3 hottest cells; ``"peak"``: the soft-argmax in
    the ``(2 window + 1)^2`` cells around the hottest one (:func:`peak_centroid`), which undoes
    most of the stride quantisation of a single peak and ignores a second, distant mode.

    A point is visible while its heatmap keeps at least ``visible_threshold`` of the mass of a
    freshly rendered Gaussian (copying through the affinity roughly preserves mass; occlusion and
    loss spread or drop it). A weaker point keeps its best-guess position with visible = 0 (COCO's
    "labelled, not visible"); a point with no heat at all is unplaced (NaN).
    """
    if decode not in ("top3", "peak"):
        raise ValueError(f"decode must be 'top3' or 'peak', got {decode!r}")
    p, _, w = maps.shape
    out = np.full((p, 3), np.nan, np.float32)
    out[:, 2] = 0.0
    flat = maps.reshape(p, -1)
    vals, idx = flat.topk(min(3, flat.shape[1]), dim=1)
    mass = flat.clamp(min=0).sum(dim=1)
    full = gaussian_mass(sigma)
    for k in range(p):
        if float(vals[k, 0]) <= 1e-4:
            continue
        if decode == "peak":
            cy, cx = peak_centroid(maps[k], window)
        else:
            wts = vals[k].clamp(min=0) + 1e-8
            gy = (idx[k] // w).float()
            gx = (idx[k] % w).float()
            cy = float((wts * gy).sum() / wts.sum())
            cx = float((wts * gx).sum() / wts.sum())
        visible = float(mass[k]) >= visible_threshold * full
        out[k] = ((cx + 0.5) * stride - 0.5, (cy + 0.5) * stride - 0.5, float(visible))
    return out


# --------------------------------------------------------------------------- affinity


def _bands(x: torch.Tensor, tile: int, radius: int, last_fill: float | None = None) -> torch.Tensor:
    """(C, h, w) -> (th, Wb, T+2r, C): per tile row, the T+2r grid rows its windows reach,
    stored column by column, so the window of tile (ty, tx) is the contiguous block
    ``bands[ty, tx*T : tx*T + T+2r]`` of (T+2r)^2 cells (x-major) by C.

    Cells outside the grid are 0 (``last_fill`` for the last channel). ``Wb`` is the padded
    width rounded up to whole tiles.
    """
    c, h, w = x.shape
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    span = tile + 2 * radius
    hp, wb = th * tile + 2 * radius, (tw + math.ceil(2 * radius / tile)) * tile
    padded = x.new_zeros(wb, hp, c)
    if last_fill is not None:
        padded[:, :, -1] = last_fill
    padded[radius : radius + w, radius : radius + h] = x.permute(2, 1, 0)
    return padded.as_strided((th, wb, span, c), (tile * c, hp * c, c, 1)).contiguous()


def _tile_windows(bands: torch.Tensor, tile: int, radius: int) -> torch.Tensor:
    """(th, Wb, T+2r, C) bands -> a (th*pitch, (T+2r)^2, C) view: row ``ty*pitch + tx`` is the
    window of tile (ty, tx), where ``pitch = Wb // T`` (rows past a tile row's last tile are
    not windows and are never read)."""
    th, wb, span, c = bands.shape
    n = (th - 1) * (wb // tile) + (wb - 2 * radius) // tile
    return bands.as_strided((n, span * span, c), (tile * span * c, c, 1))


@functools.lru_cache(maxsize=32)
def _candidate_table(
    tile: int, radii: tuple[int, ...], topk: int
) -> tuple[torch.Tensor, tuple[tuple[tuple[int, int], ...], ...], int]:
    """Where each query's candidates lie in a row of concatenated tile scores, by segment.

    A segment is up to ``seg`` consecutive cells of one window row (fixed y offset, x running)
    of one reference's window. Returns ``table`` (T*T, S, seg) long: for query q of a tile and
    segment s, the positions of its cells in the score row, padded with the sentinel ``L`` (a
    trailing ``-inf`` score); ``chunks``: per reference, the x ranges [x0, x1) of its
    segments (the S axis runs over references, then chunks, then window rows); and the row length
    ``L = sum (T+2r)^2``. Blocks are stored column by column (see ``_bands``), so a window
    row is strided and a window column contiguous. ``seg`` minimises the two top-k stages'
    work S + topk * seg (the first ranks S segment maxima, the second topk * seg cells).
    """
    windows = [2 * r + 1 for r in radii]

    def cost(seg: int) -> int:
        return sum(d * math.ceil(d / seg) for d in windows) + topk * seg

    seg = min(range(1, max(windows) + 1), key=cost)
    q = torch.arange(tile * tile)
    qy, qx = q // tile, q % tile
    parts, chunks, offset = [], [], 0
    for r, d in zip(radii, windows):
        span = tile + 2 * r
        g = torch.arange(d)
        chunks.append(tuple((x0, min(d, x0 + seg)) for x0 in range(0, d, seg)))
        for x0 in range(0, d, seg):
            x1 = min(d, x0 + seg)
            s = torch.arange(seg)
            # (T*T, d rows, seg cells): offset + (qx + x) * span + (qy + g)
            pos = offset + (qx[:, None, None] + x0 + s) * span + qy[:, None, None] + g[:, None]
            parts.append(torch.where(s < x1 - x0, pos, -1))
        offset += span * span
    table = torch.cat(parts, dim=1)
    return table.masked_fill(table < 0, offset), tuple(chunks), offset


@dataclass(frozen=True)
class Reference:
    """A memory frame in the layout the affinity reads without copying.

    keys: (th, Wb, T+2r, C+1) bands of the features with a last channel ``-|f|^2/2`` (-inf
    outside the frame), so one matmul against ``[f_q, 1]`` gives ``f_i.f_q - |f_i|^2/2``;
    values: (th, Wb, T+2r, K) bands of the labels; lo/hi: (nT, K) label range inside each
    tile's window. Bands store each grid row (T+2r)/T times (3x for r 8, tile 8).

    A reference built for a box of tiles only (:func:`box_reference`) holds the bands of tile
    rows ``row0..`` and columns ``col0..``: tile (ty, tx) of the box is window
    ``(ty - row0) * pitch + tx - col0``; its lo/hi are 0 outside the box.
    """

    keys: torch.Tensor
    values: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    radius: int
    tile: int
    row0: int = 0
    col0: int = 0


def _query_tiles(x: torch.Tensor, tile: int) -> torch.Tensor:
    """(C, h, w) -> (th, tw, T*T, C): each tile's cells (row-major), zero past the grid."""
    c, h, w = x.shape
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    padded = F.pad(x, (0, tw * tile - w, 0, th * tile - h))
    cells = padded.view(c, th, tile, tw, tile).permute(1, 3, 2, 4, 0)
    return cells.reshape(th, tw, tile * tile, c)


def _window_extrema(plane: torch.Tensor, span: int, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, H, W) plane, -inf at cells to leave out -> (lo, hi), each (K, (H - span) // tile + 1,
    (W - span) // tile + 1): the minimum / maximum of the other cells of each ``span`` x ``span``
    window at stride ``tile``. Max pooling by rows, then by columns (exact: max is associative);
    ``plane`` is changed (its left-out cells become +inf)."""

    def pool(x: torch.Tensor) -> torch.Tensor:
        rows = F.max_pool2d(x[None], (span, 1), stride=(tile, 1))
        return F.max_pool2d(rows, (1, span), stride=(1, tile))[0]

    hi = pool(plane)
    lo = -pool(-plane.masked_fill_(torch.isneginf(plane), float("inf")))
    return lo, hi


def _label_windows(
    labels: torch.Tensor, tile: int, radius: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The label part of a reference: labels (K, h, w) -> (value bands, lo, hi), where lo / hi
    (nT, K) are each tile window's per-channel minimum / maximum over cells on the grid."""
    k, h, w = labels.shape
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    plane = labels.new_full((k, th * tile + 2 * radius, tw * tile + 2 * radius), float("-inf"))
    plane[:, radius : radius + h, radius : radius + w] = labels
    lo, hi = _window_extrema(plane, tile + 2 * radius, tile)  # (K, th, tw)
    return _bands(labels, tile, radius), lo.flatten(1).T.contiguous(), hi.flatten(1).T.contiguous()


def translate(x: torch.Tensor, offset: tuple[int, int], fill: float = 0.0) -> torch.Tensor:
    """(C, h, w) -> (C, h, w) moved by ``offset`` = (dy, dx) cells: ``out[:, y, x] =
    x[:, y - dy, x - dx]``; cells that come from outside the grid are ``fill``."""
    dy, dx = offset
    _, h, w = x.shape
    out = x.new_full(x.shape, fill)
    if abs(dy) < h and abs(dx) < w:
        out[:, max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)] = x[
            :, max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)
        ]
    return out


def key_bias(feats: torch.Tensor) -> torch.Tensor:
    """The keys' last channel: (C, h, w) features -> (1, h, w) ``-|f|^2 / 2``."""
    return -0.5 * (feats * feats).sum(dim=0, keepdim=True)


def make_reference(
    feats: torch.Tensor,
    labels: torch.Tensor,
    radius: int,
    tile: int,
    offset: tuple[int, int] = (0, 0),
    bias: torch.Tensor | None = None,
) -> Reference:
    """Prepare a reference frame: feats (C, h, w), labels (K, h, w) on the same grid.

    ``offset`` (dy, dx): the frame translated by it, so that the window of query cell p is
    centred at ``p - offset`` of the frame; cells moved in from outside are never candidates
    (bias -inf, like those past the border). ``bias``: :func:`key_bias` of feats, if known.
    """
    bias = key_bias(feats) if bias is None else bias
    if offset != (0, 0):
        feats, labels = translate(feats, offset), translate(labels, offset)
        bias = translate(bias, offset, float("-inf"))
    values, lo, hi = _label_windows(labels, tile, radius)
    keys = _bands(torch.cat([feats, bias]), tile, radius, last_fill=float("-inf"))
    return Reference(keys, values, lo, hi, radius, tile)


def _box_source(
    grid_hw: tuple[int, int],
    tile: int,
    radius: int,
    box: tuple[int, int, int, int],
    offset: tuple[int, int],
) -> tuple[int, int, int, int]:
    """The cells (y0, y1, x0, x1) (end exclusive; empty when y0 >= y1 or x0 >= x1) of an
    untranslated (C, h, w) grid that :func:`_box_bands` with ``box`` and ``offset`` reads."""
    h, w = grid_hw
    ty0, ty1, tx0, tx1 = box
    dy, dx = offset
    hp, wb = (ty1 - ty0) * tile + 2 * radius, (tx1 - tx0 + math.ceil(2 * radius / tile)) * tile
    y0, x0 = ty0 * tile - radius, tx0 * tile - radius
    ylo, yhi = max(y0, 0, dy), min(y0 + hp, h, h + dy)
    xlo, xhi = max(x0, 0, dx), min(x0 + wb, w, w + dx)
    return ylo - dy, yhi - dy, xlo - dx, xhi - dx


def _box_bands(
    x: torch.Tensor,
    tile: int,
    radius: int,
    box: tuple[int, int, int, int],
    offset: tuple[int, int] = (0, 0),
    last_fill: float | None = None,
    grid_hw: tuple[int, int] | None = None,
    origin: tuple[int, int] = (0, 0),
) -> torch.Tensor:
    """:func:`_bands` of ``x`` (C, h, w) translated by ``offset`` (as :func:`translate`), for the
    tiles ``box`` = (ty0, ty1, tx0, tx1) only (end exclusive): (ty1 - ty0, Wb', T+2r, C) with
    ``Wb' = (tx1 - tx0 + ceil(2r / T)) * T``. Cells off the grid, or moved in from off it, are
    0 (``last_fill`` for the last channel). With the whole grid as box and no offset, equal
    to :func:`_bands`.

    ``grid_hw`` / ``origin``: ``x`` is the part of a grid of that size from cell ``origin`` on
    (at least the cells :func:`_box_source` names); default the whole grid."""
    c = x.shape[0]
    h, w = grid_hw if grid_hw is not None else x.shape[1:]
    ty0, ty1, tx0, tx1 = box
    dy, dx = offset
    oy, ox = origin
    span = tile + 2 * radius
    hp, wb = (ty1 - ty0) * tile + 2 * radius, (tx1 - tx0 + math.ceil(2 * radius / tile)) * tile
    y0, x0 = ty0 * tile - radius, tx0 * tile - radius  # grid cell of padded[0, 0]
    padded = x.new_zeros(wb, hp, c)
    if last_fill is not None:
        padded[:, :, -1] = last_fill
    ylo, yhi = max(y0, 0, dy), min(y0 + hp, h, h + dy)
    xlo, xhi = max(x0, 0, dx), min(x0 + wb, w, w + dx)
    if ylo < yhi and xlo < xhi:
        src = x[:, ylo - dy - oy : yhi - dy - oy, xlo - dx - ox : xhi - dx - ox]
        padded[xlo - x0 : xhi - x0, ylo - y0 : yhi - y0] = src.permute(2, 1, 0)
    return padded.as_strided((ty1 - ty0, wb, span, c), (tile * c, hp * c, c, 1)).contiguous()


def _box_label_windows(
    labels: torch.Tensor,
    tile: int,
    radius: int,
    box: tuple[int, int, int, int],
    offset: tuple[int, int],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_label_windows` of ``labels`` (K, h, w) translated by ``offset``, for the tiles of
    ``box`` only: (value bands of the box, lo, hi), lo / hi (nT, K) 0 outside the box.

    lo / hi are max-pooled (exact) over the box's padded plane of translated labels, where cells
    off the grid are -inf for hi (+inf for lo) and cells moved in from off it are 0."""
    k, h, w = labels.shape
    ty0, ty1, tx0, tx1 = box
    dy, dx = offset
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    values = _box_bands(labels, tile, radius, box, offset)
    span = tile + 2 * radius
    hp, wb = (ty1 - ty0) * tile + 2 * radius, (tx1 - tx0 + math.ceil(2 * radius / tile)) * tile
    y0, x0 = ty0 * tile - radius, tx0 * tile - radius  # grid cell of plane[:, 0, 0]
    plane = labels.new_full((k, hp, wb), float("-inf"))
    plane[:, max(y0, 0) - y0 : min(y0 + hp, h) - y0, max(x0, 0) - x0 : min(x0 + wb, w) - x0] = 0
    ylo, yhi = max(y0, 0, dy), min(y0 + hp, h, h + dy)
    xlo, xhi = max(x0, 0, dx), min(x0 + wb, w, w + dx)
    if ylo < yhi and xlo < xhi:
        src = labels[:, ylo - dy : yhi - dy, xlo - dx : xhi - dx]
        plane[:, ylo - y0 : yhi - y0, xlo - x0 : xhi - x0] = src
    lo_box, hi_box = _window_extrema(plane, span, tile)  # (K, ty1 - ty0, tx1 - tx0)
    lo = labels.new_zeros(th, tw, k)
    hi = labels.new_zeros(th, tw, k)
    lo[ty0:ty1, tx0:tx1] = lo_box.permute(1, 2, 0)
    hi[ty0:ty1, tx0:tx1] = hi_box.permute(1, 2, 0)
    return values, lo.view(th * tw, k), hi.view(th * tw, k)


def box_reference(
    feats: torch.Tensor,
    labels: torch.Tensor,
    radius: int,
    tile: int,
    offset: tuple[int, int],
    box: tuple[int, int, int, int],
    keys_of: Reference | None = None,
    bias: torch.Tensor | None = None,
) -> Reference:
    """:func:`make_reference` with ``offset`` for the tiles of ``box`` = (ty0, ty1, tx0, tx1)
    only (the same windows, built for a fraction of the grid). ``keys_of``: a box reference of
    the same frame, offset and box whose keys are shared (only the labels are built);
    ``bias``: :func:`key_bias` of feats (1, h, w), if known."""
    values, lo, hi = _box_label_windows(labels, tile, radius, box, offset)
    if keys_of is not None:
        keys = keys_of.keys
    else:
        # only the cells the box reads are concatenated (the bias of the whole frame: a sum
        # over channels of a crop may round differently)
        bias = key_bias(feats) if bias is None else bias
        grid_hw = (feats.shape[1], feats.shape[2])
        y0, y1, x0, x1 = _box_source(grid_hw, tile, radius, box, offset)
        rows, cols = slice(y0, max(y0, y1)), slice(x0, max(x0, x1))
        planes = torch.cat([feats[:, rows, cols], bias[:, rows, cols]])
        keys = _box_bands(planes, tile, radius, box, offset, float("-inf"), grid_hw, (y0, x0))
    return Reference(keys, values, lo, hi, radius, tile, box[0], box[2])


def relabel(ref: Reference, labels: torch.Tensor) -> Reference:
    """The same reference frame (its keys shared, not copied) with other labels (K', h, w)."""
    return Reference(ref.keys, *_label_windows(labels, ref.tile, ref.radius), ref.radius, ref.tile)


def _copy_run(
    q: torch.Tensor,
    refs: Sequence[Reference],
    pieces: Sequence[tuple[int, Sequence[tuple[torch.Tensor, torch.Tensor]]]],
    topk: int,
    temperature: float,
) -> torch.Tensor:
    """Labels for a run of tiles of one tile row, in pieces that may each read another set of
    references (the same radii, e.g. translated versions of the same frames).

    q: (n, T*T, C+1) query tiles ``[f, 1]``; pieces: consecutive (count, rows) with counts
    summing to n, where rows holds per reference its (count, (T+2r)^2, C+1) key windows and
    (count, (T+2r)^2, K) value windows (views) for those query tiles. Returns (n, T*T, K).
    Each piece is scored by its own matmuls; the top-k and the weighting run once for all.

    Exact top-k in two stages: the k best candidates lie in the k window segments with the
    largest maxima (any other segment's best is beaten by k segment maxima), so the top-k
    runs over k segments instead of every candidate.
    """
    n, tt, _ = q.shape
    tile = refs[0].tile
    table, chunks, row = _candidate_table(tile, tuple(r.radius for r in refs), topk)
    pitch = row + 1  # the last score of each query is the padding sentinel -inf
    scores = q.new_empty(n, tt, pitch)  # all references' window blocks side by side
    scores[:, :, row] = float("-inf")
    seg_max, offset = [], 0
    for r, (ref, ref_chunks) in enumerate(zip(refs, chunks)):
        span, d = tile + 2 * ref.radius, 2 * ref.radius + 1
        block = slice(offset, offset + span * span)
        start = 0
        for count, rows in pieces:
            keys = rows[r][0]
            part = slice(start, start + count)
            torch.bmm(q[part], keys.transpose(1, 2), out=scores[part, :, block])
            start += count
        # the d x d window of query (qy, qx): block columns qx..qx+2r (stride span) by rows
        # qy..qy+2r (contiguous); the max over columns reduces an outer axis (vectorised)
        strides = (tt * pitch, tile * pitch + 1, pitch + span, span, 1)
        window = scores.as_strided((n, tile, tile, d, d), strides, offset)
        for x0, x1 in ref_chunks:
            seg_max.append(window[:, :, :, x0:x1].amax(dim=3).reshape(n, tt, d))
        offset += span * span
    n_seg, seg = table.shape[1], table.shape[2]
    kc = min(topk, n_seg)
    _, sel = torch.cat(seg_max, dim=2).topk(kc, dim=2, sorted=False)  # (n, T*T, kc)
    flat = (sel + torch.arange(tt)[:, None] * n_seg).view(-1)
    pos = table.view(tt * n_seg, seg).index_select(0, flat).view(n, tt, kc * seg)
    cand = torch.gather(scores, 2, pos)  # (n, T*T, kc * seg)
    top, best = cand.topk(min(topk, kc * seg), dim=2, sorted=False)
    k = top.shape[2]
    idx = torch.gather(pos, 2, best)  # (n, T*T, k)
    wts = torch.softmax(top / temperature, dim=2)
    n_lab = pieces[0][1][0][1].shape[2]
    values = torch.cat(  # (n, L+1, K): each piece's labels of all references, then a 0 label
        [
            torch.cat([*(v for _, v in rows), q.new_zeros(count, 1, n_lab)], dim=1)
            for count, rows in pieces
        ]
    )
    picked = torch.gather(values, 1, idx.view(n, tt * k, 1).expand(-1, -1, n_lab))
    return torch.bmm(wts.view(n * tt, 1, k), picked.view(n * tt, k, n_lab)).view(n, tt, n_lab)


def _region_spans(cols: Sequence[int], regions: Sequence[int]) -> list[tuple[int, int, int]]:
    """Increasing tile columns of one run and each one's reference set -> (set, x0, x1) column
    ranges (end exclusive), one per stretch of consecutive columns in ``cols`` with one set,
    from its first to its last column (columns between two stretches of different sets are
    left out)."""
    spans: list[tuple[int, int, int]] = []
    for x, g in zip(cols, regions):
        if spans and spans[-1][0] == g:
            spans[-1] = (g, spans[-1][1], x + 1)
        else:
            spans.append((g, x, x + 1))
    return spans


def _span_rows(cols: Sequence[int], spans: Sequence[tuple[int, int, int]]) -> list[int]:
    """The row of each column of ``cols`` in the batch of :func:`_region_spans`' ``spans``
    (their columns one after the other)."""
    rows, start = [], 0
    for _, x0, x1 in spans:
        rows.extend(start + x - x0 for x in cols if x0 <= x < x1)
        start += x1 - x0
    return rows


def local_affinity_copy(
    query: torch.Tensor,
    refs: Sequence[Reference],
    topk: int,
    temperature: float,
    eps: float = 1e-3,
    run: int = 16,
    regions: Sequence[Sequence[Reference]] = (),
    tile_region: torch.Tensor | None = None,
    share: Share | None = None,
) -> torch.Tensor:
    """Copy reference labels to the query grid through a top-k local-window affinity.

    query: (C, h, w) features on the references' grid. Returns labels (K, h, w). Tiles whose
    candidate labels are all equal (within ``eps``) take that label directly: a convex combination
    of identical vectors is the vector itself. The others are scored in runs of up to ``run``
    adjacent tiles of a tile row (one matmul per reference against a view of its bands).

    ``regions``: other versions of ``refs`` (same frames and radii, e.g. translated by
    :func:`make_reference`'s offset); ``tile_region`` (nT,) long picks per tile which set it
    is matched against (0 = ``refs``, j = ``regions[j - 1]``; None = all ``refs``).

    ``share``: runs the runs as a :class:`~tracker_core.pipeline.SharedWork` that another thread
    may help with (:meth:`~tracker_core.pipeline.LoadAhead.share`; the runs are independent,
    so the result is the same).
    """
    _, h, w = query.shape
    tile = refs[0].tile
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    n_lab = refs[0].values.shape[-1]
    sets = [refs, *regions]
    lo = torch.stack([torch.stack([r.lo for r in s]).amin(dim=0) for s in sets])  # (S, nT, K)
    hi = torch.stack([torch.stack([r.hi for r in s]).amax(dim=0) for s in sets])
    if tile_region is None or not regions:
        region = [0] * (th * tw)
        lo, hi = lo[0], hi[0]
    else:
        region = tile_region.tolist()
        pick = tile_region.view(1, -1, 1).expand(1, -1, n_lab)
        lo, hi = lo.gather(0, pick)[0], hi.gather(0, pick)[0]
    active = torch.nonzero((hi - lo).amax(dim=1) > eps).flatten()
    out = lo[:, None, :].expand(-1, tile * tile, -1).clone()  # (nT, T*T, K)
    if len(active):
        q = _query_tiles(torch.cat([query, query.new_ones(1, h, w)]), tile)  # (th, tw, T*T, C+1)
        views = [
            [
                (
                    _tile_windows(r.keys, tile, r.radius),
                    _tile_windows(r.values, tile, r.radius),
                    r.keys.shape[1] // tile,
                    r.row0,
                    r.col0,
                )
                for r in s
            ]
            for s in sets
        ]
        tiles = active.tolist()
        args = (topk, temperature)
        runs: list[tuple[int, int]] = []  # [i, j] ranges of ``tiles``: one tile row, < run apart
        i = 0
        while i < len(tiles):
            ty, j = tiles[i] // tw, i
            while j + 1 < len(tiles) and tiles[j + 1] < tiles[i] + run and tiles[j + 1] // tw == ty:
                j += 1
            runs.append((i, j))
            i = j + 1

        def score(i: int, j: int) -> torch.Tensor:
            """(j - i + 1, T*T, K) labels of ``tiles[i..j]``."""
            ty = tiles[i] // tw
            cols = [t % tw for t in tiles[i : j + 1]]
            spans = _region_spans(cols, [region[t] for t in tiles[i : j + 1]])
            pieces = [
                (
                    x1 - x0,
                    [
                        (
                            k[(ty - y0) * p + x0 - c0 : (ty - y0) * p + x1 - c0],
                            v[(ty - y0) * p + x0 - c0 : (ty - y0) * p + x1 - c0],
                        )
                        for k, v, p, y0, c0 in views[g]
                    ],
                )
                for g, x0, x1 in spans
            ]
            sel = active[i : j + 1] - tiles[i]
            if len(spans) == 1:
                res = _copy_run(q[ty, cols[0] : cols[-1] + 1], sets[spans[0][0]], pieces, *args)
                return res[sel]
            q_run = torch.cat([q[ty, x0:x1] for _, x0, x1 in spans])
            res = _copy_run(q_run, sets[spans[0][0]], pieces, *args)
            return res[torch.tensor(_span_rows(cols, spans))]

        work = SharedWork(len(runs), lambda n: score(*runs[n]))
        out[active] = torch.cat(work.run() if share is None else share(work))
    grid = out.view(th, tw, tile, tile, n_lab).permute(4, 0, 2, 1, 3)
    return grid.reshape(n_lab, th * tile, tw * tile)[:, :h, :w].contiguous()


# --------------------------------------------------------------------------- regions


def object_centroids(soft_mask: torch.Tensor, min_mass: float = 0.5) -> torch.Tensor:
    """(K, h, w) soft labels (channel 0 background) -> (K-1, 2) float64 (y, x) centroid of each
    object's probability in grid cells; nan for an object with less than ``min_mass`` cells."""
    k, h, w = soft_mask.shape
    if k < 2:
        return torch.zeros(0, 2, dtype=torch.float64)
    fg = soft_mask[1:].clamp(min=0).double()
    mass = fg.sum(dim=(1, 2))
    ys = torch.arange(h, dtype=torch.float64)
    xs = torch.arange(w, dtype=torch.float64)
    cy = (fg.sum(dim=2) @ ys) / mass.clamp(min=1e-9)
    cx = (fg.sum(dim=1) @ xs) / mass.clamp(min=1e-9)
    out = torch.stack([cy, cx], dim=1)
    return out.masked_fill((mass < min_mass)[:, None], math.nan)


def predict_centroids(track: Sequence[torch.Tensor], velocity: float) -> torch.Tensor:
    """The objects' centroids at t from those of t-1 (``track[-1]``) and t-2 (``track[-2]``,
    if any): ``c1 + velocity * (c1 - c2)``; without a finite step, ``c1``. (n, 2) each."""
    last = track[-1]
    if len(track) < 2:
        return last.clone()
    step = last - track[-2]
    return last + velocity * torch.nan_to_num(step, nan=0.0)


def predicted_presence(planes: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """(n, h, w) object probabilities at t-1 moved by their predicted step (n, 2) cells
    (rounded; nan = not moved) -> (n, h, w): where each object is expected at t."""
    out = torch.empty_like(planes)
    for obj, (dy, dx) in enumerate(torch.nan_to_num(step, nan=0.0).round().long().tolist()):
        out[obj] = translate(planes[obj : obj + 1], (dy, dx))[0]
    return out


def region_tiles(
    presence: torch.Tensor, tile: int, margin: int, threshold: float = 0.25
) -> torch.Tensor:
    """(n, h, w) each object's predicted probability at t -> (nT,) long: for each tile, 1 + the
    object with the highest probability within ``margin`` cells of the tile's cells, or 0 when
    none reaches ``threshold``. Tiles are numbered row by row (as in the affinity)."""
    n, h, w = presence.shape
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    if n == 0:
        return torch.zeros(th * tw, dtype=torch.long)
    x = presence[None].float()
    if margin > 0:
        x = F.max_pool2d(x, 2 * margin + 1, stride=1, padding=margin)
    x = F.pad(x, (0, tw * tile - w, 0, th * tile - h))
    per_tile = F.max_pool2d(x, tile)[0].flatten(1)  # (n, nT)
    best, obj = per_tile.max(dim=0)
    return torch.where(best >= threshold, obj + 1, torch.zeros_like(obj))


def clamp_offset(
    offset: tuple[int, int], cells: tuple[int, int, int, int], grid_hw: tuple[int, int], radius: int
) -> tuple[int, int]:
    """The offset (dy, dx), clamped so that the window of every query cell in ``cells`` = (y0,
    y1, x0, x1) (end exclusive, on the grid) keeps at least one cell on the grid."""
    (dy, dx), (y0, y1, x0, x1), (h, w) = offset, cells, grid_hw
    return (
        min(max(dy, y1 - h - radius), y0 + radius),
        min(max(dx, x1 - w - radius), x0 + radius),
    )


def window_offsets(
    target: torch.Tensor,
    memory: Sequence[torch.Tensor],
    radii: Sequence[int],
    slack: float = 0.0,
) -> list[list[tuple[int, int]]]:
    """Per object (row of ``target`` (n, 2), its predicted centroid at t) and memory frame (its
    centroids (n, 2) in ``memory``), the integer window offset ``round(target - centroid)``,
    each axis shrunk towards 0 by ``floor(slack * radius)`` cells (the window moves only as far
    as keeps the predicted centroid that close to its centre); (0, 0) where a centroid is not
    finite. Not yet clamped to the object's tiles (:func:`region_offsets`)."""
    out: list[list[tuple[int, int]]] = []
    for obj in range(len(target)):
        offsets = []
        for cents, radius in zip(memory, radii):
            d = target[obj] - cents[obj]
            if not bool(torch.isfinite(d).all()):
                offsets.append((0, 0))
                continue
            free = math.floor(slack * radius)
            dy, dx = (round(float(v)) for v in d)
            offsets.append(
                (
                    int(math.copysign(max(0, abs(dy) - free), dy)),
                    int(math.copysign(max(0, abs(dx) - free), dx)),
                )
            )
        out.append(offsets)
    return out


def region_offsets(
    raw: Sequence[Sequence[tuple[int, int]]],
    radii: Sequence[int],
    tiles: torch.Tensor,
    tile: int,
    grid_hw: tuple[int, int],
) -> list[list[tuple[int, int]]]:
    """The offsets of :func:`window_offsets` (``raw``: per object, per memory frame), each
    clamped by :func:`clamp_offset` to the object's tiles (``tiles`` (nT,), 1 + object);
    (0, 0) where the object has no tile. A raw (0, 0) stays (0, 0)."""
    h, w = grid_hw
    tw = math.ceil(w / tile)
    out: list[list[tuple[int, int]]] = []
    for obj, obj_raw in enumerate(raw):
        own = torch.nonzero(tiles == obj + 1).flatten()
        if not len(own):
            out.append([(0, 0)] * len(obj_raw))
            continue
        ty, tx = own // tw, own % tw
        cells = (
            int(ty.min()) * tile,
            min(h, (int(ty.max()) + 1) * tile),
            int(tx.min()) * tile,
            min(w, (int(tx.max()) + 1) * tile),
        )
        out.append([clamp_offset(o, cells, grid_hw, r) for o, r in zip(obj_raw, radii)])
    return out


@dataclass(frozen=True)
class MemoryFrame:
    """A frame in the propagator's memory: its reference and what translating it needs.

    feats (C, h, w) and labels (K, h, w) as given to :func:`make_reference`; ``centroids``
    (n, 2) its mask objects' centroids (:func:`object_centroids`); ``keys_from``: the frame
    whose keys this one shares (a keypoint memory frame relabelled from a mask one); ``bias``:
    :func:`key_bias` of feats (1, h, w), if kept.
    """

    feats: torch.Tensor
    labels: torch.Tensor
    ref: Reference
    centroids: torch.Tensor
    keys_from: MemoryFrame | None = None
    bias: torch.Tensor | None = field(default=None, compare=False, repr=False)
    shifted: dict[tuple[int, ...], Reference] = field(
        default_factory=dict, compare=False, repr=False
    )


def shifted_reference(
    mem: MemoryFrame,
    offset: tuple[int, int],
    box: tuple[int, int, int, int],
    keep: int = 4,
) -> Reference:
    """``mem``'s reference translated by ``offset`` for the tiles of ``box``
    (:func:`box_reference`), cached in the frame (at most ``keep``; ``(0, 0)`` is the reference
    itself)."""
    if offset == (0, 0):
        return mem.ref
    key = (*offset, *box)
    hit = mem.shifted.get(key)
    if hit is None:
        r, t = mem.ref.radius, mem.ref.tile
        keys_of = None if mem.keys_from is None else shifted_reference(mem.keys_from, offset, box)
        hit = box_reference(mem.feats, mem.labels, r, t, offset, box, keys_of, mem.bias)
        if len(mem.shifted) >= keep:
            mem.shifted.pop(next(iter(mem.shifted)))
        mem.shifted[key] = hit
    return hit


def tile_box(tiles: torch.Tensor, tw: int) -> tuple[int, int, int, int]:
    """(n,) tile numbers (row by row, ``tw`` per row; n >= 1) -> their bounding box (ty0, ty1,
    tx0, tx1), end exclusive."""
    ty, tx = tiles // tw, tiles % tw
    return int(ty.min()), int(ty.max()) + 1, int(tx.min()), int(tx.max()) + 1


def localised_copy(
    query: torch.Tensor,
    memory: Sequence[MemoryFrame],
    tiles: torch.Tensor,
    offsets: Sequence[Sequence[tuple[int, int]]],
    topk: int,
    temperature: float,
    share: Share | None = None,
) -> torch.Tensor:
    """:func:`local_affinity_copy` of ``memory``, each object's tiles (``tiles`` (nT,), 1 +
    object) matched against the memory translated by its ``offsets`` (per object, per memory
    frame). Objects whose offsets are all (0, 0) need no translated set."""
    refs = [m.ref for m in memory]
    regions: list[list[Reference]] = []
    tile_region = torch.zeros_like(tiles)
    tw = math.ceil(query.shape[2] / refs[0].tile)
    for obj, offs in enumerate(offsets):
        own = torch.nonzero(tiles == obj + 1).flatten()
        if not len(own) or all(o == (0, 0) for o in offs):
            continue
        box = tile_box(own, tw)
        regions.append([shifted_reference(m, o, box) for m, o in zip(memory, offs)])
        tile_region[own] = len(regions)
    return local_affinity_copy(
        query, refs, topk, temperature, regions=regions, tile_region=tile_region, share=share
    )


# --------------------------------------------------------------------------- the loop


def mask_confidence(soft_mask: torch.Tensor, start_area: torch.Tensor | None = None) -> float:
    """Frame confidence in [0, 1]: the lowest of :func:`~tracker_core.confidence.object_confidences`
    (see there); 1.0 without mask objects. soft_mask: (K, h, w); start_area: (K-1,) or None."""
    scores = object_confidences(soft_mask, start_area)
    return float(scores.min()) if len(scores) else 1.0


def layout_for(
    references: Mapping[int, FrameLabels], num_keypoints: Mapping[int, int]
) -> LabelLayout:
    """The channel layout covering every mask id present in the references."""
    ids: set[int] = set()
    for labels in references.values():
        if labels.mask is not None:
            ids.update(int(v) for v in np.unique(labels.mask) if v != 0)
    return LabelLayout(tuple(sorted(ids)), tuple(sorted(num_keypoints.items())))


def decode_labels(
    soft: torch.Tensor,
    layout: LabelLayout,
    frame_hw: tuple[int, int],
    stride: int,
    threshold: float,
    sigma: float = 0.5,
    frame: np.ndarray | None = None,
    refine_radius: int = 0,
    decode: str = "top3",
    window: int = 1,
    work_hw: tuple[int, int] | None = None,
    refine_subsample: int = 1,
) -> FrameLabels:
    """(layout.num_channels, h, w) soft labels -> FrameLabels at full resolution (frame_hw);
    keypoints by :func:`heatmaps_to_keypoints` with ``decode`` and ``window``.

    ``work_hw``: the size the frame was resized to for the grid (None = frame_hw); the mask
    is then upsampled (and refined on ``frame``) straight to frame_hw.
    """
    size = frame_hw if work_hw is None else work_hw
    cell = None
    if size != frame_hw:
        cell = (stride * frame_hw[0] / size[0], stride * frame_hw[1] / size[1])
    m = layout.num_mask_channels
    mask = soft_to_mask(
        soft[:m], layout.mask_ids, frame_hw, stride, frame, refine_radius, cell, refine_subsample
    )
    kps: dict[int, np.ndarray] = {}
    start = m
    for obj, count in layout.keypoints:
        heat = soft[start : start + count]
        kps[obj] = heatmaps_to_keypoints(heat, stride, threshold, sigma, decode, window)
        start += count
    return rescale_keypoints(FrameLabels(mask=mask, keypoints=kps), size, frame_hw)


def work_size(frame_hw: tuple[int, int], max_height: int) -> tuple[int, int]:
    """The (height, width) frames of frame_hw are encoded and matched at: frame_hw when it is
    at most ``max_height`` tall (or ``max_height`` is 0), else scaled to that height."""
    height, width = frame_hw
    if max_height <= 0 or height <= max_height:
        return frame_hw
    return max_height, max(1, round(width * max_height / height))


def keypoint_owners(labels: FrameLabels, layout: LabelLayout) -> dict[int, int]:
    """Keypoint object id -> the mask id that holds more than half of its placed points in
    ``labels`` (the start frame); objects without such a mask are left out."""
    owners: dict[int, int] = {}
    if labels.mask is None or not layout.mask_ids:
        return owners
    hgt, wid = labels.mask.shape
    for obj, _ in layout.keypoints:
        pts = labels.keypoints.get(obj)
        if pts is None:
            continue
        placed = pts[np.isfinite(pts[:, 0]) & np.isfinite(pts[:, 1])]
        if not len(placed):
            continue
        xs = np.clip(np.round(placed[:, 0]).astype(int), 0, wid - 1)
        ys = np.clip(np.round(placed[:, 1]).astype(int), 0, hgt - 1)
        ids, counts = np.unique(labels.mask[ys, xs], return_counts=True)
        best = int(counts.argmax())
        if ids[best] != 0 and ids[best] in layout.mask_ids and 2 * counts[best] > len(placed):
            owners[obj] = int(ids[best])
    return owners


def weight_keypoints_by_mask(
    soft: torch.Tensor, layout: LabelLayout, owners: Mapping[int, int], weight: float
) -> torch.Tensor:
    """Scale each owned keypoint object's heatmaps by ``1 - weight + weight * p`` where ``p`` is
    its owner's propagated mask probability on the grid (joints stay on their object).

    soft: (layout.num_channels, h, w) -> a new tensor of the same shape.
    """
    out = soft.clone()
    if weight <= 0 or not owners:
        return out
    start = layout.num_mask_channels
    for obj, count in layout.keypoints:
        owner = owners.get(obj)
        if owner is not None:
            prob = soft[1 + layout.mask_ids.index(owner)].clamp(0, 1)
            out[start : start + count] *= (1 - weight) + weight * prob
        start += count
    return out


def _nearest_keyframes(references: Mapping[int, FrameLabels], start: int, n: int) -> list[int]:
    return sorted(sorted(references, key=lambda k: (abs(k - start), k))[:n])


@dataclass(frozen=True)
class WarmupProgress:
    """Warm-up before the first propagated frame: memory frame ``done`` of ``total`` is being
    encoded (the start frame and the user's keyframes)."""

    done: int
    total: int

    @property
    def message(self) -> str:
        return f"encoding keyframes {self.done}/{self.total}"


class FeatureCache:
    """A bounded cache of encoded frames of one video for one encoder, so that a resumed or
    repeated propagation re-encodes nothing it still holds.

    Eviction follows the direction of travel: when over ``max_bytes``, frames already passed in
    the current run go first (the farthest behind first), then the ones farthest ahead; a
    resume after a correction therefore finds the frames near the previous run's end.
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self.max_bytes = max_bytes
        self._items: dict[int, torch.Tensor] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, index: int) -> torch.Tensor | None:
        """The cached (C, h, w) features of frame ``index``, or None."""
        feats = self._items.get(index)
        if feats is None:
            self.misses += 1
        else:
            self.hits += 1
        return feats

    def put(self, index: int, feats: torch.Tensor, position: int, step: int) -> None:
        """Store frame ``index``'s features; the run is at ``position`` moving by ``step``."""
        size = feats.element_size() * feats.nelement()
        if size > self.max_bytes or index in self._items:
            return
        self._items[index] = feats
        self._bytes += size
        while self._bytes > self.max_bytes:
            victim = max(self._items, key=lambda k: _eviction_rank(k, position, step))
            self._bytes -= self._items[victim].element_size() * self._items[victim].nelement()
            del self._items[victim]


def _eviction_rank(index: int, position: int, step: int) -> tuple[int, int]:
    """Higher = evicted sooner: frames behind the run (farthest first), then farthest ahead."""
    ahead = (index - position) * step
    return (1, -ahead) if ahead < 0 else (0, ahead)


def feature_basis(feats: torch.Tensor, dims: int) -> torch.Tensor | None:
    """(C, h, w) features -> (dims, C) orthonormal rows: the top principal directions (uncentred,
    so dot products are what is kept) of the cells' features; None when ``dims`` is 0 or >= C.

    Projecting every frame onto the start frame's basis keeps the affinity's dot products where
    the video's features vary and drops the rest: at 32 of 67 channels dev / dev-b J&F 83.4 /
    73.9 against 83.25 / 73.0 with all of them (benchmarks/RESULTS.md, "Feature dimensions").
    """
    if dims <= 0 or dims >= feats.shape[0]:
        return None
    flat = feats.flatten(1).double()
    _, vectors = torch.linalg.eigh(flat @ flat.T)  # ascending eigenvalues
    return vectors[:, -dims:].flip(1).T.to(feats.dtype).contiguous()


def propagate(
    frames: Callable[[int], np.ndarray],
    start: int,
    stop: int,
    references: Mapping[int, FrameLabels],
    num_keypoints: Mapping[int, int],
    encoder: Encoder,
    config: PropagationConfig | None = None,
    *,
    cache: FeatureCache | None = None,
    on_warmup: Callable[[WarmupProgress], None] | None = None,
) -> Iterator[PropagatedFrame]:
    """Propagate labels from frame ``start`` towards ``stop`` (exclusive), one frame at a time.

    ``references`` holds the user's keyframes (long-term memory) and must include ``start``.
    Yields a PropagatedFrame for ``start±1 ... stop∓1`` in order; close the generator to cancel.
    ``cache`` (one per video and encoder) skips encoding frames it holds; ``on_warmup`` hears
    about each memory frame encoded before the first result.

    A damaged frame (``frames(i)`` raises FrameDamaged) ends the run with that error, unless
    ``config.skip_damaged``: then nothing is yielded for it, it is not put in memory, and the
    next frame is propagated from the memory as it was (a damaged keyframe is left out of the
    long-term memory). The start frame must decode either way.
    """
    cfg = config or PropagationConfig()
    if start not in references:
        raise ValueError(f"references must include the start frame {start}")
    step = 1 if stop > start else -1
    layout = layout_for(references, num_keypoints)
    first = frames(start)
    frame_hw = first.shape[:2]
    work_hw = work_size(frame_hw, cfg.max_work_height)
    s, sigma = encoder.stride, cfg.keypoint_sigma

    def labels_of(idx: int) -> torch.Tensor:
        return encode_labels(references[idx], layout, frame_hw, s, sigma, work_hw)

    def decoded(idx: int) -> np.ndarray | None:
        """Frame ``idx``, or None when it is damaged and damaged frames are skipped."""
        try:
            return frames(idx)
        except FrameDamaged:
            if not cfg.skip_damaged:
                raise
            return None

    def encode(idx: int, position: int, frame: np.ndarray) -> torch.Tensor:
        feats = cache.get(idx) if cache is not None else None
        if feats is None:
            if work_hw != frame_hw:
                frame = cv2.resize(frame, work_hw[::-1], interpolation=cv2.INTER_AREA)
            feats = encoder.encode(frame)
            if cache is not None:
                cache.put(idx, feats, position, step)
        return feats

    keyframes = _nearest_keyframes(references, start, cfg.n_keyframes)
    memory = [start, *(k for k in keyframes if k != start)]
    encoded: dict[int, torch.Tensor] = {}
    for i, k in enumerate(memory):
        if on_warmup is not None:
            on_warmup(WarmupProgress(i + 1, len(memory)))
        cached = cache.get(k) if cache is not None else None
        if cached is not None:
            encoded[k] = cached
            continue
        pixels = first if k == start else decoded(k)
        if pixels is not None:  # a damaged keyframe stays out of the long-term memory
            encoded[k] = encode(k, start, pixels)
    first_feats = encoded[start]
    basis = feature_basis(first_feats, cfg.feature_dims)

    def project(x: torch.Tensor) -> torch.Tensor:
        return x if basis is None else (basis @ x.flatten(1)).view(basis.shape[0], *x.shape[1:])

    encoded = {k: project(v) for k, v in encoded.items()}
    first_feats = encoded[start]
    tile = cfg.tile or (4 if first_feats.shape[0] <= 16 else 8)

    def reference(
        feats: torch.Tensor, labels: torch.Tensor, radius: int, bias: torch.Tensor | None = None
    ) -> Reference:
        return make_reference(feats, labels, radius, tile, bias=bias)

    m = layout.num_mask_channels
    # joints in a pass of their own over a longer memory (keys shared with the masks' pass)
    split = bool(layout.keypoints) and cfg.keypoint_n_recent > cfg.n_recent
    main_channels = m if split else layout.num_channels
    localise = cfg.region_localise and bool(layout.mask_ids)

    def remember(
        feats: torch.Tensor, full: torch.Tensor, radius: int
    ) -> tuple[MemoryFrame, MemoryFrame | None]:
        """The memory frame of (K, h, w) labels ``full`` (and its joints' frame when split)."""
        cents = object_centroids(full[:m])
        bias = key_bias(feats)  # kept for the translated references (region localisation)
        ref = reference(feats, full[:main_channels], radius, bias)
        main = MemoryFrame(feats, full[:main_channels], ref, cents, bias=bias)
        if not split:
            return main, None
        kp = MemoryFrame(feats, full[m:], relabel(main.ref, full[m:]), cents, keys_from=main)
        return main, kp

    long_term: list[MemoryFrame] = []
    long_kp: list[MemoryFrame] = []
    for k in keyframes:
        if k in encoded:
            main, kp = remember(encoded[k], labels_of(k), cfg.keyframe_radius)
            long_term.append(main)
            if kp is not None:
                long_kp.append(kp)
    del encoded
    recent: deque[MemoryFrame] = deque(maxlen=cfg.n_recent)
    recent_kp: deque[MemoryFrame] = deque(maxlen=cfg.keypoint_n_recent if split else 1)
    start_labels = labels_of(start)
    owners = keypoint_owners(references[start], layout) if cfg.keypoint_mask_weight > 0 else {}
    start_area = start_labels[1 : layout.num_mask_channels].flatten(1).sum(dim=1)
    main, kp = remember(first_feats, start_labels, cfg.radius)
    recent.append(main)
    if kp is not None:
        recent_kp.append(kp)
    track: deque[torch.Tensor] = deque([main.centroids], maxlen=2)  # centroids at t-2, t-1

    def copy(feats: torch.Tensor, memory: Sequence[MemoryFrame]) -> torch.Tensor:
        plain = [f.ref for f in memory]
        share = ahead.share if cfg.split_matching else None
        if not localise:
            return local_affinity_copy(feats, plain, cfg.topk, cfg.temperature, share=share)
        target = predict_centroids(track, cfg.region_velocity)
        radii = [f.ref.radius for f in memory]
        raw = window_offsets(target, [f.centroids for f in memory], radii, cfg.region_slack)
        if all(o == (0, 0) for offs in raw for o in offs):  # no window moves: the plain copy
            return local_affinity_copy(feats, plain, cfg.topk, cfg.temperature, share=share)
        presence = predicted_presence(recent[-1].labels[1:m], target - track[-1])
        tiles = region_tiles(presence, tile, cfg.region_margin)
        offsets = region_offsets(raw, radii, tiles, tile, (feats.shape[1], feats.shape[2]))
        return localised_copy(feats, memory, tiles, offsets, cfg.topk, cfg.temperature, share)

    def load(idx: int) -> tuple[np.ndarray, torch.Tensor] | None:
        """Frame ``idx`` decoded, checked and encoded; None when it is skipped as damaged."""
        frame = decoded(idx)
        if frame is None:
            return None
        if frame.shape[:2] != frame_hw:
            raise ValueError(f"frame {idx} is {frame.shape[:2]}, expected {frame_hw}")
        return frame, project(encode(idx, idx, frame))

    ahead = LoadAhead(load, range(start + step, stop, step), cfg.encode_ahead)
    try:
        for idx in range(start + step, stop, step):
            t0 = time.perf_counter()
            item = ahead.get(idx)
            if item is None:
                continue
            frame, feats = item
            soft = copy(feats, [*long_term, *recent])
            if split:
                soft = torch.cat([soft, copy(feats, [*long_kp, *recent_kp])])
            if owners:
                soft = weight_keypoints_by_mask(soft, layout, owners, cfg.keypoint_mask_weight)
            labels = decode_labels(
                soft,
                layout,
                frame_hw,
                s,
                cfg.keypoint_visible_threshold,
                sigma,
                frame,
                cfg.refine_radius,
                cfg.keypoint_decode,
                cfg.keypoint_window,
                work_hw,
                cfg.refine_subsample,
            )
            # Feed back the raw soft labels (feeding back the guided-filter refined masks
            # compounds errors: 52.4 vs 62.9 dev J&F); visible keypoints are re-rendered sharp at
            # their decoded position (against blur drift), weak ones keep their soft heat so they
            # can recover.
            feedback = soft.clone()
            if layout.keypoints and cfg.keypoint_feedback == "sharp":
                work = rescale_keypoints(labels, frame_hw, work_hw)
                sharp = encode_keypoints(work, layout, s, tuple(soft.shape[1:]), sigma)
                seen = sharp.flatten(1).amax(dim=1) > 0
                feedback[m:][seen] = sharp[seen]
            main, kp = remember(feats, feedback, cfg.radius)
            recent.append(main)
            if kp is not None:
                recent_kp.append(kp)
            track.append(main.centroids)
            scores = object_confidences(soft[: layout.num_mask_channels], start_area).tolist()
            per_object = {
                **dict(zip(layout.mask_ids, scores)),
                **{o: math.nan for o, _ in layout.keypoints},
            }
            conf = min(scores) if scores else 1.0
            yield PropagatedFrame(idx, labels, conf, time.perf_counter() - t0, soft, per_object)
    finally:
        ahead.close()
