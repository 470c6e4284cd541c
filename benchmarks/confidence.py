"""How far can the user trust the propagation confidence? AUC and precision/recall against J.

    .venv/bin/python benchmarks/confidence.py ../shared/data/davis-dev ../shared/data/davis-devb

Every sequence of every given DAVIS-layout root is propagated once from its frame-0 ground truth
with the default model (shipped propagation settings); per frame the script keeps the soft mask
labels on the feature grid (``(K, h, w)``, float16), the decoded mask's area and its J against the
ground truth, in ``data_cache/confidence/<root>/<sequence>.npz`` (reused on later runs; pass
``--fresh`` to recompute). Then, for every confidence definition in
:data:`tracker_core.confidence.DEFINITIONS`, computed from those soft labels exactly as the
propagator computes it, it reports the AUC for detecting "J < 0.85" (a low confidence should mean
a bad frame) per root and pooled, and precision / recall / F1 at candidate thresholds for the
default definition. The first and last frame of each sequence are left out (as in DAVIS J).

The threshold criterion: the largest threshold whose precision on the pooled frames is still at
least ``--min-precision`` (default 0.8, so about four in five frames ``N`` stops at really are bad),
which is the recall-maximising choice under that precision floor; the max-F1 threshold is printed
beside it for comparison.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from tracker_core.confidence import DEFINITIONS, ConfidenceInputs, confidence_trace
from tracker_core.encoder import load_encoder
from tracker_core.evaluate import jaccard, list_sequences, load_ground_truth
from tracker_core.labels import FrameLabels
from tracker_core.propagate import PropagationConfig, propagate
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


def collect(root: Path, name: str, cfg: PropagationConfig, encoder, fresh: bool) -> Path:
    """Propagate one sequence from frame 0 and cache soft labels, areas and per-frame J."""
    out = CACHE / root.name / f"{name}.npz"
    if out.exists() and not fresh:
        return out
    gts = load_ground_truth(root, name)
    first = (gts[0] > 0).astype(np.uint8)
    refs = {0: FrameLabels(mask=first)}
    soft: list[np.ndarray] = []
    j = [1.0]
    area = [float(first.sum())]
    start_soft = None
    t0 = time.perf_counter()
    with VideoSource.open(root / "JPEGImages" / "480p" / name) as video:
        for res in propagate(video.frame, 0, len(video), refs, {}, encoder, cfg):
            assert res.soft is not None
            soft.append(res.soft[:2].numpy().astype(np.float16))
            pred = res.labels.mask > 0
            j.append(jaccard(pred, gts[res.index] > 0))
            area.append(float(pred.sum()))
        from tracker_core.propagate import encode_labels, layout_for

        layout = layout_for(refs, {})
        start_soft = encode_labels(
            refs[0], layout, first.shape, encoder.stride, cfg.keypoint_sigma
        ).numpy()
    soft.insert(0, start_soft.astype(np.float16))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, soft=np.stack(soft), j=np.array(j), area=np.array(area))
    tmp.replace(out)
    print(f"  {name:18s} {len(j):3d} frames, mean J {np.mean(j[1:-1]):.3f}, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return out


def auc(score: np.ndarray, bad: np.ndarray) -> float:
    """Probability that a random bad frame scores lower than a random good one (ties 1/2)."""
    s_bad, s_good = score[bad], score[~bad]
    if len(s_bad) == 0 or len(s_good) == 0:
        return float("nan")
    order = np.argsort(np.concatenate([s_bad, s_good]), kind="mergesort")
    ranks = np.empty(len(order))
    allv = np.concatenate([s_bad, s_good])[order]
    # average ranks for ties
    _, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    cum = np.cumsum(counts) - (counts - 1) / 2
    ranks[order] = cum[inv]
    r_bad = ranks[: len(s_bad)].sum()
    # Mann-Whitney: U for "good ranks above bad"
    u = r_bad - len(s_bad) * (len(s_bad) + 1) / 2
    return float(1.0 - u / (len(s_bad) * len(s_good)))


def pr_at(score: np.ndarray, bad: np.ndarray, threshold: float) -> tuple[float, float, float]:
    """Precision, recall and F1 of "uncertain = score < threshold" for finding bad frames."""
    flagged = score < threshold
    tp = int((flagged & bad).sum())
    precision = tp / max(1, int(flagged.sum()))
    recall = tp / max(1, int(bad.sum()))
    f1 = 2 * precision * recall / max(1e-9, precision + recall)
    return precision, recall, f1


def load(path: Path) -> tuple[ConfidenceInputs, np.ndarray]:
    """Cached sequence -> (confidence inputs, per-frame J) without the first and last frame."""
    data = np.load(path)
    inputs = ConfidenceInputs(soft=torch.from_numpy(data["soft"].astype(np.float32)))
    return inputs, data["j"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+")
    parser.add_argument("--model", default=None, help="checkpoint path or 'lab' (default model)")
    parser.add_argument("--sequences", default="", help="comma list (default: all)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--fresh", action="store_true", help="recompute cached propagations")
    parser.add_argument("--min-precision", type=float, default=0.8)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = PropagationConfig()
    encoder = load_encoder(args.model)
    print(f"# {cpu_model()} | torch threads {torch.get_num_threads()} | model {encoder.name}")
    per_root: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for root in args.roots:
        names = [s for s in args.sequences.split(",") if s] or list_sequences(root)
        print(f"{root}: {len(names)} sequences", flush=True)
        scores: dict[str, list[np.ndarray]] = {d: [] for d in DEFINITIONS}
        js: list[np.ndarray] = []
        for name in names:
            inputs, j = load(collect(root, name, cfg, encoder, args.fresh))
            for d in DEFINITIONS:
                scores[d].append(confidence_trace(inputs, d)[1:-1])
            js.append(j[1:-1])
        per_root[root.name] = {d: (np.concatenate(scores[d]), np.concatenate(js)) for d in scores}
    report(per_root, args.min_precision)


def report(per_root: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], floor: float) -> None:
    """Print the AUC table and the precision / recall table for every definition."""
    roots = list(per_root)
    pooled = {
        d: tuple(np.concatenate([per_root[r][d][i] for r in roots]) for i in (0, 1))
        for d in DEFINITIONS
    }
    _, j_all = next(iter(pooled.values()))
    print(f"\nframes: {len(j_all)}, bad (J < {BAD_J}): {int((j_all < BAD_J).sum())}")
    print("\n| definition | " + " | ".join(f"AUC {r}" for r in roots) + " | AUC pooled |")
    print("|---" * (len(roots) + 2) + "|")
    for d in DEFINITIONS:
        cells = [f"{auc(*_flip(per_root[r][d])):.3f}" for r in roots]
        print(f"| {d} | " + " | ".join(cells) + f" | {auc(*_flip(pooled[d])):.3f} |")
    for d in DEFINITIONS:
        score, j = pooled[d]
        bad = j < BAD_J
        print(f"\n{d}: threshold | precision | recall | F1 | frames flagged (pooled)")
        best_f1, chosen = (0.0, float("nan")), float("nan")
        for thr in np.round(np.arange(0.05, 1.0, 0.05), 2):
            p, r, f1 = pr_at(score, bad, thr)
            print(f"| {thr:.2f} | {p:.3f} | {r:.3f} | {f1:.3f} | {int((score < thr).sum())} |")
            if f1 > best_f1[0]:
                best_f1 = (f1, thr)
            if p >= floor:
                chosen = thr
        print(f"max-F1 threshold {best_f1[1]:.2f} (F1 {best_f1[0]:.3f}); "
              f"largest threshold with precision >= {floor}: {chosen:.2f}")


def _flip(pair: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    score, j = pair
    return score, j < BAD_J


if __name__ == "__main__":
    main()
