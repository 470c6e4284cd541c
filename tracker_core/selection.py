"""Smart selection without downloaded weights: box -> mask, refined by positive/negative clicks.

GrabCut (Rother et al. 2004: Gaussian-mixture colour models + graph cut, iterated), changed where
``benchmarks/smart_selection.py`` measured a gain on the dev frame-0 masks (RESULTS.md lists
every setting tried, including the ones that lost):

* it works on a **crop** around the box rescaled so the box covers about
  ``SelectionConfig.work_pixels`` pixels (fast on big objects, finer on small ones); the
  iterations run at half that resolution and a final banded cut (Lombaert et al. 2005) decides
  the boundary at the working resolution; the result is upsampled and snapped to
  full-resolution edges with a guided filter;
* a weaker edge term (``gamma`` 10; GrabCut's 50 removes thin parts at this scale), background
  colours also sampled from a ring around the box, the first foreground model leaves out
  the box pixels the background model explains best (``init_drop``), and every pixel pays a
  small cost for being foreground (``fg_bias``: a box around a thin or spread-out object is
  mostly background, which the colour models alone over-segment);
* a click is a hard seed that never flips again, its neighbourhood joins that side's colour
  model and it biases nearby pixels (a Gaussian of the box size). Clicks are **local**
  (``click_mode="local"``, the default): each new click is applied to the previous result at
  the working resolution, and only the connected region of the label it lands on (the wrong
  region it was aimed at, plus whatever that label touches) may change; flipping a pixel
  there costs ``local_geo`` per ``local_len`` of edge-aware geodesic distance from the click,
  and the clicked side may also be explained by the colours geodesically near the click
  (``local_model``), so a click on a part the global colour model misjudges still takes it.
  A click's hard seed and colour samples shrink with its distance to the label it asks for
  (``click_fit``): a click in a sliver two pixels wide must not seed the far side of the
  boundary it is aimed at. The previous ``"global"`` mode re-cuts the whole box with every
  click (``stick`` keeps pixels far from the clicks), where one click often undid others far
  away.

Pure numpy / OpenCV / SciPy (max-flow: :func:`scipy.sparse.csgraph.maximum_flow`; PyMaxflow's
Boykov-Kolmogorov solver was 4-10x faster on these graphs but is GPL). Coordinates are
``(x, y)`` image pixels; masks are ``(H, W) bool``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, maximum_flow
from skimage.graph import MCP_Geometric

from tracker_core.propagate import guided_filter

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 (x1, y1 exclusive)
FeatureFn = Callable[[np.ndarray], np.ndarray]  # (h, w, 3) uint8 RGB -> (h, w, D) float32


@dataclass(frozen=True)
class Click:
    """A refinement click at image pixel ``(x, y)``: positive adds, negative removes."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True)
class SelectionConfig:
    """How a box and clicks become a mask. Pixel sizes are full-resolution image pixels."""

    work_pixels: int = 150 * 150  # the box is rescaled to cover about this many pixels
    max_upscale: float = 2.0
    margin: float = 0.08  # crop margin around the box (fraction of the box side) ...
    min_margin: int = 6  # ... and at least this many pixels
    ring: float = 0.6  # background colour samples: a ring this wide (fraction) around the box
    ring_samples: int = 3000  # at most about this many of them (evenly subsampled)
    components: int = 5  # Gaussians per colour model
    iterations: int = 4  # iterations from a box
    click_iterations: int = 2  # iterations after a click (warm-started from the last result)
    gamma: float = 10.0  # edge (pairwise) weight
    init_drop: float = 0.3  # first foreground model: leave out this fraction of the box pixels
    # that the background model explains best
    click_radius: float = 5.0  # hard-seed disk of a click
    click_sample_radius: float = 12.0  # its neighbourhood joins the colour model ...
    click_sample_weight: float = 4.0  # ... counted this many times
    click_prior: float = 3.0  # unary bias (nats) at a click, decaying ...
    click_prior_sigma: float = 0.12  # ... as a Gaussian of this fraction of the crop diagonal
    stick: float = 3.0  # after the first cut: cost (nats) of changing a pixel's label, fading
    # out near the clicks
    coarse: float = 0.5  # the iterations run at this fraction of the working resolution ...
    band: int = 3  # ... and the final cut decides this many working pixels around its boundary
    refine_radius: int = 2  # guided-filter radius at full resolution (0 = off)
    fg_bias: float = 0.5  # extra cost (nats) of labelling any pixel foreground (a box drawn
    # around a thin or spread-out object holds more background than the colour models admit)
    click_mode: str = "local"  # "local": a click can only change the connected region of the
    # label it lands on, paid for by geodesic distance from it; "global": re-cut the whole box
    local_geo: float = 0.3  # local clicks: cost (nats) of flipping a pixel per `local_len` of
    # geodesic distance from the click ...
    local_len: float = 0.1  # ... as a fraction of the working crop's diagonal
    local_edge: float = 4.0  # geodesic step cost: 1 + this * (colour gradient / its mean)
    local_refit: bool = True  # refit the colour models (with the click) before its cut
    local_model: float = 0.5  # > 0: the clicked side may also be explained by a 2-Gaussian
    # mixture of the colours geodesically within `local_sample` working px of the click, at
    # this many nats extra
    local_sample: float = 16.0
    click_fit: float = 1.0  # local clicks: the seed (and its colour samples) shrink to at most
    # this many times the click's distance (image px) to the label it asks for

    def __post_init__(self) -> None:
        if self.fg_bias < 0:
            raise ValueError("fg_bias >= 0 required")
        if self.work_pixels < 64 or self.components < 1 or self.iterations < 1:
            raise ValueError("work_pixels >= 64, components >= 1 and iterations >= 1 required")
        if self.click_mode not in ("local", "global"):
            raise ValueError(f"click_mode must be 'local' or 'global', not {self.click_mode!r}")
        if self.click_iterations < 1 or not 0 <= self.init_drop < 1:
            raise ValueError("click_iterations >= 1 and 0 <= init_drop < 1 required")


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


def crop_window(
    box: tuple[int, int, int, int], hw: tuple[int, int], cfg: SelectionConfig
) -> Window:
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
        _, labels, _ = cv2.kmeans(samples, k, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
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
    for k in range(len(_NEIGHBOURS)):
        src, dst = _pairs(k, h, w)
        d2[k][src] = ((z[src] - z[dst]) ** 2).sum(-1)
        valid[k][src] = True
    mean = float(d2[valid].mean()) if valid.any() else 0.0
    beta = 1.0 / (2.0 * mean) if mean > 0 else 0.0
    dist = np.array([1.0, 1.0, math.sqrt(2), math.sqrt(2)], np.float32)[:, None, None]
    return np.where(valid, gamma / dist * np.exp(-beta * d2), 0.0).astype(np.float32)


def _pairs(k: int, h: int, w: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices of the pixels that have a neighbour ``_NEIGHBOURS[k]`` and of those neighbours."""
    dy, dx = _NEIGHBOURS[k]
    src = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
    dst = (slice(dy, h), slice(max(0, dx), w + min(0, dx)))
    return src, dst


def graph_cut(
    cost_fg: np.ndarray,
    cost_bg: np.ndarray,
    edges: np.ndarray,
    hard_fg: np.ndarray,
    hard_bg: np.ndarray,
    scale: float = 64.0,
) -> np.ndarray:
    """Minimum of ``sum_p cost_{label p} + sum_{cut neighbour pairs} weight`` over labellings.

    ``cost_fg/cost_bg (h, w)``: unary costs of labelling a pixel foreground/background;
    ``edges``: :func:`edge_weights` planes; ``hard_fg/hard_bg (h, w) bool``: pixels fixed to that
    label (hard background wins where both are set). Returns ``(h, w) bool`` (True = fg).

    Fixed pixels are not graph nodes: an edge from a free pixel to a fixed one becomes part of
    the free pixel's terminal link, so a thin band of free pixels makes a small graph (banded
    graph cut). Capacities are costs times ``scale``, rounded (scipy's max-flow is integral);
    the max-flow is :func:`scipy.sparse.csgraph.maximum_flow` (Dinic), the cut its residual
    reachability."""
    h, w = cost_fg.shape
    fixed_bg = hard_bg
    fixed_fg = hard_fg & ~hard_bg
    free = (~(fixed_fg | fixed_bg)).ravel()
    low = np.minimum(cost_fg, cost_bg)
    to_source = (cost_bg - low).astype(np.float64).ravel()  # paid when it ends up background
    to_sink = (cost_fg - low).astype(np.float64).ravel()  # paid when it ends up foreground
    is_fg = fixed_fg.ravel()
    idx = np.arange(h * w).reshape(h, w)
    rows, cols, caps = [], [], []
    for k in range(len(_NEIGHBOURS)):
        src, dst = _pairs(k, h, w)
        a, b = idx[src].ravel(), idx[dst].ravel()
        wt = edges[k][src].ravel().astype(np.float64)
        fa, fb = free[a], free[b]
        both = fa & fb
        rows += [a[both], b[both]]
        cols += [b[both], a[both]]
        caps += [wt[both], wt[both]]
        for p, q, fp in ((a, b, fa & ~fb), (b, a, fb & ~fa)):
            to_fg = is_fg[q[fp]]
            np.add.at(to_source, p[fp][to_fg], wt[fp][to_fg])
            np.add.at(to_sink, p[fp][~to_fg], wt[fp][~to_fg])
    nodes = np.flatnonzero(free)
    out = is_fg.copy()
    m = len(nodes)
    if m == 0:
        return out.reshape(h, w)
    remap = np.full(h * w, -1, np.int64)
    remap[nodes] = np.arange(m)
    s_node, t_node = m, m + 1
    r = np.concatenate([np.full(m, s_node), np.arange(m), *(remap[x] for x in rows)])
    c = np.concatenate([np.arange(m), np.full(m, t_node), *(remap[x] for x in cols)])
    cap = np.concatenate([to_source[nodes], to_sink[nodes], *caps]) * scale
    cap = np.minimum(np.rint(cap), 2**30).astype(np.int32)
    keep = cap > 0
    graph = sp.csr_matrix((cap[keep], (r[keep], c[keep])), shape=(m + 2, m + 2))
    flow = maximum_flow(graph, s_node, t_node, method="dinic").flow
    residual = (graph - flow).tocsr()
    residual.data[residual.data < 0] = 0
    residual.eliminate_zeros()
    reach = breadth_first_order(residual, s_node, directed=True, return_predecessors=False)
    side = np.zeros(m + 2, bool)
    side[reach] = True
    out[nodes] = side[:m]
    return out.reshape(h, w)


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
    """``(h, w, 3) uint8`` RGB -> ``(h, w, 3) float32`` CIE Lab (L 0..100, a/b about ±100),
    through OpenCV's 8-bit conversion (13x faster than the float one; steps of 0.4 in L)."""
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).astype(np.float32)
    lab[..., 0] *= 100.0 / 255.0
    lab[..., 1:] -= 128.0
    return lab


@dataclass
class _Level:
    """One resolution of the working crop: features ``z (h, w, D)``, their rows ``flat``, the
    box interior, the edge weights, and ``factor`` (this level's pixels per working pixel)."""

    z: np.ndarray
    inside: np.ndarray
    edges: np.ndarray
    factor: float

    @property
    def flat(self) -> np.ndarray:
        return self.z.reshape(-1, self.z.shape[2])

    @property
    def shape(self) -> tuple[int, int]:
        return self.z.shape[0], self.z.shape[1]

    def point(self, x: float, y: float) -> tuple[float, float]:
        """Working-crop pixel ``(x, y)`` -> this level's pixel."""
        return (x + 0.5) * self.factor - 0.5, (y + 0.5) * self.factor - 0.5

    def resample(self, mask: np.ndarray) -> np.ndarray:
        """A bool mask of another level -> this level (nearest)."""
        h, w = self.shape
        return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0


@dataclass
class _Evidence:
    """What the clicks say at one level: hard seeds, a unary bias (> 0 favours foreground),
    how close each pixel is to a click (0..1), and the clicked colours per side."""

    hard_fg: np.ndarray
    hard_bg: np.ndarray
    prior: np.ndarray
    near: np.ndarray
    pos: list[np.ndarray]
    neg: list[np.ndarray]


class SmartSelector:
    """One box selection on one image, refined by clicks. It keeps what later clicks reuse (the
    features, the edge weights, the colour models, the last cut), so a click costs a fraction
    of the box.

    The GrabCut iterations run on a half-resolution copy of the working crop; the final cut at
    the working resolution only decides a band of ``SelectionConfig.band`` pixels around the
    coarse boundary (banded graph cut), which keeps the max-flow small.

    Args:
        image: ``(H, W, 3) uint8`` RGB.
        box: ``(x0, y0, x1, y1)`` pixels (exclusive ends), drawn tightly around the object.
        cfg: the method's settings.
        features: a rescaled crop -> per-pixel vectors (default CIE Lab colour).
        initial: ``(H, W) bool`` an existing mask to refine instead of cutting from the box
            (clicks then change it where they say; pixels outside ``box`` stay out).
    """

    def __init__(
        self,
        image: np.ndarray,
        box: Box,
        cfg: SelectionConfig | None = None,
        features: FeatureFn = lab_features,
        initial: np.ndarray | None = None,
    ) -> None:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape}")
        self.cfg = cfg = cfg or SelectionConfig()
        self.image = image
        hw = image.shape[:2]
        if initial is not None and initial.shape != hw:
            raise ValueError(f"initial mask {initial.shape} does not match the image {hw}")
        self.box = ibox = clip_box(box, hw)
        crop = crop_window(ibox, hw, cfg)
        # The outer window holds the crop and the ring of background samples around it.
        x0, y0, x1, y1 = ibox
        rx, ry = round(cfg.ring * (x1 - x0)) + 1, round(cfg.ring * (y1 - y0)) + 1
        self.outer = outer = Window(
            min(crop.x0, max(0, x0 - rx)),
            min(crop.y0, max(0, y0 - ry)),
            max(crop.x1, min(hw[1], x1 + rx)),
            max(crop.y1, min(hw[0], y1 + ry)),
            crop.scale,
        )
        oh, ow = outer.work_shape
        region = image[outer.y0 : outer.y1, outer.x0 : outer.x1]
        z_all = features(cv2.resize(region, (ow, oh), interpolation=cv2.INTER_AREA))
        z_all = z_all.astype(np.float32)
        in_crop = box_region((crop.x0, crop.y0, crop.x1, crop.y1), outer)
        rows, cols = np.flatnonzero(in_crop.any(1)), np.flatnonzero(in_crop.any(0))
        self._rows = slice(int(rows[0]), int(rows[-1]) + 1)
        self._cols = slice(int(cols[0]), int(cols[-1]) + 1)
        z = np.ascontiguousarray(z_all[self._rows, self._cols])
        inside = box_region(ibox, outer)[self._rows, self._cols]
        self._fine = _Level(z, inside, edge_weights(z, cfg.gamma), 1.0)
        h, w = inside.shape
        ch, cw = max(2, round(h * cfg.coarse)), max(2, round(w * cfg.coarse))
        zc = cv2.resize(z, (cw, ch), interpolation=cv2.INTER_AREA)
        if zc.ndim == 2:
            zc = zc[..., None]
        coarse_edges = edge_weights(zc, cfg.gamma * cw / w)  # same cost per image length
        self._coarse = _Level(zc, self._fine_to(inside, (ch, cw)), coarse_edges, 0)
        self._coarse.factor = cw / w
        ring = z_all[~in_crop]
        self._ring = ring[:: max(1, len(ring) // cfg.ring_samples)]
        self._fg: Gmm | None = None
        self._bg: Gmm | None = None
        self._mask: np.ndarray | None = None  # last result, fine level
        self._grad: np.ndarray | None = None  # fine-level colour gradient (geodesic metric)
        self._applied: list[Click] = []  # local mode: the clicks already in self._mask ...
        self._box_mask: np.ndarray | None = None  # ... applied to this (box cut or `initial`)
        self._box_models: tuple[Gmm | None, Gmm | None] = (None, None)  # and its colour models
        self._coarse_mask: np.ndarray | None = None
        oh_px, ow_px = outer.y1 - outer.y0, outer.x1 - outer.x0
        self._in_box = np.zeros((oh_px, ow_px), bool)  # the box, image px of the outer window
        self._in_box[y0 - outer.y0 : y1 - outer.y0, x0 - outer.x0 : x1 - outer.x0] = True
        self._sizes: list[float] = []  # per applied click: its seed size (1 = click_radius)
        if initial is not None:
            sub = initial[outer.y0 : outer.y1, outer.x0 : outer.x1].astype(np.float32)
            small = cv2.resize(sub, (ow, oh), interpolation=cv2.INTER_AREA)
            self._mask = (small[self._rows, self._cols] > 0.5) & inside
            self._box_mask = self._mask
            self._coarse_mask = self._coarse.resample(self._mask) & self._coarse.inside

    @staticmethod
    def _fine_to(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0

    @property
    def work_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the working crop."""
        return self._fine.shape

    def _to_work(self, x: float, y: float) -> tuple[float, float]:
        ox, oy = self.outer.to_work(x, y)
        return ox - self._cols.start, oy - self._rows.start

    def _evidence(
        self, level: _Level, clicks: Sequence[Click], sizes: Sequence[float] | None = None
    ) -> _Evidence:
        """What ``clicks`` say at ``level``; ``sizes`` scale each click's seed and sample disks
        (default 1: ``click_radius`` and ``click_sample_radius``)."""
        cfg = self.cfg
        h, w = level.shape
        inside, flat = level.inside, level.flat
        ev = _Evidence(
            np.zeros((h, w), bool),
            ~inside,
            np.zeros((h, w), np.float32),
            np.zeros((h, w), np.float32),
            [],
            [],
        )
        ys, xs = np.mgrid[:h, :w].astype(np.float32)
        sigma = cfg.click_prior_sigma * math.hypot(w, h)
        px = self.outer.scale * level.factor
        for k, click in enumerate(clicks):
            size = 1.0 if sizes is None else sizes[k]
            cx, cy = level.point(*self._to_work(click.x, click.y))
            seed = disk((h, w), cx, cy, cfg.click_radius * size * px) & inside
            near = disk((h, w), cx, cy, cfg.click_sample_radius * size * px).ravel()
            bump = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
            ev.near = np.maximum(ev.near, bump)
            if click.positive:
                ev.hard_fg |= seed
                ev.hard_bg &= ~seed
                ev.pos.append(flat[near])
                ev.prior += cfg.click_prior * bump
            else:
                ev.hard_bg |= seed
                ev.hard_fg &= ~seed
                ev.neg.append(flat[near])
                ev.prior -= cfg.click_prior * bump
        return ev

    def _costs(
        self, level: _Level, ev: _Evidence, previous: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unary costs ``(cost_fg, cost_bg)`` at ``level`` from the current colour models."""
        assert self._fg is not None and self._bg is not None
        h, w = level.shape
        cost_fg = -gmm_loglik(self._fg, level.flat).reshape(h, w) - np.maximum(ev.prior, 0)
        cost_fg += self.cfg.fg_bias
        cost_bg = -gmm_loglik(self._bg, level.flat).reshape(h, w) - np.maximum(-ev.prior, 0)
        if previous is not None and self.cfg.stick > 0:
            keep = self.cfg.stick * (1 - ev.near)
            cost_fg += keep * ~previous
            cost_bg += keep * previous
        return cost_fg, cost_bg

    def update(self, clicks: Sequence[Click] = ()) -> np.ndarray:
        """The mask for the box and ``clicks`` (every click so far, in order): ``(H, W) bool``,
        empty outside the box. The first call cuts from the box (``iterations``); later calls
        start from the last result (``click_iterations``)."""
        cfg = self.cfg
        if cfg.click_mode == "local" and clicks:
            if self._mask is None:
                self.update(())  # the box cut first; the clicks then apply to it one by one
            return self._to_full(self._local_update(clicks))
        if cfg.click_mode == "local" and self._box_mask is not None:  # no clicks (any more)
            self._mask, self._applied, self._sizes = self._box_mask, [], []
            self._fg, self._bg = self._box_models
            return self._to_full(self._mask)
        lvl = self._coarse
        flat, inside = lvl.flat, lvl.inside
        ev = self._evidence(lvl, clicks)
        previous = self._coarse_mask
        if previous is None:
            mask, iterations = inside.copy(), cfg.iterations
        else:
            mask, iterations = previous, cfg.click_iterations
        for it in range(iterations):
            fg_sel = (mask & ~ev.hard_bg).ravel()
            if it == 0 and previous is None and cfg.init_drop > 0:
                outside = np.concatenate([flat[~inside.ravel()], self._ring])
                like = gmm_loglik(fit_gmm(outside, cfg.components), flat)
                fg_sel &= like < np.quantile(like[fg_sel], 1.0 - cfg.init_drop)
            fg_x, fg_w = _with_extra(flat[fg_sel], ev.pos, cfg)
            bg_x, bg_w = _with_extra(np.concatenate([flat[~mask.ravel()], self._ring]), ev.neg, cfg)
            if len(fg_x) < 8:
                fg_x, fg_w = flat[inside.ravel()], None
            self._fg = fit_gmm(fg_x, cfg.components, fg_w, self._fg)
            self._bg = fit_gmm(bg_x, cfg.components, bg_w, self._bg)
            cost_fg, cost_bg = self._costs(lvl, ev, previous)
            new = graph_cut(cost_fg, cost_bg, lvl.edges, ev.hard_fg, ev.hard_bg)
            if np.array_equal(new, mask):
                break
            mask = new
        self._coarse_mask = mask
        # Final cut at the working resolution, only in a band around the coarse boundary.
        fine = self._fine
        ev = self._evidence(fine, clicks)
        up = fine.resample(mask)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * cfg.band + 1,) * 2)
        sure_fg = cv2.erode(up.astype(np.uint8), kernel) > 0
        sure_bg = cv2.dilate(up.astype(np.uint8), kernel) == 0
        cost_fg, cost_bg = self._costs(fine, ev, self._mask)
        hard_fg = (sure_fg & ~ev.hard_bg) | ev.hard_fg
        hard_bg = sure_bg & ~ev.hard_fg | ev.hard_bg
        self._mask = graph_cut(cost_fg, cost_bg, fine.edges, hard_fg, hard_bg)
        if not clicks:
            self._box_mask, self._box_models = self._mask, (self._fg, self._bg)
        return self._to_full(self._mask)

    def _local_update(self, clicks: Sequence[Click]) -> np.ndarray:
        """Local click mode: apply the clicks not yet in the mask one by one (replaying from the
        box result when the list is not an extension of the applied one)."""
        n = len(self._applied)
        if len(clicks) < n or list(clicks[:n]) != self._applied:
            assert self._box_mask is not None
            self._mask, self._applied, self._sizes, n = self._box_mask, [], [], 0
            self._fg, self._bg = self._box_models
        assert self._mask is not None
        for k in range(n, len(clicks)):
            size = self._click_size(clicks[k])
            self._mask = self._local_click(self._mask, clicks[: k + 1], [*self._sizes, size])
            self._applied.append(clicks[k])
            self._sizes.append(size)
        return self._mask

    def _click_size(self, click: Click) -> float:
        """A local click's seed size (fraction of ``click_radius``): at most ``click_fit`` times
        its distance (image px) to the nearest pixel that already has the label it asks for, so
        a click in a sliver along the boundary seeds only the sliver, not the far side of the
        boundary. 1 when ``click_fit`` is 0 or the click's pixel already has that label."""
        cfg, o = self.cfg, self.outer
        if cfg.click_fit <= 0 or self._mask is None:
            return 1.0
        target = self._outer_mask(self._mask) == click.positive
        if not target.any():
            return 1.0
        ix = int(np.clip(round(click.x) - o.x0, 0, target.shape[1] - 1))
        iy = int(np.clip(round(click.y) - o.y0, 0, target.shape[0] - 1))
        if target[iy, ix]:
            return 1.0
        dist = cv2.distanceTransform((~target).astype(np.uint8), cv2.DIST_L2, 5)
        return float(np.clip(cfg.click_fit * dist[iy, ix] / cfg.click_radius, 0.0, 1.0))

    def _local_click(
        self, previous: np.ndarray, clicks: Sequence[Click], sizes: Sequence[float]
    ) -> np.ndarray:
        """``previous (h, w) bool`` fine mask + the last of ``clicks`` -> the new fine mask. Only
        the connected region of ``previous``'s label under the click may change; flipping a
        pixel there costs ``local_geo`` per ``local_len`` of geodesic distance from the click."""
        cfg, lvl = self.cfg, self._fine
        h, w = lvl.shape
        click = clicks[-1]
        ev = self._evidence(lvl, clicks, sizes)
        cx, cy = lvl.point(*self._to_work(click.x, click.y))
        seed = disk((h, w), cx, cy, cfg.click_radius * sizes[-1] * self.outer.scale) & lvl.inside
        if not seed.any():
            return previous
        iy, ix = int(np.clip(round(cy), 0, h - 1)), int(np.clip(round(cx), 0, w - 1))
        wrong = (previous != click.positive) & lvl.inside
        if not wrong[iy, ix]:
            return (previous | seed) if click.positive else (previous & ~seed)
        _, comp = cv2.connectedComponents(wrong.astype(np.uint8), connectivity=4)
        region = comp == comp[iy, ix]
        geo = self._geodesic(region | seed, seed)
        if cfg.local_refit or self._fg is None or self._bg is None:
            mask = previous.copy()
            mask[seed] = click.positive
            fg_x, fg_w = _with_extra(lvl.flat[(mask & ~ev.hard_bg).ravel()], ev.pos, cfg)
            bg_x = np.concatenate([lvl.flat[~mask.ravel()], self._ring])
            bg_x, bg_w = _with_extra(bg_x, ev.neg, cfg)
            if len(fg_x) >= 8:
                self._fg = fit_gmm(fg_x, cfg.components, fg_w, self._fg)
            self._bg = fit_gmm(bg_x, cfg.components, bg_w, self._bg)
        cost_fg, cost_bg = self._costs(lvl, ev, None)
        if cfg.local_model > 0:
            near = (geo < cfg.local_sample).ravel()
            if near.sum() >= 16:
                local = fit_gmm(lvl.flat[near], 2)
                own = -gmm_loglik(local, lvl.flat).reshape(h, w) + cfg.local_model
                if click.positive:
                    cost_fg = np.minimum(cost_fg, own + cfg.fg_bias)
                else:
                    cost_bg = np.minimum(cost_bg, own)
        length = cfg.local_len * math.hypot(h, w)
        flip = np.where(np.isfinite(geo), cfg.local_geo * geo / length, np.inf)
        free = region & np.isfinite(geo)
        hard_fg = (previous & ~free) | ev.hard_fg
        hard_bg = (~previous & ~free) | ev.hard_bg
        if click.positive:
            cost_fg = cost_fg + np.minimum(flip, 1e3)
            hard_fg |= seed
        else:
            cost_bg = cost_bg + np.minimum(flip, 1e3)
            hard_bg |= seed
        return graph_cut(cost_fg, cost_bg, lvl.edges, hard_fg & ~hard_bg, hard_bg)

    def _geodesic(self, region: np.ndarray, seed: np.ndarray) -> np.ndarray:
        """``(h, w)`` geodesic distance (working px) from ``seed`` inside ``region`` (inf
        elsewhere); the step cost grows with the colour gradient (``local_edge``)."""
        if self._grad is None:
            self._grad = _gradient(self._fine.z)
        cost = np.where(region, 1.0 + self.cfg.local_edge * self._grad, np.inf)
        dist, _ = MCP_Geometric(cost).find_costs(list(zip(*np.nonzero(seed))))
        return dist

    def _outer_mask(self, mask: np.ndarray) -> np.ndarray:
        """Working-resolution mask -> ``(h, w) bool`` image pixels of the outer window:
        upsampled, snapped to image edges, inside the box only."""
        outer, cfg = self.outer, self.cfg
        full = np.zeros(outer.work_shape, np.float32)
        full[self._rows, self._cols] = mask
        ch, cw = outer.y1 - outer.y0, outer.x1 - outer.x0
        soft = cv2.resize(full, (cw, ch), interpolation=cv2.INTER_LINEAR)
        if cfg.refine_radius > 0:
            crop = self.image[outer.y0 : outer.y1, outer.x0 : outer.x1]
            grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
            soft = guided_filter(grey, soft[None], cfg.refine_radius, 1e-3)[0]
        return (soft > 0.5) & self._in_box

    def _to_full(self, mask: np.ndarray) -> np.ndarray:
        """Working-resolution mask -> ``(H, W) bool`` (:meth:`_outer_mask` placed in the image)."""
        outer = self.outer
        out = np.zeros(self.image.shape[:2], bool)
        out[outer.y0 : outer.y1, outer.x0 : outer.x1] = self._outer_mask(mask)
        return out


def _gradient(z: np.ndarray) -> np.ndarray:
    """``(h, w, D)`` -> ``(h, w)`` central-difference gradient magnitude over its mean."""
    gy = np.zeros(z.shape[:2], np.float32)
    gx = np.zeros(z.shape[:2], np.float32)
    gy[1:-1] = np.linalg.norm(z[2:] - z[:-2], axis=-1) / 2
    gx[:, 1:-1] = np.linalg.norm(z[:, 2:] - z[:, :-2], axis=-1) / 2
    g = np.hypot(gx, gy)
    return g / max(float(g.mean()), 1e-6)


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
