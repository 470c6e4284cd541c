"""The label propagator: copy labels from a memory of reference frames through a local affinity.

For every query cell ``j`` of the target frame, the candidates are the cells ``i`` of each
reference frame inside a ``(2R+1)^2`` window around ``j``. Scores are ``-|f_i - f_j|^2 / 2``; the
top-k candidates over all references are softmax-weighted (temperature ``tau``) and their label
vectors are averaged. The grid is processed in square tiles: each tile of ``T x T`` queries is
scored against the ``(T+2R)^2`` reference cells around it with one batched matmul, and cells
outside each query's own window are masked, so no dense ``(hw)^2`` matrix is ever built.

Memory (MAST/CRW style): the user's keyframes nearest to the start (long-term) plus the start frame
and the last ``n_recent`` predictions (short-term). Predictions are fed back as soft labels.
"""

from __future__ import annotations

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
    refine_radius: int = 4  # guided-filter radius in pixels for mask boundaries (0 = off)
    # Pass over damaged frames (frames() raising FrameDamaged): no result, not in memory.
    skip_damaged: bool = False

    def __post_init__(self) -> None:
        if self.radius < 0 or self.keyframe_radius < 0:
            raise ValueError("radius must be >= 0")
        if self.topk < 1 or self.n_recent < 1 or self.n_keyframes < 1 or self.tile < 0:
            raise ValueError("topk, n_recent, n_keyframes must be >= 1 and tile >= 0")
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")


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
    mask: np.ndarray, mask_ids: Sequence[int], grid_hw: tuple[int, int]
) -> torch.Tensor:
    """Id mask -> per-cell label fractions (area average over each cell).

    (H, W) uint8 -> (len(mask_ids) + 1, h, w) float32; channel 0 is background, cells sum to 1.
    """
    h, w = grid_hw
    sh, sw = math.ceil(mask.shape[0] / h), math.ceil(mask.shape[1] / w)
    padded = np.pad(mask, ((0, h * sh - mask.shape[0]), (0, w * sw - mask.shape[1])), mode="edge")
    planes = [
        cv2.resize((padded == obj).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        for obj in mask_ids
    ]
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
    labels: FrameLabels, layout: LabelLayout, frame_hw: tuple[int, int], stride: int, sigma: float
) -> torch.Tensor:
    """FrameLabels -> (layout.num_channels, h, w) float32 soft labels on the grid."""
    grid_hw = grid_size(frame_hw[0], frame_hw[1], stride)
    mask = labels.mask if labels.mask is not None else np.zeros(frame_hw, np.uint8)
    masks = mask_to_soft(mask, layout.mask_ids, grid_hw)
    return torch.cat([masks, encode_keypoints(labels, layout, stride, grid_hw, sigma)], dim=0)


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


def guided_filter(guide: np.ndarray, planes: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-aware smoothing of probability planes by a grey guide image (He et al. 2010).

    guide: (H, W) float32 in [0, 1]; planes: (K, H, W) float32 -> (K, H, W) float32.
    """
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, k, borderType=cv2.BORDER_REFLECT)

    mean_i = box(guide)
    var_i = box(guide * guide) - mean_i * mean_i
    out = np.empty_like(planes)
    for c, p in enumerate(planes):
        mean_p = box(p)
        a = (box(guide * p) - mean_i * mean_p) / (var_i + eps)
        bias = mean_p - a * mean_i
        out[c] = box(a) * guide + box(bias)
    return out


def upsample_soft(
    soft: torch.Tensor,
    frame_hw: tuple[int, int],
    stride: int,
    frame: np.ndarray | None = None,
    refine_radius: int = 0,
) -> np.ndarray:
    """(K, h, w) grid mask labels -> (K, H, W) float32 probabilities at full resolution.

    Bilinear upsampling, then (with a frame and ``refine_radius`` > 0) a guided filter that snaps
    label boundaries to image edges.
    """
    _, h, w = soft.shape
    up = np.stack(
        [
            cv2.resize(p, (w * stride, h * stride), interpolation=cv2.INTER_LINEAR)
            for p in soft.numpy()
        ]
    )[:, : frame_hw[0], : frame_hw[1]]
    if frame is not None and refine_radius > 0 and soft.shape[0] > 1:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
        up = guided_filter(grey, np.ascontiguousarray(up), refine_radius, 1e-3)
    return up


def soft_to_mask(
    soft: torch.Tensor,
    mask_ids: Sequence[int],
    frame_hw: tuple[int, int],
    stride: int,
    frame: np.ndarray | None = None,
    refine_radius: int = 0,
) -> np.ndarray:
    """(1 + len(mask_ids), h, w) soft labels -> (H, W) uint8 id mask (see ``upsample_soft``)."""
    up = upsample_soft(soft, frame_hw, stride, frame, refine_radius)
    lut = np.array((0, *mask_ids), dtype=np.uint8)
    return lut[up.argmax(axis=0)]


def gaussian_mass(sigma: float) -> float:
    """Total mass of a unit-peak Gaussian heatmap of width ``sigma`` cells on the grid."""
    r = math.ceil(4 * sigma) + 1
    d = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(d**2) / (2 * sigma**2))
    return float(g.sum() ** 2)


def heatmaps_to_keypoints(
    maps: torch.Tensor, stride: int, visible_threshold: float, sigma: float = 0.5
) -> np.ndarray:
    """(P, h, w) heatmaps -> (P, 3) float32 (x, y, visible) in pixels; weighted mean of top-3 cells.

    A point is visible while its heatmap keeps at least ``visible_threshold`` of the mass of a
    freshly rendered Gaussian (copying through the affinity roughly preserves mass; occlusion and
    loss spread or drop it). A weaker point keeps its best-guess position with visible = 0 (COCO's
    "labelled, not visible"); a point with no heat at all is unplaced (NaN).
    """
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
        wts = vals[k].clamp(min=0) + 1e-8
        gy = (idx[k] // w).float()
        gx = (idx[k] % w).float()
        cy = float((wts * gy).sum() / wts.sum())
        cx = float((wts * gx).sum() / wts.sum())
        visible = float(mass[k]) >= visible_threshold * full
        out[k] = ((cx + 0.5) * stride - 0.5, (cy + 0.5) * stride - 0.5, float(visible))
    return out


# --------------------------------------------------------------------------- affinity


def _tiles(x: torch.Tensor, tile: int, radius: int, fill: float = 0.0) -> torch.Tensor:
    """(C, h, w) -> (nT, C, (tile+2r)^2): each tile's surrounding window; outside cells = fill."""
    c, h, w = x.shape
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    pad = (radius, tw * tile - w + radius, radius, th * tile - h + radius)
    padded = F.pad(x[None], pad, value=fill)
    win = tile + 2 * radius
    cols = F.unfold(padded, kernel_size=win, stride=tile)  # (1, C*win*win, nT)
    return cols.view(c, win * win, -1).permute(2, 0, 1)


@functools.lru_cache(maxsize=32)
def _window_index(tile: int, radius: int) -> torch.Tensor:
    """(tile^2, (2r+1)^2) long: for each query cell of a tile, the flat positions of its own
    window inside the tile's ``(tile+2r)^2`` surrounding window."""
    win = tile + 2 * radius
    rows = torch.arange(tile)[:, None] + torch.arange(2 * radius + 1)[None, :]  # (tile, 2r+1)
    flat = rows[:, None, :, None] * win + rows[None, :, None, :]  # (ty, tx, dy, dx)
    return flat.reshape(tile * tile, -1)


def _pad_to_tiles(x: torch.Tensor, tile: int, radius: int, fill: float = 0.0) -> torch.Tensor:
    """(C, h, w) -> (C, th*tile + 2r, tw*tile + 2r): padded so that every tile has a full window."""
    _, h, w = x.shape
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    pad = (radius, tw * tile - w + radius, radius, th * tile - h + radius)
    return F.pad(x[None], pad, value=fill)[0].contiguous()


def _windows(padded: torch.Tensor, tile: int, radius: int, active: torch.Tensor) -> torch.Tensor:
    """Cut the surrounding windows of the ``active`` tiles out of a padded map (one copy).

    padded: (C, th*T + 2r, tw*T + 2r); active: (nA,) flat tile indices -> (nA, C, (T+2r)^2).
    """
    c, hp, wp = padded.shape
    win = tile + 2 * radius
    th, tw = (hp - 2 * radius) // tile, (wp - 2 * radius) // tile
    cs, rs, es = padded.stride()
    view = padded.as_strided((th, tw, c, win, win), (tile * rs, tile * es, cs, rs, es))
    return view[active // tw, active % tw].reshape(len(active), c, win * win)


@dataclass(frozen=True)
class Reference:
    """A memory frame: padded maps from which each query frame cuts its tiles' windows.

    keys: (C, Hp, Wp) features; bias: (1, Hp, Wp) = -|f|^2/2, -inf outside the frame; values:
    (K, Hp, Wp) labels; lo/hi: (nT, K) label range inside each tile's window. Storing padded
    maps (not the overlapping windows) keeps memory at one feature map per reference.
    """

    keys: torch.Tensor
    bias: torch.Tensor
    values: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    radius: int
    tile: int


def make_reference(feats: torch.Tensor, labels: torch.Tensor, radius: int, tile: int) -> Reference:
    """Prepare a reference frame: feats (C, h, w), labels (K, h, w) on the same grid."""
    inside = _tiles(torch.ones(1, *feats.shape[1:]), tile, radius) > 0  # (nT, 1, W)
    vals = _tiles(labels, tile, radius)  # (nT, K, W)
    hi = vals.masked_fill(~inside, -1e9).amax(dim=2)
    lo = vals.masked_fill(~inside, 1e9).amin(dim=2)
    keys = _pad_to_tiles(feats, tile, radius)
    bias = -0.5 * (feats * feats).sum(dim=0, keepdim=True)
    bias = _pad_to_tiles(bias, tile, radius, fill=float("-inf"))
    return Reference(keys, bias, _pad_to_tiles(labels, tile, radius), lo, hi, radius, tile)


def local_affinity_copy(
    query: torch.Tensor, refs: Sequence[Reference], topk: int, temperature: float, eps: float = 1e-3
) -> torch.Tensor:
    """Copy reference labels to the query grid through a top-k local-window affinity.

    query: (C, h, w) features on the references' grid. Returns labels (K, h, w). Tiles whose
    candidate labels are all equal (within ``eps``) take that label directly: a convex combination
    of identical vectors is the vector itself.
    """
    _, h, w = query.shape
    tile = refs[0].tile
    th, tw = math.ceil(h / tile), math.ceil(w / tile)
    n_lab = refs[0].values.shape[0]
    lo = torch.stack([r.lo for r in refs]).amin(dim=0)  # (nT, K)
    hi = torch.stack([r.hi for r in refs]).amax(dim=0)
    active = torch.nonzero((hi - lo).amax(dim=1) > eps).flatten()
    out = lo[:, None, :].expand(-1, tile * tile, -1).clone()  # (nT, T*T, K)
    if len(active):
        q = _tiles(query, tile, 0)[active].transpose(1, 2).contiguous()  # (nA, T*T, C)
        n_a, tt = q.shape[:2]
        cand_s, cand_i, offset = [], [], 0
        for ref in refs:
            keys = _windows(ref.keys, tile, ref.radius, active)  # (nA, C, W)
            bias = _windows(ref.bias, tile, ref.radius, active)  # (nA, 1, W)
            s = torch.baddbmm(bias, q, keys)  # (nA, T*T, W)
            win = _window_index(tile, ref.radius)[None].expand(n_a, -1, -1)
            ws = torch.gather(s, 2, win)  # (nA, T*T, (2r+1)^2)
            top, pos = ws.topk(min(topk, ws.shape[2]), dim=2, sorted=False)
            cand_s.append(top)
            cand_i.append(torch.gather(win, 2, pos) + offset)
            offset += keys.shape[2]
        s_all, i_all = torch.cat(cand_s, dim=2), torch.cat(cand_i, dim=2)
        kk = min(topk, s_all.shape[2])
        top, pos = s_all.topk(kk, dim=2, sorted=False)
        idx = torch.gather(i_all, 2, pos)  # (nA, T*T, k) into the concatenated windows
        wts = torch.softmax(top / temperature, dim=2)
        v_all = torch.cat(
            [_windows(r.values, tile, r.radius, active).transpose(1, 2) for r in refs], dim=1
        )  # (nA, sum W, K)
        picked = torch.gather(v_all, 1, idx.reshape(n_a, tt * kk, 1).expand(-1, -1, n_lab))
        out[active] = (picked.view(n_a, tt, kk, n_lab) * wts[..., None]).sum(dim=2)
    grid = out.view(th, tw, tile, tile, n_lab).permute(4, 0, 2, 1, 3)
    return grid.reshape(n_lab, th * tile, tw * tile)[:, :h, :w].contiguous()


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
) -> FrameLabels:
    """(layout.num_channels, h, w) soft labels -> FrameLabels at full resolution."""
    m = layout.num_mask_channels
    mask = soft_to_mask(soft[:m], layout.mask_ids, frame_hw, stride, frame, refine_radius)
    kps: dict[int, np.ndarray] = {}
    start = m
    for obj, count in layout.keypoints:
        kps[obj] = heatmaps_to_keypoints(soft[start : start + count], stride, threshold, sigma)
        start += count
    return FrameLabels(mask=mask, keypoints=kps)


def _nearest_keyframes(references: Mapping[int, FrameLabels], start: int, n: int) -> list[int]:
    return sorted(sorted(references, key=lambda k: (abs(k - start), k))[:n])


def propagate(
    frames: Callable[[int], np.ndarray],
    start: int,
    stop: int,
    references: Mapping[int, FrameLabels],
    num_keypoints: Mapping[int, int],
    encoder: Encoder,
    config: PropagationConfig | None = None,
) -> Iterator[PropagatedFrame]:
    """Propagate labels from frame ``start`` towards ``stop`` (exclusive), one frame at a time.

    ``references`` holds the user's keyframes (long-term memory) and must include ``start``.
    Yields a PropagatedFrame for ``start±1 ... stop∓1`` in order; close the generator to cancel.

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
    s, sigma = encoder.stride, cfg.keypoint_sigma

    def labels_of(idx: int) -> torch.Tensor:
        return encode_labels(references[idx], layout, frame_hw, s, sigma)

    first_feats = encoder.encode(first)
    tile = cfg.tile or (4 if first_feats.shape[0] <= 16 else 8)

    def reference(feats: torch.Tensor, labels: torch.Tensor, radius: int) -> Reference:
        return make_reference(feats, labels, radius, tile)

    def decoded(idx: int) -> np.ndarray | None:
        """Frame ``idx``, or None when it is damaged and damaged frames are skipped."""
        try:
            return frames(idx)
        except FrameDamaged:
            if not cfg.skip_damaged:
                raise
            return None

    long_term: list[Reference] = []
    for k in _nearest_keyframes(references, start, cfg.n_keyframes):
        pixels = first if k == start else decoded(k)
        if pixels is not None:
            feats = first_feats if k == start else encoder.encode(pixels)
            long_term.append(reference(feats, labels_of(k), cfg.keyframe_radius))
    recent: deque[Reference] = deque(maxlen=cfg.n_recent)
    start_labels = labels_of(start)
    start_area = start_labels[1 : layout.num_mask_channels].flatten(1).sum(dim=1)
    recent.append(reference(first_feats, start_labels, cfg.radius))
    for idx in range(start + step, stop, step):
        frame = decoded(idx)
        if frame is None:
            continue
        if frame.shape[:2] != frame_hw:
            raise ValueError(f"frame {idx} is {frame.shape[:2]}, expected {frame_hw}")
        t0 = time.perf_counter()
        feats = encoder.encode(frame)
        soft = local_affinity_copy(feats, [*long_term, *recent], cfg.topk, cfg.temperature)
        labels = decode_labels(
            soft,
            layout,
            frame_hw,
            s,
            cfg.keypoint_visible_threshold,
            sigma,
            frame,
            cfg.refine_radius,
        )
        # Feed back the raw soft labels (feeding back the guided-filter refined masks compounds
        # errors: 52.4 vs 62.9 dev J&F); visible keypoints are re-rendered sharp at their decoded
        # position (against blur drift), weak ones keep their soft heat so they can recover.
        feedback = soft.clone()
        m = layout.num_mask_channels
        if layout.keypoints:
            sharp = encode_keypoints(labels, layout, s, tuple(soft.shape[1:]), sigma)
            seen = sharp.flatten(1).amax(dim=1) > 0
            feedback[m:][seen] = sharp[seen]
        recent.append(reference(feats, feedback, cfg.radius))
        scores = object_confidences(soft[: layout.num_mask_channels], start_area).tolist()
        per_object = {
            **dict(zip(layout.mask_ids, scores)),
            **{o: math.nan for o, _ in layout.keypoints},
        }
        conf = min(scores) if scores else 1.0
        yield PropagatedFrame(idx, labels, conf, time.perf_counter() - t0, soft, per_object)
