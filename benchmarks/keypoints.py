"""Keypoint propagation levers on BADJA: every setting on every sequence, sharing encoded frames.

    .venv/bin/python benchmarks/keypoints.py ../shared/data/badja-dev \\
        --davis-root ../shared/data/davis-dev --threads 1 [--settings NAME,NAME]

Each setting is a named set of :class:`~tracker_core.propagate.PropagationConfig` overrides on
the shipped default preset, plus whether the DAVIS mask of the first labelled frame is
propagated alongside (``mask``; never a later mask). Frames are encoded once per sequence
(one feature cache per video), so a setting costs only its propagation. Reported per setting
and sequence: PCK@0.1 / @0.2 with the threshold of ``trackpaint eval-keypoints`` (alpha x 0.6 x
the diagonal of the visible-joint box) and BADJA's own (alpha x sqrt(ground-truth mask area)),
the mean over sequences, all joints pooled, and the CPU seconds of the propagation.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch

from tracker_core.encoder import load_encoder
from tracker_core.evaluate import (
    FRAMES_DIR,
    evaluate_keypoints,
    expand_badja_paths,
    ground_truth_lookup,
    load_badja,
)
from tracker_core.propagate import FeatureCache
from tracker_core.propagator import load_propagator
from tracker_core.video import VideoSource

OLD = {"keypoint_decode": "top3", "keypoint_mask_weight": 0.0}  # before issue 10
PEAK = {"keypoint_decode": "peak", "keypoint_mask_weight": 0.0}
W1 = {"keypoint_decode": "peak", "keypoint_mask_weight": 1.0}  # the shipped default now


def _s(base: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {**base, **kw}


# name -> (overrides, propagate the start mask alongside)
SETTINGS: dict[str, tuple[dict[str, Any], bool]] = {
    "top3 (old)": (OLD, False),
    "top3+mask": (OLD, True),
    "peak1": (PEAK, False),
    "peak2": (_s(PEAK, keypoint_window=2), False),
    "peak1+mask": (PEAK, True),
    "peak1-soft": (_s(PEAK, keypoint_feedback="soft"), False),
    "peak1-sigma0.35": (_s(PEAK, keypoint_sigma=0.35), False),
    "peak1-sigma0.75": (_s(PEAK, keypoint_sigma=0.75), False),
    "peak1-sigma1": (_s(PEAK, keypoint_sigma=1.0), False),
    "peak1-r12": (_s(PEAK, radius=12, keyframe_radius=16), False),
    "peak1-t0.02": (_s(PEAK, temperature=0.02), False),
    "peak1-t0.1": (_s(PEAK, temperature=0.1), False),
    "peak1-k5": (_s(PEAK, topk=5), False),
    "peak1-k20": (_s(PEAK, topk=20), False),
    "peak1-recent7": (_s(PEAK, n_recent=7), False),
    "peak1-k20-recent7": (_s(PEAK, topk=20, n_recent=7), False),
    "peak1+mask-w0.5": (_s(PEAK, keypoint_mask_weight=0.5), True),
    "peak1+mask-w1 (shipped)": (W1, True),
    "peak2+mask-w1": (_s(W1, keypoint_window=2), True),
    "peak1+mask-w1-soft": (_s(W1, keypoint_feedback="soft"), True),
    "peak1+mask-w1-vis0.15": (_s(W1, keypoint_visible_threshold=0.15), True),
    "peak1+mask-w1-vis0.5": (_s(W1, keypoint_visible_threshold=0.5), True),
    "peak1+mask-w1-sigma0.75": (_s(W1, keypoint_sigma=0.75), True),
    "peak1+mask-w1-sigma1": (_s(W1, keypoint_sigma=1.0), True),
    "peak1+mask-w1-k20": (_s(W1, topk=20), True),
    "peak1+mask-w1-recent7 (accurate)": (_s(W1, n_recent=7), True),
    "peak1-kp7": (_s(PEAK, keypoint_n_recent=7), False),
    "peak1+mask-w1-kp7": (_s(W1, keypoint_n_recent=7), True),
    "peak1+mask-w1-kp12": (_s(W1, keypoint_n_recent=12), True),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("badja", nargs="+")
    ap.add_argument("--davis-root", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=None)
    ap.add_argument("--settings", default="", help="comma-separated names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    encoder = load_encoder(args.model)
    names = [n for n in args.settings.split(",") if n] or list(SETTINGS)
    root = Path(args.davis_root)
    seqs = expand_badja_paths([Path(p) for p in args.badja])
    rows: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in names}
    cpu: dict[str, float] = dict.fromkeys(names, 0.0)
    pooled: dict[str, np.ndarray] = {n: np.zeros((2, 2)) for n in names}  # alpha x (c, t)
    for path in seqs:
        name = path.stem
        gt_mask = ground_truth_lookup(root, name)
        with VideoSource.open(root.joinpath(*FRAMES_DIR, name)) as video:
            labelled = load_badja(path, (video.height, video.width))
            cache = FeatureCache(1024 * 2**20)
            start_mask = gt_mask(labelled[0].frame)
            for n in names:
                overrides, with_mask = SETTINGS[n]
                prop = load_propagator(encoder=encoder, overrides=overrides)
                t0 = time.process_time()
                res = evaluate_keypoints(
                    video,
                    labelled,
                    prop,
                    start_mask=start_mask if with_mask else None,
                    gt_masks=gt_mask,
                    cache=cache,
                )
                cpu[n] += time.process_time() - t0
                vals = (
                    res.pck(0.1),
                    res.pck(0.2),
                    res.pck(0.1, "area"),
                    res.pck(0.2, "area"),
                )
                rows[n].append(vals)
                pooled[n] += np.array([res.counts(0.1), res.counts(0.2)], float)
                print(
                    f"{n:22s} {name:14s} box {100 * vals[0]:5.1f} / {100 * vals[1]:5.1f}"
                    f"  area {100 * vals[2]:5.1f} / {100 * vals[3]:5.1f}",
                    flush=True,
                )
    print()
    head = " | ".join(f"{p.stem} @0.1 / @0.2" for p in seqs)
    print(
        f"| setting | {head} | mean box @0.1 / @0.2 | mean area @0.1 / @0.2 "
        "| pooled box @0.1 / @0.2 | CPU s |"
    )
    print("|---|" + "---|" * (len(seqs) + 4))
    for n in names:
        r = np.array(rows[n]) * 100
        per = " | ".join(f"{a:.1f} / {b:.1f}" for a, b, _, _ in r)
        m = r.mean(axis=0)
        pool = 100 * pooled[n][:, 0] / np.maximum(pooled[n][:, 1], 1)
        print(
            f"| {n} | {per} | {m[0]:.1f} / {m[1]:.1f} | {m[2]:.1f} / {m[3]:.1f} "
            f"| {pool[0]:.1f} / {pool[1]:.1f} | {cpu[n]:.0f} |"
        )


if __name__ == "__main__":
    main()
