"""J&F and ms/frame on a DAVIS-layout dev set: Trackpaint's propagator(s) beside baselines.

    .venv/bin/python benchmarks/propagation.py ../shared/data/davis-dev [--models lab,default]

Baselines in the same run: OpenCV DIS optical flow warping the previous soft mask, and copying
the frame-0 mask to every frame. Timing excludes decoding (frames are decoded before the clock
starts) and uses all cores unless ``--threads`` says otherwise.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from tracker_core.encoder import load_encoder
from tracker_core.evaluate import list_sequences, load_ground_truth, score_sequence
from tracker_core.labels import FrameLabels
from tracker_core.propagate import PropagationConfig, propagate
from tracker_core.video import VideoSource

Method = Callable[[list[np.ndarray], np.ndarray], tuple[list[np.ndarray], float]]


def copy_first(frames: list[np.ndarray], first: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Baseline: frame 0's mask everywhere."""
    return [first] * len(frames), 0.0


def dis_flow(frames: list[np.ndarray], first: np.ndarray) -> tuple[list[np.ndarray], float]:
    """Baseline: DIS optical flow (t -> t-1) warps the previous soft mask (one channel per id)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    ids = [int(v) for v in np.unique(first) if v]
    soft = np.stack([(first == i).astype(np.float32) for i in [0, *ids]])
    h, w = first.shape
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), axis=-1).astype(np.float32)
    preds, seconds = [first], 0.0
    prev = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    lut = np.array([0, *ids], np.uint8)
    for frame in frames[1:]:
        t0 = time.perf_counter()
        cur = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        flow = dis.calc(cur, prev, None)
        mapx, mapy = grid[..., 0] + flow[..., 0], grid[..., 1] + flow[..., 1]
        soft = np.stack([cv2.remap(c, mapx, mapy, cv2.INTER_LINEAR) for c in soft])
        preds.append(lut[soft.argmax(axis=0)])
        seconds += time.perf_counter() - t0
        prev = cur
    return preds, 1000 * seconds / max(len(frames) - 1, 1)


def trackpaint_method(model: str | None, cfg: PropagationConfig) -> tuple[str, Method]:
    """Our propagator with the named encoder ('lab', a checkpoint path, or None = default)."""
    encoder = load_encoder(model)

    def run(frames: list[np.ndarray], first: np.ndarray) -> tuple[list[np.ndarray], float]:
        preds, seconds = [first], 0.0
        refs = {0: FrameLabels(mask=first)}
        for out in propagate(frames.__getitem__, 0, len(frames), refs, {}, encoder, cfg):
            preds.append(out.labels.mask)
            seconds += out.seconds
        return preds, 1000 * seconds / max(len(frames) - 1, 1)

    return f"trackpaint[{encoder.name}]", run


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("davis_root", type=Path)
    parser.add_argument("--models", default="lab,default", help="comma list: lab, default, PATH")
    parser.add_argument("--sequences", default="")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    cfg = PropagationConfig()
    methods: list[tuple[str, Method]] = []
    for m in [m for m in args.models.split(",") if m]:
        methods.append(trackpaint_method(None if m == "default" else m, cfg))
    if not args.no_baselines:
        methods += [("dis-flow", dis_flow), ("copy-frame-0", copy_first)]
    seqs = [s for s in args.sequences.split(",") if s] or list_sequences(args.davis_root)
    print(
        f"# {platform.node()} | {platform.processor() or platform.machine()} | "
        f"torch threads {torch.get_num_threads()} | {cfg}"
    )
    table: dict[str, list] = {name: [] for name, _ in methods}
    for seq in seqs:
        gts = load_ground_truth(args.davis_root, seq)
        with VideoSource.open(args.davis_root / "JPEGImages" / "480p" / seq) as video:
            frames = list(video)
        row = [f"{seq:18s}"]
        for name, method in methods:
            preds, ms = method(frames, gts[0])
            sc = score_sequence(seq, preds, gts, ms)
            table[name].append(sc)
            row.append(f"{name} {100 * sc.jf:5.1f} ({ms:5.1f} ms)")
        print(" | ".join(row), flush=True)
    print("\n| method | J&F | J | F | ms/frame |\n|---|---|---|---|---|")
    for name, scores in table.items():
        j = np.mean([s.j for s in scores])
        f = np.mean([s.f for s in scores])
        ms = np.mean([s.ms_per_frame for s in scores])
        print(f"| {name} | {100 * (j + f) / 2:.1f} | {100 * j:.1f} | {100 * f:.1f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
