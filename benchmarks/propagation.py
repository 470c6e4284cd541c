"""J&F, ms/frame and time to first frame on a DAVIS-layout dev set, beside DIS optical flow.

    .venv/bin/python benchmarks/propagation.py ../shared/data/davis-dev --threads 2 --fp32 \\
        [--models default,lab] [--presets fast,accurate] [--sizes 480,720,1080] [--repeat 3] \\
        [--work-heights 0,480] [--variants "encode_ahead=false,feature_dims=0;"]

Baselines in the same run: OpenCV DIS optical flow warping the previous soft mask, and copying
the frame-0 mask to every frame. ms/frame excludes decoding (frames are decoded, and resized for
``--sizes`` above the data's own, before the clock starts) and the warm-up; per sequence it is
the median over ``--repeat`` interleaved runs of every method, so a noisy shared machine slows
every method alike; ``ratio`` is the median over sequences of ms/frame divided by DIS's on the
same sequence. Time to first frame is measured in a fresh process per size (after its imports):
load the model, make the propagator, encode the memory and propagate one frame.
``--fp32`` disables bfloat16 (what CPUs without native bf16 run). ``--variants`` times protocol
variants (``PropagationConfig`` fields on top of each preset; an empty variant is the preset as
is) side by side in the same interleaved runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch

from tracker_core.encoder import LearnedEncoder, load_encoder
from tracker_core.evaluate import list_sequences, load_ground_truth, score_sequence
from tracker_core.labels import FrameLabels
from tracker_core.propagator import Propagator, load_propagator, parse_overrides
from tracker_core.runtime import cpu_description
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


def propagator_method(propagator: Propagator) -> Method:
    """Run a propagator from frame 0's mask; ms/frame from its per-frame compute times."""

    def run(frames: list[np.ndarray], first: np.ndarray) -> tuple[list[np.ndarray], float]:
        preds, seconds = [first], 0.0
        refs = {0: FrameLabels(mask=first)}
        for out in propagator.propagate(frames.__getitem__, 0, len(frames), refs, {}):
            preds.append(out.labels.mask)
            seconds += out.seconds
        return preds, 1000 * seconds / max(len(frames) - 1, 1)

    return run


def resize_to(frames: list[np.ndarray], gts: list[np.ndarray], height: int) -> tuple[list, list]:
    """Frames (area/cubic) and masks (nearest) scaled to ``height`` rows, same aspect."""
    h, w = frames[0].shape[:2]
    if height == h:
        return frames, gts
    size = (round(w * height / h / 2) * 2, height)
    interp = cv2.INTER_CUBIC if height > h else cv2.INTER_AREA
    return (
        [cv2.resize(f, size, interpolation=interp) for f in frames],
        [cv2.resize(g, size, interpolation=cv2.INTER_NEAREST) for g in gts],
    )


TTFF_SNIPPET = """
import json, sys, time
import cv2, numpy as np, torch
from tracker_core.encoder import load_encoder
from tracker_core.labels import FrameLabels
from tracker_core.propagator import load_propagator
from tracker_core.evaluate import load_ground_truth
from tracker_core.video import VideoSource
from pathlib import Path
root, seq, height, model, preset, precision, threads = sys.argv[1:8]
if int(threads):
    torch.set_num_threads(int(threads))
gt = load_ground_truth(Path(root), seq)[0]
with VideoSource.open(Path(root) / "JPEGImages" / "480p" / seq) as v:
    frames = [v.frame(0), v.frame(1)]
h, w = frames[0].shape[:2]
size = (round(w * int(height) / h / 2) * 2, int(height))
if int(height) != h:
    frames = [cv2.resize(f, size, interpolation=cv2.INTER_CUBIC) for f in frames]
    gt = cv2.resize(gt, size, interpolation=cv2.INTER_NEAREST)
t0 = time.perf_counter()
enc = load_encoder(None if model == "default" else model, precision=precision)
prop = load_propagator(preset, encoder=enc)
out = next(prop.propagate(frames.__getitem__, 0, 2, {0: FrameLabels(mask=gt)}, {}))
print(json.dumps({"ttff": time.perf_counter() - t0}))
"""


def time_to_first_frame(
    root: Path, seq: str, height: int, model: str, preset: str, precision: str, threads: int
) -> float:
    """Seconds from after the imports to the first propagated frame, in a fresh process."""
    args = [root, seq, height, model, preset, precision, threads]
    cmd = [sys.executable, "-c", TTFF_SNIPPET, *map(str, args)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(json.loads(res.stdout.strip().splitlines()[-1])["ttff"])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("davis_root", type=Path)
    parser.add_argument("--models", default="default", help="comma list: default, lab, PATH")
    parser.add_argument("--presets", default="fast", help="comma list of propagation presets")
    parser.add_argument("--sequences", default="")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument(
        "--precisions", default="auto", help="comma list of encoder precisions: auto,fp32,int8,bf16"
    )
    parser.add_argument("--fp32", action="store_true", help="= --precisions fp32 (no bf16/int8)")
    parser.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto")
    parser.add_argument("--sizes", default="", help="frame heights, e.g. 480,720,1080")
    parser.add_argument(
        "--work-heights",
        default="",
        help="comma list of max_work_height overrides per preset (0 = full-size matching); "
        "default: the preset's own",
    )
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per sequence")
    parser.add_argument("--ttff-repeat", type=int, default=3, help="fresh processes per size")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument(
        "--variants",
        default="",
        help="';'-separated protocol variants, each ','-separated FIELD=VALUE (an empty one ="
        " the preset as is), timed side by side, e.g. ';feature_dims=32'",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    precisions = ["fp32"] if args.fp32 else [p for p in args.precisions.split(",") if p]
    work_heights: list[int | None] = [int(v) for v in args.work_heights.split(",") if v] or [None]
    methods: list[tuple[str, Method]] = []
    learned: list[tuple[str, str, str]] = []  # (model, precision, preset): time to first frame
    for model in [m for m in args.models.split(",") if m]:
        for precision in precisions if model != "lab" else ["fp32"]:
            encoder = load_encoder(
                None if model == "default" else model, precision=precision, runtime=args.runtime
            )
            tag = encoder.name
            if isinstance(encoder, LearnedEncoder):
                tag = f"{encoder.name},{encoder.placement.runtime}-{encoder.placement.precision}"
                print(f"# encoder {encoder.name} (asked {precision}): {encoder.placement}")
            for preset in [p for p in args.presets.split(",") if p]:
                for wh in work_heights:
                    for variant in args.variants.split(";"):
                        over = parse_overrides([v for v in variant.split(",") if v])
                        if wh is not None:
                            over["max_work_height"] = wh
                        prop = load_propagator(preset, encoder=encoder, overrides=over)
                        suffix = "" if wh is None else f",wh{wh}"
                        suffix += f",{variant}" if variant else ""
                        name = f"trackpaint[{tag},{preset}{suffix}]"
                        methods.append((name, propagator_method(prop)))
                learned.append((model, precision, preset))
    if not args.no_baselines:
        methods += [("dis-flow", dis_flow), ("copy-frame-0", copy_first)]
    seqs = [s for s in args.sequences.split(",") if s] or list_sequences(args.davis_root)
    print(
        f"# {platform.node()} | {cpu_description()} | torch threads {torch.get_num_threads()}"
        f" | runtime {args.runtime} | repeat {args.repeat}"
    )
    native = None
    sizes = [int(s) for s in args.sizes.split(",") if s] or [0]
    for height in sizes:
        table: dict[str, list] = {name: [] for name, _ in methods}
        for seq in seqs:
            gts = load_ground_truth(args.davis_root, seq)
            with VideoSource.open(args.davis_root / "JPEGImages" / "480p" / seq) as video:
                frames = list(video)
            native = native or frames[0].shape[0]
            frames, gts = resize_to(frames, gts, height or frames[0].shape[0])
            times: dict[str, list[float]] = {name: [] for name, _ in methods}
            preds: dict[str, list[np.ndarray]] = {}
            for _ in range(max(1, args.repeat)):
                for name, method in methods:
                    preds[name], ms = method(frames, gts[0])
                    times[name].append(ms)
            row = [f"{seq:18s}"]
            for name, _ in methods:
                sc = score_sequence(seq, preds[name], gts, float(np.median(times[name])))
                table[name].append(sc)
                row.append(f"{name} {100 * sc.jf:5.1f} ({sc.ms_per_frame:5.1f} ms)")
            print(" | ".join(row), flush=True)
        label = f"{frames[0].shape[1]}x{frames[0].shape[0]}"
        dis = [s.ms_per_frame for s in table.get("dis-flow", [])]
        print(f"\n{label}: | method | J&F | J | F | ms/frame (mean) | median | ratio to DIS |")
        print("|---|---|---|---|---|---|---|")
        for name, scores in table.items():
            j = np.mean([s.j for s in scores])
            f = np.mean([s.f for s in scores])
            ms = [s.ms_per_frame for s in scores]
            ratio = (
                f"{np.median([a / b for a, b in zip(ms, dis)]):.2f}"
                if dis and name != "copy-frame-0"
                else "–"
            )
            print(
                f"| {name} | {100 * (j + f) / 2:.1f} | {100 * j:.1f} | {100 * f:.1f} | "
                f"{np.mean(ms):.1f} | {np.median(ms):.1f} | {ratio} |"
            )
        if args.ttff_repeat > 0:
            for model, precision, preset in learned:
                ttff = [
                    time_to_first_frame(
                        args.davis_root,
                        seqs[0],
                        height or native or 480,
                        model,
                        preset,
                        precision,
                        args.threads,
                    )
                    for _ in range(args.ttff_repeat)
                ]
                print(
                    f"time to first frame [{model},{precision},{preset}] at {label}: median "
                    f"{np.median(ttff):.2f} s (runs: {', '.join(f'{t:.2f}' for t in ttff)})"
                )
        print(flush=True)


if __name__ == "__main__":
    main()
