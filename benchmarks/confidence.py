"""How far can the user trust the propagation confidence? AUC and precision/recall against J.

    .venv/bin/python benchmarks/confidence.py ../shared/data/davis-dev ../shared/data/davis-devb

Every sequence of every given DAVIS-layout root is propagated once from its frame-0 ground truth
with the default model (shipped propagation settings); per frame the script keeps the soft mask
labels on the feature grid (``(2, h, w)``: background and object, float16) and J against the ground
truth, in ``data_cache/confidence/<root>/<sequence>.npz`` (reused on later runs; ``--fresh``
recomputes). Then, for the shipped confidence (:func:`tracker_core.confidence.object_confidences`,
exactly as the propagator computes it) and for every candidate definition in :data:`CANDIDATES`
(computed from the same soft labels), it reports the AUC for detecting "J < 0.85" (a low
confidence should mean a bad frame) per root and pooled, then precision / recall / F1 of the
shipped confidence at thresholds 0.50 ... 0.95 (pooled, and per root at the chosen one). First
and last frames are left out (as in DAVIS J).

Threshold criterion: the smallest threshold (steps of 0.01) whose recall over the pooled frames
is at least ``--min-recall`` (default 0.8): ``N`` finds four in five bad frames while stopping at
as few frames as possible. (Max F1 is printed beside it; with two thirds of the frames bad it
favours flagging nearly everything.) The chosen threshold's precision and recall per root show
whether it holds on both dev sets.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch
from scipy import ndimage

from tracker_core.confidence import object_confidences
from tracker_core.encoder import Encoder, load_encoder
from tracker_core.evaluate import jaccard, list_sequences, load_ground_truth
from tracker_core.labels import FrameLabels
from tracker_core.propagate import PropagationConfig, encode_labels, layout_for, propagate
from tracker_core.video import VideoSource

BAD_J = 0.85
CACHE = Path(__file__).resolve().parent.parent / "data_cache" / "confidence"


def cpu_model() -> str:
    """``lscpu`` model name and whether avx512_bf16 is present."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if "Model name" in ln), "")
    bf16 = "avx512_bf16" in text
    return f"{name} ({'with' if bf16 else 'without'} avx512_bf16)"


def collect(root: Path, name: str, cfg: PropagationConfig, encoder: Encoder, fresh: bool) -> Path:
    """Propagate one sequence from frame 0 and cache its soft labels ``(T, 2, h, w)`` (frame 0:
    the start labels) and per-frame J ``(T,)``; returns the cache file."""
    out = CACHE / root.name / f"{name}.npz"
    if out.exists() and not fresh:
        return out
    gts = load_ground_truth(root, name)
    first = (gts[0] > 0).astype(np.uint8)
    refs = {0: FrameLabels(mask=first)}
    start = encode_labels(refs[0], layout_for(refs, {}), first.shape, encoder.stride, 0.5)
    soft, j = [start.numpy().astype(np.float16)], [1.0]
    t0 = time.perf_counter()
    with VideoSource.open(root / "JPEGImages" / "480p" / name) as video:
        for res in propagate(video.frame, 0, len(video), refs, {}, encoder, cfg):
            assert res.soft is not None
            soft.append(res.soft[:2].numpy().astype(np.float16))
            j.append(jaccard(res.labels.mask > 0, gts[res.index] > 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, soft=np.stack(soft), j=np.array(j))
    tmp.replace(out)
    seconds = time.perf_counter() - t0
    print(f"  {name:18s} {len(j):3d} frames, mean J {np.mean(j[1:-1]):.3f}, {seconds:.0f} s")
    return out


def auc(score: np.ndarray, bad: np.ndarray) -> float:
    """Probability that a random bad frame scores lower than a random good one (ties count 1/2).

    score: ``(M,)``; bad: ``(M,) bool``. nan when either class is empty."""
    n_bad, n_good = int(bad.sum()), int((~bad).sum())
    if n_bad == 0 or n_good == 0:
        return float("nan")
    _, inv, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inv]  # average ranks, 1-based
    u_bad = ranks[bad].sum() - n_bad * (n_bad + 1) / 2  # pairs where a bad frame ranks higher
    return float(1.0 - u_bad / (n_bad * n_good))


def pr_at(score: np.ndarray, bad: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """Precision, recall and F1 of "uncertain = score < threshold" for finding bad frames."""
    flagged = score < threshold
    tp = int((flagged & bad).sum())
    precision = tp / max(1, int(flagged.sum()))
    recall = tp / max(1, int(bad.sum()))
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return precision, recall, f1


# ------------------------------------------------------------------------------ definitions


def _shape(p: np.ndarray) -> dict[str, float]:
    """Shape facts of one object's ``(h, w)`` probability map on the grid."""
    hard = p > 0.5
    area_hard = int(hard.sum())
    band = int(((p > 0.1) & (p < 0.9)).sum())
    lab, n = ndimage.label(hard)
    sizes = np.bincount(lab.ravel())[1:] if n else np.zeros(0)
    if n:
        grown = ndimage.binary_dilation(lab == sizes.argmax() + 1, iterations=2)
        leak = 1 - float(p[~grown].sum()) / max(float(p.sum()), 1e-6)
    else:
        leak = 0.0
    return {
        "area": float(p.sum()),
        "band": 1 - band / (area_hard + band + 1),
        "lcc": float(sizes.max() / area_hard) if n else 0.0,
        "leak": leak,
        "core": float(p[p > 0.9].sum()) / max(float(p.sum()), 1e-6),
    }


def _entropy_near(p: np.ndarray) -> float:
    near = p > 0.05
    if not near.any():
        return 0.0
    q = p[near].clip(1e-6, 1 - 1e-6)
    return float(1 + (q * np.log2(q) + (1 - q) * np.log2(1 - q)).mean())


def _ema(x: np.ndarray, alpha: float) -> np.ndarray:
    out, s = np.empty_like(x), x[0]
    for i, v in enumerate(x):
        s = alpha * v + (1 - alpha) * s
        out[i] = s
    return out


def shipped(soft: np.ndarray) -> np.ndarray:
    """The shipped confidence of every frame of a cached sequence ``(T, 2, h, w)`` -> ``(T,)``
    (frame 0 = the start labels, confidence 1)."""
    t_soft = torch.from_numpy(soft.astype(np.float32))
    start_area = t_soft[0, 1:].flatten(1).sum(dim=1)
    rest = [float(object_confidences(t_soft[t], start_area).min()) for t in range(1, len(soft))]
    return np.array([1.0, *rest])


def candidates(soft: np.ndarray, base: np.ndarray) -> dict[str, np.ndarray]:
    """Other definitions tried, per frame ``(T,)`` (higher = surer), from the same soft labels."""
    p = soft[:, 1].astype(np.float32)
    shapes = [_shape(p[t]) for t in range(len(p))]
    col = {k: np.array([s[k] for s in shapes]) for k in shapes[0]}
    a0 = max(col["area"][0], 1e-3)
    prev = np.concatenate([[col["area"][0]], col["area"][:-1]])
    lcc_rel = np.minimum(1, col["lcc"] / max(col["lcc"][0], 1e-6))
    return {
        "band fraction": col["band"],
        "1 - entropy near the object": np.array([_entropy_near(q) for q in p]),
        "largest component share": col["lcc"],
        "mass outside the largest component": col["leak"],
        "confident-core mass": col["core"],
        "area vs start": -np.abs(np.log((col["area"] + 1e-3) / a0)),
        "area vs previous frame": -np.abs(np.log((col["area"] + 1e-3) / (prev + 1e-3))),
        "shipped x band": base * col["band"],
        "shipped x largest component": base * col["lcc"],
        "shipped x sqrt(component share vs start)": base * np.sqrt(lcc_rel),
        "shipped x leak": base * col["leak"],
        "shipped x band x component vs start": base * col["band"] * lcc_rel,
        "shipped, EMA 0.3 over frames": _ema(base, 0.3),
        "shipped, running min": np.minimum.accumulate(base),
        "shipped x confident core": base * col["core"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+")
    parser.add_argument("--model", default=None, help="checkpoint path or 'lab' (default model)")
    parser.add_argument("--sequences", default="", help="comma list (default: all)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="recompute cached propagations")
    parser.add_argument("--min-recall", type=float, default=0.8)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = PropagationConfig()
    encoder = load_encoder(args.model)
    print(f"# {cpu_model()} | torch threads {torch.get_num_threads()} | model {encoder.name}")
    table: dict[str, dict[str, list[np.ndarray]]] = {}  # root -> definition -> per sequence
    for root in args.roots:
        names = [s for s in args.sequences.split(",") if s] or list_sequences(root)
        print(f"{root}: {len(names)} sequences", flush=True)
        rows: dict[str, list[np.ndarray]] = {"J": [], SHIPPED: []}
        for name in names:
            data = np.load(collect(root, name, cfg, encoder, args.fresh))
            soft, j = data["soft"], data["j"]
            base = shipped(soft)
            defs = {SHIPPED: base, **candidates(soft, base)}
            for key, values in (("J", j), *defs.items()):
                rows.setdefault(key, []).append(values[1:-1])
        table[root.name] = rows
    report({r: {k: np.concatenate(v) for k, v in d.items()} for r, d in table.items()}, args)


SHIPPED = "shipped (sharpness x shrink penalty)"


def report(table: dict[str, dict[str, np.ndarray]], args: argparse.Namespace) -> None:
    """Print the AUC table, the shipped definition's precision / recall table and the threshold."""
    roots = list(table)
    pooled = {k: np.concatenate([table[r][k] for r in roots]) for k in table[roots[0]]}
    bad = pooled["J"] < BAD_J
    print(f"\nframes {len(bad)}, bad (J < {BAD_J}) {int(bad.sum())} ({100 * bad.mean():.0f} %)")
    print("\n| definition | " + " | ".join(f"AUC {r}" for r in roots) + " | AUC pooled |")
    print("|---" * (len(roots) + 2) + "|")
    for key in pooled:
        if key == "J":
            continue
        cells = [f"{auc(table[r][key], table[r]['J'] < BAD_J):.3f}" for r in roots]
        print(f"| {key} | " + " | ".join(cells) + f" | {auc(pooled[key], bad):.3f} |")
    score = pooled[SHIPPED]
    print("\n| threshold | precision | recall | F1 | frames flagged |\n|---|---|---|---|---|")
    for thr in np.round(np.arange(0.5, 0.96, 0.05), 2):
        p, r, f1 = pr_at(score, bad, thr)
        print(f"| {thr:.2f} | {p:.3f} | {r:.3f} | {f1:.3f} | {int((score < thr).sum())} |")
    grid = np.round(np.arange(0.01, 1.0, 0.01), 2)
    f1s = [pr_at(score, bad, t)[2] for t in grid]
    enough = [t for t in grid if pr_at(score, bad, t)[1] >= args.min_recall]
    chosen = float(min(enough)) if enough else float("nan")
    p, rec, f1 = pr_at(score, bad, chosen)
    print(
        f"\nchosen: the smallest threshold with pooled recall >= {args.min_recall}: {chosen:.2f} "
        f"(precision {p:.3f}, recall {rec:.3f}, F1 {f1:.3f}, {int((score < chosen).sum())} frames "
        f"flagged); max-F1 would be "
        f"{float(grid[int(np.argmax(f1s))]):.2f} (F1 {max(f1s):.3f})"
    )
    for r in roots:
        p, rec, f1 = pr_at(table[r][SHIPPED], table[r]["J"] < BAD_J, chosen)
        print(f"  at {chosen:.2f} on {r}: precision {p:.3f}, recall {rec:.3f}, F1 {f1:.3f}")
    p, rec, f1 = pr_at(score, bad, 0.5)
    print(f"  the previous fixed threshold 0.50 (pooled): precision {p:.3f}, recall {rec:.3f}")


if __name__ == "__main__":
    main()
