"""Smart selection without downloaded weights: box -> mask, refined by positive/negative clicks.

The method is GrabCut's (Rother et al. 2004: colour models + graph cut, iterated) with three
changes that the benchmark (``benchmarks/smart_selection.py``) showed to matter:

* it works on a **crop** around the box, rescaled so the box covers about
  ``SelectionConfig.work_pixels`` pixels (fast on big objects, finer on small ones), then the
  result is upsampled and snapped to the full-resolution edges with a guided filter;
* the per-pixel signal is CIE Lab colour, optionally concatenated with the bundled encoder's
  features (stride 8, PCA-reduced), modelled by full-covariance Gaussian mixtures;
* clicks are hard seeds **and** evidence: a click's neighbourhood joins that side's colour model
  and biases nearby pixels towards its label (a Gaussian of the box size).

Everything is pure numpy / OpenCV / scipy. Coordinates are ``(x, y)`` image pixels; masks are
``(H, W) bool``. The max-flow is PyMaxflow's (Boykov-Kolmogorov).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from tracker_core.propagate import guided_filter

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 (x1, y1 exclusive)
FeatureFn = Callable[[np.ndarray], np.ndarray]  # (h, w, 3) uint8 RGB -> (h, w, D) float32
GridFn = Callable[[np.ndarray], np.ndarray]  # (h, w, 3) uint8 RGB -> (D, h / s, w / s) unit rows


@dataclass(frozen=True)
class Click:
    """A refinement click at image pixel ``(x, y)``: positive adds, negative removes."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True)
class SelectionConfig:
    """How a box / clicks become a mask. Pixel sizes are in full-resolution image pixels."""

    work_pixels: int = 150 * 150  # the box is rescaled to cover about this many pixels
    max_upscale: float = 2.0
    margin: float = 0.08  # crop margin around the box (fraction of the box side) ...
    min_margin: int = 6  # ... and at least this many pixels
    ring: float = 0.4  # background colour samples: a ring this wide (fraction) around the box
    components: int = 5  # Gaussians per colour model
    iterations: int = 4  # GrabCut iterations from a box
    click_iterations: int = 2  # iterations after a click (warm-started from the last result)
    gamma: float = 50.0  # pairwise (edge) weight
    click_radius: float = 5.0  # hard-seed disk of a click
    click_sample_radius: float = 12.0  # its neighbourhood that joins the colour model ...
    click_sample_weight: float = 4.0  # ... counted this many times
    click_prior: float = 3.0  # unary bias (nats) at a click, decaying ...
    click_prior_sigma: float = 0.12  # ... as a Gaussian of this fraction of the box diagonal
    refine_radius: int = 2  # guided-filter radius at full resolution (0 = off)
    feature_weight: float = 0.0  # weight of the encoder-feature unary (0 = colour only)
    feature_scale: float = 2.0  # the encoder sees the working image enlarged this much
    feature_k: int = 8  # nearest cells per side for the feature unary
    feature_tau: float = 0.05
    tight: bool = True  # the box is tight: every row and column inside it crosses the object
    tight_inset: float = 0.0  # ... except this fraction of the box size at each side
    tight_rounds: int = 6  # pinpointing rounds enforcing that (Lempitsky et al. 2009)
    stick: float = 0.0  # after a click, cost (nats) of changing a pixel away from the last
    # result, fading out near the clicks
    geodesic: float = 0.0  # > 0: a click's influence follows colour-homogeneous paths, fading
    # with geodesic distance (in units of this many mean colour steps)
    seed_geodesic: float = 0.0  # > 0: a click's hard seed grows to the pixels within this
    # geodesic distance (and click_seed_max of the box diagonal)
    seed_max: float = 0.1
    init_prior: float = 0.0  # > 0: the first cut uses P(fg | box) from box vs ring densities,
    # assuming this foreground fraction of the box (0 = GrabCut's start: the whole box)
    init_drop: float = 0.0  # first FG model: leave out this fraction of the box pixels that the
    # background model explains best

    def __post_init__(self) -> None:
        if self.work_pixels < 64 or self.components < 1 or self.iterations < 1:
            raise ValueError("work_pixels >= 64, components >= 1 and iterations >= 1 required")


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class Window:
    """The crop ``[y0:y1, x0:x1]`` of the image and its working scale (work px per image px)."""

    x0: int
    y0: int
    x1: int
    y1: int
    scale: float

    @property
    def work_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the rescaled crop."""
        return (
            max(2, round((self.y1 - self.y0) * self.scale)),
            max(2, round((self.x1 - self.x0) * self.scale)),
        )

    def to_work(self, x: float, y: float) -> tuple[float, float]:
        h, w = self.work_shape
        sx, sy = w / (self.x1 - self.x0), h / (self.y1 - self.y0)
        return (x + 0.5 - self.x0) * sx - 0.5, (y + 0.5 - self.y0) * sy - 0.5


def clip_box(box: Box, hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer box inside the image, at least 2 px each way; ValueError when degenerate."""
    h, w = hw
    x0, y0, x1, y1 = box
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    ix0, iy0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    ix1, iy1 = min(w, math.ceil(x1)), min(h, math.ceil(y1))
    if ix1 - ix0 < 2 or iy1 - iy0 < 2:
        raise ValueError(f"box {box} is smaller than 2x2 pixels inside the {w}x{h} image")
    return ix0, iy0, ix1, iy1


def box_region(box: tuple[int, int, int, int], win: Window) -> np.ndarray:
    """``(h, w) bool`` working-resolution pixels whose centre lies inside ``box``."""
    h, w = win.work_shape
    sx, sy = w / (win.x1 - win.x0), h / (win.y1 - win.y0)
    cols = (np.arange(w) + 0.5) / sx + win.x0
    rows = (np.arange(h) + 0.5) / sy + win.y0
    in_x = (cols >= box[0]) & (cols <= box[2])
    in_y = (rows >= box[1]) & (rows <= box[3])
    return in_y[:, None] & in_x[None, :]


def crop_window(box: tuple[int, int, int, int], hw: tuple[int, int], cfg: SelectionConfig) -> Window:
    """The crop around ``box`` (with margin) and the scale that gives about ``work_pixels``."""
    h, w = hw
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    mx = max(cfg.min_margin, round(cfg.margin * bw))
    my = max(cfg.min_margin, round(cfg.margin * bh))
    scale = min(cfg.max_upscale, math.sqrt(cfg.work_pixels / (bw * bh)))
    return Window(max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my), scale)


# --------------------------------------------------------------------------- colour models


@dataclass(frozen=True)
class Gmm:
    """A Gaussian mixture: ``weights (K,)``, ``means (K, D)``, ``inv_chol (K, D, D)`` (inverse
    Cholesky factors of the covariances) and ``log_norm (K,)`` (log weight - log det term)."""

    weights: np.ndarray
    means: np.ndarray
    inv_chol: np.ndarray
    log_norm: np.ndarray


def fit_gmm(
    samples: np.ndarray,
    k: int,
    sample_weights: np.ndarray | None = None,
    init: Gmm | None = None,
    rng_seed: int = 0,
) -> Gmm:
    """Fit ``k`` full-covariance Gaussians to ``(N, D)`` samples: hard assignment by k-means (or
    by the most likely component of ``init``, as GrabCut does), then per-component moments."""
    samples = np.ascontiguousarray(samples, np.float32)
    n, d = samples.shape
    wts = np.ones(n, np.float32) if sample_weights is None else sample_weights.astype(np.float32)
    k = max(1, min(k, n // max(4, d + 1)))
    if init is not None and init.means.shape[0] == k:
        assign = component_loglik(init, samples).argmax(axis=1)
    elif k == 1:
        assign = np.zeros(n, np.int64)
    else:
        criteria = (cv2.TERM_CRITERIA_MAX_ITER + cv2.TERM_CRITERIA_EPS, 10, 1e-3)
        cv2.setRNGSeed(rng_seed)
        _, labels, _ = cv2.kmeans(samples, k, None, criteria, 1, cv2.KMEANS_PP_CENTERS)
        assign = labels.ravel()
    means, chols, weights = [], [], []
    ridge = 1e-2 * np.eye(d, dtype=np.float64)
    total = float(wts.sum())
    for c in range(k):
        sel = assign == c
        wc = wts[sel].astype(np.float64)
        if wc.sum() <= 0:
            continue
        x = samples[sel].astype(np.float64)
        mean = (wc[:, None] * x).sum(0) / wc.sum()
        dx = x - mean
        cov = (wc[:, None] * dx).T @ dx / wc.sum() + ridge
        means.append(mean)
        chols.append(np.linalg.inv(np.linalg.cholesky(cov)))
        weights.append(wc.sum() / total)
    inv_chol = np.stack(chols)
    weights_arr = np.array(weights)
    log_det = np.log(np.abs(np.diagonal(inv_chol, axis1=1, axis2=2))).sum(1)
    log_norm = np.log(weights_arr) + log_det - 0.5 * d * math.log(2 * math.pi)
    return Gmm(weights_arr, np.stack(means), inv_chol, log_norm)


def component_loglik(gmm: Gmm, x: np.ndarray) -> np.ndarray:
    """``(N, D)`` -> ``(N, K)`` log(weight_k * N(x | mean_k, cov_k))."""
    out = np.empty((x.shape[0], gmm.means.shape[0]), np.float32)
    for c in range(gmm.means.shape[0]):
        z = (x - gmm.means[c].astype(np.float32)) @ gmm.inv_chol[c].T.astype(np.float32)
        out[:, c] = gmm.log_norm[c] - 0.5 * np.einsum("nd,nd->n", z, z)
    return out


def gmm_loglik(gmm: Gmm, x: np.ndarray) -> np.ndarray:
    """``(N, D)`` -> ``(N,)`` log-likelihood under the mixture."""
    comp = component_loglik(gmm, x)
    top = comp.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(comp - top).sum(axis=1, keepdims=True)))[:, 0]


# --------------------------------------------------------------------------- graph cut


_NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))  # (dy, dx): right, down and both diagonals


def edge_weights(z: np.ndarray, gamma: float) -> np.ndarray:
    """8-neighbour contrast weights of a ``(h, w, D)`` image, GrabCut's
    ``gamma / dist * exp(-beta |z_p - z_q|^2)`` with ``beta = 1 / (2 mean |z_p - z_q|^2)``.

    Returns ``(4, h, w) float32``: plane ``k`` holds the weight between pixel ``(y, x)`` and its
    neighbour ``(y + dy, x + dx)`` for ``(dy, dx) = _NEIGHBOURS[k]`` (0 where there is none)."""
    h, w, _ = z.shape
    d2 = np.zeros((4, h, w), np.float32)
    valid = np.zeros((4, h, w), bool)
    for k, (dy, dx) in enumerate(_NEIGHBOURS):
        ys = slice(0, h - dy)
        xs = slice(max(0, -dx), w - max(0, dx))
        yt = slice(dy, h)
        xt = slice(max(0, dx), w - max(0, -dx) if dx < 0 else w)
        d2[k, ys, xs] = ((z[ys, xs] - z[yt, xt]) ** 2).sum(-1)
        valid[k, ys, xs] = True
    mean = float(d2[valid].mean()) if valid.any() else 0.0
    beta = 1.0 / (2.0 * mean) if mean > 0 else 0.0
    dist = np.array([1.0, 1.0, math.sqrt(2), math.sqrt(2)], np.float32)[:, None, None]
    return np.where(valid, gamma / dist * np.exp(-beta * d2), 0.0).astype(np.float32)


def graph_cut(
    cost_fg: np.ndarray,
    cost_bg: np.ndarray,
    edges: np.ndarray,
    hard_fg: np.ndarray,
    hard_bg: np.ndarray,
) -> np.ndarray:
    """Minimum of ``sum_p cost_{label p} + sum_{cut neighbour pairs} weight`` (Boykov-Kolmogorov
    max-flow, PyMaxflow).

    ``cost_fg/cost_bg (h, w)``: unary costs of labelling a pixel foreground/background;
    ``edges``: :func:`edge_weights` planes; ``hard_fg/hard_bg (h, w) bool``: pixels fixed to that
    label (hard_bg wins where both are set). Returns ``(h, w) bool`` (True = foreground)."""
    import maxflow

    h, w = cost_fg.shape
    big = float(edges.sum(0).max()) * 2 + float(np.abs(cost_fg).max() + np.abs(cost_bg).max()) + 1
    low = np.minimum(cost_fg, cost_bg)
    to_source = (cost_bg - low).astype(np.float64)  # paid when the pixel ends up background
    to_sink = (cost_fg - low).astype(np.float64)  # paid when it ends up foreground
    to_source[hard_fg] = big
    to_sink[hard_fg] = 0
    to_source[hard_bg] = 0
    to_sink[hard_bg] = big
    graph = maxflow.Graph[float](h * w, 4 * h * w)
    nodes = graph.add_grid_nodes((h, w))
    for k, (dy, dx) in enumerate(_NEIGHBOURS):
        structure = np.zeros((3, 3))
        structure[1 + dy, 1 + dx] = 1
        graph.add_grid_edges(nodes, weights=edges[k], structure=structure, symmetric=True)
    graph.add_grid_tedges(nodes, to_source, to_sink)
    graph.maxflow()
    return ~graph.get_grid_segments(nodes)


# --------------------------------------------------------------------------- segmentation


def disk(shape: tuple[int, int], x: float, y: float, radius: float) -> np.ndarray:
    """``(h, w) bool`` pixels within ``radius`` of ``(x, y)`` (at least the nearest pixel)."""
    h, w = shape
    ys, xs = np.ogrid[:h, :w]
    out = (xs - x) ** 2 + (ys - y) ** 2 <= max(radius, 0.75) ** 2
    if not out.any():
        out[int(np.clip(round(y), 0, h - 1)), int(np.clip(round(x), 0, w - 1))] = True
    return out


def lab_features(rgb: np.ndarray) -> np.ndarray:
    """``(h, w, 3) uint8`` RGB -> ``(h, w, 3) float32`` CIE Lab (L 0..100)."""
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def encoder_features(encoder: object, dims: int = 6, spread: float = 15.0) -> FeatureFn:
    """Lab colour plus the encoder's features: ``encoder.encode`` (stride-8 grid) reduced by PCA
    to ``dims`` components scaled to standard deviation ``spread`` (comparable to Lab's),
    upsampled bilinearly to pixels. ``(h, w, 3) uint8 -> (h, w, 3 + dims) float32``."""

    def features(rgb: np.ndarray) -> np.ndarray:
        grid = encoder.encode(rgb).numpy()  # type: ignore[attr-defined]
        d, gh, gw = grid.shape
        x = grid.reshape(d, -1).T.astype(np.float64)
        x -= x.mean(0)
        _, sv, vt = np.linalg.svd(x, full_matrices=False)
        k = min(dims, vt.shape[0])
        proj = (x @ vt[:k].T) / (sv[:k] / math.sqrt(max(1, len(x) - 1)) + 1e-6) * spread
        maps = proj.T.reshape(k, gh, gw).astype(np.float32)
        h, w = rgb.shape[:2]
        stride = getattr(encoder, "stride", 8)
        up = [
            cv2.resize(m, (gw * stride, gh * stride), interpolation=cv2.INTER_LINEAR)[:h, :w]
            for m in maps
        ]
        return np.concatenate([lab_features(rgb), np.stack(up, -1)], -1)

    return features


class SmartSelector:
    """One box selection on one image, refined by clicks; keeps what later clicks reuse (the
    features, the graph's edges, the colour models and the last cut).

    ``image`` ``(H, W, 3) uint8 RGB``; ``box`` ``(x0, y0, x1, y1)`` pixels (exclusive ends);
    ``features`` turns a rescaled crop into per-pixel vectors (default Lab colour).
    """

    def __init__(
        self,
        image: np.ndarray,
        box: Box,
        cfg: SelectionConfig | None = None,
        features: FeatureFn = lab_features,
        grid_features: GridFn | None = None,
    ) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape}")
        self.cfg = cfg = cfg or SelectionConfig()
        self.image = image
        hw = image.shape[:2]
        self.box = ibox = clip_box(box, hw)
        crop = crop_window(ibox, hw, cfg)
        # The outer window holds the crop and the ring of background samples around it.
        x0, y0, x1, y1 = ibox
        ry = round(cfg.ring * (y1 - y0)) + 1
        rx = round(cfg.ring * (x1 - x0)) + 1
        self.outer = outer = Window(
            min(crop.x0, max(0, x0 - rx)),
            min(crop.y0, max(0, y0 - ry)),
            max(crop.x1, min(hw[1], x1 + rx)),
            max(crop.y1, min(hw[0], y1 + ry)),
            crop.scale,
        )
        oh, ow = outer.work_shape
        small = cv2.resize(
            image[outer.y0 : outer.y1, outer.x0 : outer.x1], (ow, oh), interpolation=cv2.INTER_AREA
        )
        z_all = features(small).astype(np.float32)
        in_crop = box_region((crop.x0, crop.y0, crop.x1, crop.y1), outer)
        rows, cols = np.flatnonzero(in_crop.any(1)), np.flatnonzero(in_crop.any(0))
        self._rows = slice(int(rows[0]), int(rows[-1]) + 1)
        self._cols = slice(int(cols[0]), int(cols[-1]) + 1)
        self._z = np.ascontiguousarray(z_all[self._rows, self._cols])
        h, w = self._z.shape[:2]
        self._flat = self._z.reshape(h * w, -1)
        self._inside = box_region(ibox, outer)[self._rows, self._cols]
        ring = z_all[~in_crop]
        self._ring = ring[:: max(1, len(ring) // 20000)]
        self._edges = edge_weights(self._z, cfg.gamma)
        self._grid: np.ndarray | None = None
        self._step_cost: np.ndarray | None = None
        if grid_features is not None and cfg.feature_weight > 0:
            big = cv2.resize(small, None, fx=cfg.feature_scale, fy=cfg.feature_scale)
            g = grid_features(big)
            self._grid = g.reshape(g.shape[0], -1).T.astype(np.float32)  # (cells, D)
            self._grid_hw = g.shape[1:]
            self._sim = self._grid @ self._grid.T
        self._fg: Gmm | None = None
        self._bg: Gmm | None = None
        self._mask: np.ndarray | None = None
        self._done = 0

    @property
    def work_shape(self) -> tuple[int, int]:
        return self._z.shape[:2]

    def _to_work(self, x: float, y: float) -> tuple[float, float]:
        ox, oy = self.outer.to_work(x, y)
        return ox - self._cols.start, oy - self._rows.start

    def update(self, clicks: Sequence[Click] = ()) -> np.ndarray:
        """The mask for the box and ``clicks`` (all clicks so far, in order): ``(H, W) bool``.
        The first call runs ``iterations`` GrabCut iterations; later calls start from the last
        result and run ``click_iterations``."""
        cfg = self.cfg
        h, w = self.work_shape
        flat, inside = self._flat, self._inside
        hard_fg = np.zeros((h, w), bool)
        hard_bg = ~inside
        prior = np.zeros((h, w), np.float32)  # > 0 favours foreground
        near_click = np.zeros((h, w), np.float32)
        pos: list[np.ndarray] = []
        neg: list[np.ndarray] = []
        diag = math.hypot(w, h)
        ys, xs = np.mgrid[:h, :w].astype(np.float32)
        px = self.outer.scale
        for click in clicks:
            cx, cy = self._to_work(click.x, click.y)
            seed = disk((h, w), cx, cy, cfg.click_radius * px)
            geo = None
            if cfg.seed_geodesic > 0 or cfg.geodesic > 0:
                geo = self._geodesic(cx, cy)
            if cfg.seed_geodesic > 0:
                seed |= (geo < cfg.seed_geodesic) & disk((h, w), cx, cy, cfg.seed_max * diag)
            near = disk((h, w), cx, cy, cfg.click_sample_radius * px).ravel()
            sigma = cfg.click_prior_sigma * diag
            bump = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
            if geo is not None and cfg.geodesic > 0:
                bump *= np.exp(-geo / cfg.geodesic)
            near_click = np.maximum(near_click, bump)
            if click.positive:
                hard_fg |= seed
                hard_bg &= ~seed
                pos.append(flat[near])
                prior += cfg.click_prior * bump
            else:
                hard_bg |= seed
                hard_fg &= ~seed
                neg.append(flat[near])
                prior -= cfg.click_prior * bump
        if self._mask is None:
            mask, iterations = inside.copy(), cfg.iterations
            if cfg.init_prior > 0:
                mask = self._first_cut(hard_fg, hard_bg, prior)
        else:
            mask, iterations = self._mask, cfg.click_iterations
        for it in range(iterations):
            fg_sel = (mask & ~hard_bg).ravel()
            if it == 0 and self._mask is None and cfg.init_drop > 0:
                bg0 = fit_gmm(np.concatenate([flat[~inside.ravel()], self._ring]), cfg.components)
                like = gmm_loglik(bg0, flat)
                cut = np.quantile(like[fg_sel], 1.0 - cfg.init_drop)
                fg_sel &= like < cut
            fg_x, fg_w = _with_extra(flat[fg_sel], pos, cfg)
            bg_x, bg_w = _with_extra(
                np.concatenate([flat[~mask.ravel()], self._ring]), neg, cfg
            )
            if len(fg_x) < 8:
                fg_x, fg_w = flat[inside.ravel()], None
            self._fg = fit_gmm(fg_x, cfg.components, fg_w, self._fg)
            self._bg = fit_gmm(bg_x, cfg.components, bg_w, self._bg)
            cost_fg = -gmm_loglik(self._fg, flat).reshape(h, w) - np.maximum(prior, 0)
            cost_bg = -gmm_loglik(self._bg, flat).reshape(h, w) - np.maximum(-prior, 0)
            if self._mask is not None and cfg.stick > 0:
                keep = cfg.stick * (1 - near_click)
                cost_fg += keep * ~self._mask
                cost_bg += keep * self._mask
            if self._grid is not None:
                p = self._feature_prob(mask)
                cost_fg -= cfg.feature_weight * np.log(p + 1e-4)
                cost_bg -= cfg.feature_weight * np.log(1 - p + 1e-4)
            new = graph_cut(cost_fg, cost_bg, self._edges, hard_fg, hard_bg)
            if cfg.tight:
                new = self._pinpoint(new, cost_fg, cost_bg, hard_fg, hard_bg)
            if np.array_equal(new, mask):
                break
            mask = new
        self._mask = mask
        return self._to_full(mask)

    def _geodesic(self, x: float, y: float) -> np.ndarray:
        """``(h, w)`` geodesic distance from working pixel ``(x, y)``: path length where each
        step costs 1 / 20 plus the colour difference in units of the mean neighbour difference."""
        from skimage.graph import MCP_Geometric

        if self._step_cost is None:
            gy, gx = np.gradient(self._z, axis=(0, 1))
            grad = np.sqrt((gx**2 + gy**2).sum(-1))
            self._step_cost = 0.05 + grad / (grad.mean() + 1e-6)
        h, w = self.work_shape
        start = (int(np.clip(round(y), 0, h - 1)), int(np.clip(round(x), 0, w - 1)))
        dist, _ = MCP_Geometric(self._step_cost).find_costs([start])
        return dist.astype(np.float32)

    def _first_cut(
        self, hard_fg: np.ndarray, hard_bg: np.ndarray, prior: np.ndarray
    ) -> np.ndarray:
        """The first mask: box pixels are a mixture ``pi p_fg + (1 - pi) p_bg`` of foreground and
        the background seen around the box, so ``P(fg | x) = 1 - (1 - pi) p_bg(x) / p_box(x)``."""
        cfg = self.cfg
        h, w = self.work_shape
        flat, inside = self._flat, self._inside
        bg = fit_gmm(np.concatenate([flat[~inside.ravel()], self._ring]), cfg.components)
        box = fit_gmm(flat[inside.ravel()], cfg.components)
        ratio = np.exp(np.clip(gmm_loglik(bg, flat) - gmm_loglik(box, flat), -30, 30))
        p = np.clip(1.0 - (1.0 - cfg.init_prior) * ratio, 0.02, 0.98).reshape(h, w)
        cost_fg = -np.log(p) - np.maximum(prior, 0)
        cost_bg = -np.log(1 - p) - np.maximum(-prior, 0)
        mask = graph_cut(cost_fg, cost_bg, self._edges, hard_fg, hard_bg)
        if cfg.tight:
            mask = self._pinpoint(mask, cost_fg, cost_bg, hard_fg, hard_bg)
        return mask

    def _pinpoint(
        self,
        mask: np.ndarray,
        cost_fg: np.ndarray,
        cost_bg: np.ndarray,
        hard_fg: np.ndarray,
        hard_bg: np.ndarray,
    ) -> np.ndarray:
        """Tight-box prior by pinpointing: while a row or column of the box (inset by
        ``tight_inset``) holds no foreground, fix its most foreground-like pixel to foreground
        and cut again (at most ``tight_rounds`` rounds)."""
        cfg = self.cfg
        inside = self._inside
        rows = np.flatnonzero(inside.any(1))
        cols = np.flatnonzero(inside.any(0))
        if len(rows) < 3 or len(cols) < 3:
            return mask
        iy = int(cfg.tight_inset * len(rows))
        ix = int(cfg.tight_inset * len(cols))
        rows, cols = rows[iy : len(rows) - iy], cols[ix : len(cols) - ix]
        score = np.where(inside & ~hard_bg, cost_bg - cost_fg, -np.inf)
        seeds = hard_fg.copy()
        for _ in range(cfg.tight_rounds):
            empty_r = rows[~mask[rows].any(1)]
            empty_c = cols[~mask[:, cols].any(0)]
            if len(empty_r) == 0 and len(empty_c) == 0:
                break
            for r in empty_r:
                c = int(np.argmax(score[r]))
                if np.isfinite(score[r, c]):
                    seeds[r, c] = True
            for c in empty_c:
                r = int(np.argmax(score[:, c]))
                if np.isfinite(score[r, c]):
                    seeds[r, c] = True
            mask = graph_cut(cost_fg, cost_bg, self._edges, seeds, hard_bg)
        return mask

    def _feature_prob(self, mask: np.ndarray) -> np.ndarray:
        """P(foreground) per working pixel from the encoder grid: each cell compares its
        ``feature_k`` most similar foreground cells with its most similar background cells
        (cells labelled by the current mask). ``(h, w) float32``."""
        cfg = self.cfg
        outer = np.zeros(self.outer.work_shape, np.float32)
        outer[self._rows, self._cols] = mask
        gh, gw = self._grid_hw
        frac = cv2.resize(outer, (gw, gh), interpolation=cv2.INTER_AREA).ravel()
        fg = frac > 0.5
        k = cfg.feature_k
        if fg.sum() < k or (~fg).sum() < k:
            return np.full(mask.shape, 0.5, np.float32)
        sim = self._sim
        top_fg = -np.partition(-sim[:, fg], k - 1, axis=1)[:, :k].mean(1)
        top_bg = -np.partition(-sim[:, ~fg], k - 1, axis=1)[:, :k].mean(1)
        p = 1.0 / (1.0 + np.exp(-(top_fg - top_bg) / cfg.feature_tau))
        oh, ow = self.outer.work_shape
        up = cv2.resize(p.reshape(gh, gw).astype(np.float32), (ow, oh), interpolation=cv2.INTER_LINEAR)
        return up[self._rows, self._cols]

    def _to_full(self, mask: np.ndarray) -> np.ndarray:
        """Working-resolution mask -> ``(H, W) bool``, upsampled and snapped to image edges."""
        outer, cfg = self.outer, self.cfg
        full = np.zeros(outer.work_shape, np.float32)
        full[self._rows, self._cols] = mask
        ch, cw = outer.y1 - outer.y0, outer.x1 - outer.x0
        soft = cv2.resize(full, (cw, ch), interpolation=cv2.INTER_LINEAR)
        if cfg.refine_radius > 0:
            crop = self.image[outer.y0 : outer.y1, outer.x0 : outer.x1]
            grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            soft = guided_filter(grey, soft[None], cfg.refine_radius, 1e-3)[0]
        out = np.zeros(self.image.shape[:2], bool)
        out[outer.y0 : outer.y1, outer.x0 : outer.x1] = soft > 0.5
        x0, y0, x1, y1 = self.box
        inside = np.zeros_like(out)
        inside[y0:y1, x0:x1] = True
        return out & inside


def _with_extra(
    base: np.ndarray, extra: list[np.ndarray], cfg: SelectionConfig
) -> tuple[np.ndarray, np.ndarray | None]:
    """``base`` samples plus click neighbourhoods weighted ``click_sample_weight``."""
    if not extra:
        return base, None
    more = np.concatenate(extra)
    x = np.concatenate([base, more])
    wts = np.concatenate(
        [np.ones(len(base), np.float32), np.full(len(more), cfg.click_sample_weight, np.float32)]
    )
    return x, wts
