"""Smart selection on dev frame-0 ground truth: IoU from the box, clicks to IoU 0.9, latency.

    .venv/bin/python benchmarks/smart_selection.py ../shared/data/davis-dev \
        [--methods ours,grabcut] [--set key=value ...] [--max-clicks 20] [--threads 1]

For every sequence the ground-truth bounding box of frame 0 is the first interaction; then a
simulated annotator clicks the centre (maximum of the distance transform) of the largest error
region — positive where foreground is missed, negative on a false positive — until IoU >= 0.9 or
``--max-clicks`` clicks (a sequence that never gets there counts as ``--max-clicks``). Latency is
the wall time of each interaction (box or click) with the frame already decoded.

``--set`` overrides :class:`tracker_core.selection.SelectionConfig` fields of the ``ours*``
methods (e.g. ``--set work_pixels=10000 --set iterations=3``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from tracker_core.selection import (
    Click,
    SelectionConfig,
    SmartSelector,
    crop_window,
)

Box = tuple[int, int, int, int]
# A method: (image, box) -> an interactor that takes the clicks so far and returns a mask.
Interactor = Callable[[Sequence[Click]], np.ndarray]
Method = Callable[[np.ndarray, Box], Interactor]
TARGET_IOU = 0.9


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return float((a & b).sum()) / union if union else 1.0


def next_click(pred: np.ndarray, gt: np.ndarray) -> Click:
    """The simulated annotator: the centre of the largest error region (distance-transform
    maximum, the image border counting as outside), positive when it is missed foreground."""
    best: tuple[int, np.ndarray, bool] | None = None
    for positive, err in ((True, gt & ~pred), (False, pred & ~gt)):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(err.astype(np.uint8), 8)
        if count > 1:
            k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            area = int(stats[k, cv2.CC_STAT_AREA])
            if best is None or area > best[0]:
                best = (area, labels == k, positive)
    if best is None:
        raise ValueError("the prediction is already exact")
    _, region, positive = best
    padded = np.pad(region, 1).astype(np.uint8)
    dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Click(float(x), float(y), positive)


def grabcut_method(iterations: int = 5, click_iterations: int = 1, radius: int = 5) -> Method:
    """Baseline: cv2.grabCut on the full frame from the box; clicks become GC_FGD / GC_BGD disks
    and ``click_iterations`` more iterations run from the previous state."""

    def start(image: np.ndarray, box: Box) -> Interactor:
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        mask = np.zeros(image.shape[:2], np.uint8)
        bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
        x0, y0, x1, y1 = box
        done: list[Click] = []

        def interact(clicks: Sequence[Click]) -> np.ndarray:
            if not done and not clicks:
                rect = (x0, y0, x1 - x0, y1 - y0)
                cv2.grabCut(bgr, mask, rect, bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
            for click in clicks[len(done) :]:
                value = cv2.GC_FGD if click.positive else cv2.GC_BGD
                cv2.circle(mask, (round(click.x), round(click.y)), radius, value, -1)
                done.append(click)
            if clicks:
                cv2.grabCut(bgr, mask, None, bgd, fgd, click_iterations, cv2.GC_INIT_WITH_MASK)
            return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)

        return interact

    return start


def grabcut_crop_method(cfg: SelectionConfig, iterations: int = 5, radius: int = 5) -> Method:
    """cv2.grabCut on the crop around the box rescaled as ours is (``crop_window``), result
    upsampled bilinearly; clicks as in :func:`grabcut_method`."""

    def start(image: np.ndarray, box: Box) -> Interactor:
        win = crop_window(box, image.shape[:2], cfg)
        h, w = win.work_shape
        crop = image[win.y0 : win.y1, win.x0 : win.x1]
        small = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        mask = np.zeros((h, w), np.uint8)
        bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
        (ax, ay), (bx, by) = win.to_work(box[0], box[1]), win.to_work(box[2] - 1, box[3] - 1)
        rect = (round(ax), round(ay), max(1, round(bx - ax) + 1), max(1, round(by - ay) + 1))
        done: list[Click] = []

        def interact(clicks: Sequence[Click]) -> np.ndarray:
            if not done and not clicks:
                cv2.grabCut(bgr, mask, rect, bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
            for click in clicks[len(done) :]:
                value = cv2.GC_FGD if click.positive else cv2.GC_BGD
                cx, cy = win.to_work(click.x, click.y)
                r = max(1, round(radius * win.scale))
                cv2.circle(mask, (round(cx), round(cy)), r, value, -1)
                done.append(click)
            if clicks:
                cv2.grabCut(bgr, mask, None, bgd, fgd, 1, cv2.GC_INIT_WITH_MASK)
            fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.float32)
            up = cv2.resize(fg, (win.x1 - win.x0, win.y1 - win.y0), interpolation=cv2.INTER_LINEAR)
            out = np.zeros(image.shape[:2], bool)
            out[win.y0 : win.y1, win.x0 : win.x1] = up > 0.5
            return out

        return interact

    return start


def ours_method(cfg: SelectionConfig) -> Method:
    """:class:`tracker_core.selection.SmartSelector` (Lab colour)."""

    def start(image: np.ndarray, box: Box) -> Interactor:
        selector = SmartSelector(image, box, cfg)
        return lambda clicks: selector.update(clicks)

    return start


def load_frame0(root: Path, seq: str) -> tuple[np.ndarray, np.ndarray]:
    image = cv2.imread(str(root / "JPEGImages" / "480p" / seq / "00000.jpg"))
    gt = cv2.imread(str(root / "Annotations" / "480p" / seq / "00000.png"), cv2.IMREAD_GRAYSCALE)
    if image is None or gt is None:
        raise SystemExit(f"smart_selection: error: {root}: cannot read frame 0 of {seq}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), gt > 127


def bbox(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def run_sequence(
    method: Method, image: np.ndarray, gt: np.ndarray, max_clicks: int
) -> tuple[float, int, list[float], list[float], list[float]]:
    """``(box IoU, clicks to TARGET_IOU, IoU after each click, wall seconds per interaction,
    CPU seconds per interaction)``. CPU time (this process) is what the interaction costs on
    an idle core; wall time also counts waiting for a busy machine."""
    t0, c0 = time.perf_counter(), time.process_time()
    interact = method(image, bbox(gt))
    clicks: list[Click] = []
    pred = interact(clicks)
    times, cpu = [time.perf_counter() - t0], [time.process_time() - c0]
    box_iou = score = iou(pred, gt)
    curve: list[float] = []
    while score < TARGET_IOU and len(clicks) < max_clicks:
        clicks.append(next_click(pred, gt))
        t0, c0 = time.perf_counter(), time.process_time()
        pred = interact(clicks)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        score = iou(pred, gt)
        curve.append(score)
    needed = len(clicks) if score >= TARGET_IOU else max_clicks
    return box_iou, needed, curve, times, cpu


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if "Model name" in ln), "")
    bf16 = "avx512_bf16" in out
    return f"{model or 'unknown CPU'} (avx512_bf16: {'yes' if bf16 else 'no'})"


def parse_overrides(items: Sequence[str]) -> dict[str, object]:
    fields = {f.name: f.type for f in dataclasses.fields(SelectionConfig)}
    out: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"smart_selection: error: unknown setting {key!r}")
        default = getattr(SelectionConfig(), key)
        out[key] = type(default)(value) if not isinstance(default, bool) else value == "true"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="DAVIS-layout folder with sequences.txt")
    parser.add_argument("--methods", default="ours,grabcut")
    parser.add_argument("--sequences", default="", help="comma-separated subset")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--max-clicks", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="OpenCV/torch threads (0 = all)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        cv2.setNumThreads(args.threads)
        torch.set_num_threads(args.threads)
    seqs = (
        args.sequences.split(",")
        if args.sequences
        else (args.root / "sequences.txt").read_text().split()
    )
    cfg = dataclasses.replace(SelectionConfig(), **parse_overrides(args.overrides))
    methods: dict[str, Method] = {
        "grabcut": grabcut_method(),
        "grabcut-crop": grabcut_crop_method(cfg),
        "ours": ours_method(cfg),
    }
    print(f"machine: {cpu_model()}; OpenCV {cv2.__version__}; threads {args.threads or 'all'}")
    print(f"config: {cfg}")
    frames = {seq: load_frame0(args.root, seq) for seq in seqs}
    for name in args.methods.split(","):
        method = methods[name]
        print(f"\n## {name}\n")
        print(
            "| sequence | box IoU | clicks to 0.9 | IoU after 1/3/5 clicks | median ms | max ms "
            "| CPU median / max ms |"
        )
        print("|---|---|---|---|---|---|---|")
        ious, clicks, all_times, all_cpu = [], [], [], []
        for seq in seqs:
            image, gt = frames[seq]
            box_iou, needed, curve, times, cpu = run_sequence(method, image, gt, args.max_clicks)
            ious.append(box_iou)
            clicks.append(needed)
            all_times += times
            all_cpu += cpu
            at = [f"{curve[min(k, len(curve)) - 1]:.2f}" if curve else "–" for k in (1, 3, 5)]
            print(
                f"| {seq} | {box_iou:.3f} | {needed} | {' / '.join(at)} | "
                f"{1000 * np.median(times):.0f} | {1000 * max(times):.0f} | "
                f"{1000 * np.median(cpu):.0f} / {1000 * max(cpu):.0f} |",
                flush=True,
            )
        print(
            f"| **mean** | **{np.mean(ious):.3f}** | **{np.mean(clicks):.2f}** | | "
            f"**{1000 * np.median(all_times):.0f}** | **{1000 * max(all_times):.0f}** | "
            f"**{1000 * np.median(all_cpu):.0f} / {1000 * max(all_cpu):.0f}** |"
        )
        print(f"load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
