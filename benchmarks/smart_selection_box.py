"""Box-step alternatives measured on the shipped box masks (frame 0 of each dev set).

    .venv/bin/python benchmarks/smart_selection_box.py ../shared/data/davis-dev \
        ../shared/data/davis-devb [--threads 1]

For every sequence the shipped :class:`tracker_core.selection.SmartSelector` cuts from the
ground-truth box; then, per set, this prints the mean box IoU and how many sequences each
alternative helps / hurts against it:

* ``fg_bias`` swept over ``BIASES`` — the per-sequence oracle and three unsupervised pickers
  (the most stable area between neighbouring biases; the bias after the first large area drop;
  the first bias whose mask fills at most a fraction of the box);
* superpixel majority vote on the box mask at image resolution (SLIC, Felzenszwalb);
* random-walker refinement (scikit-image, Lab) of a band around the working-resolution cut.

Evaluation only: nothing here is tuned on these sets (benchmarks/RESULTS.md, round 4).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from skimage.segmentation import felzenszwalb, random_walker, slic
from smart_selection import bbox, cpu_model, iou, load_frame0

from tracker_core.selection import SelectionConfig, SmartSelector

BIASES = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
SHIPPED = BIASES.index(SelectionConfig().fg_bias)


def superpixel_vote(mask: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """``(h, w) bool`` mask, ``(h, w) int`` segments -> each segment takes its majority label."""
    counts = np.bincount(segments.ravel(), minlength=segments.max() + 1)
    fg = np.bincount(segments.ravel(), mask.ravel(), minlength=segments.max() + 1)
    return (fg / np.maximum(counts, 1))[segments] > 0.5


def walker_refine(selector: SmartSelector, band: int, beta: float) -> np.ndarray:
    """The selector's last working-resolution cut re-decided by a random walker in a band of
    ``band`` working px around its boundary; returns the ``(H, W) bool`` full mask."""
    fine = selector._mask
    assert fine is not None
    m = fine.astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1,) * 2)
    labels = np.zeros(m.shape, np.int32)
    labels[cv2.erode(m, kernel) > 0] = 1
    labels[(cv2.dilate(m, kernel) == 0) | ~selector._fine.inside] = 2
    if not (labels == 1).any() or not (labels == 2).any():
        return selector._to_full(fine)
    prob = random_walker(selector._fine.z / 100.0, labels, beta=beta, mode="cg_j", channel_axis=-1)
    return selector._to_full(prob == 1)


def plateau_pick(areas: np.ndarray, hi: int) -> int:
    """Index (1..hi) whose neighbouring biases give the most similar areas."""
    a = areas + 1.0
    score = np.full(len(a), -1.0)
    for i in range(1, min(hi, len(a) - 2) + 1):
        score[i] = min(a[i - 1], a[i + 1]) / max(a[i - 1], a[i + 1])
    return int(np.argmax(score))


def drop_pick(areas: np.ndarray, threshold: float) -> int:
    """The bias after the first area drop larger than ``threshold`` above the shipped one."""
    a = areas + 1.0
    for i in range(SHIPPED, len(a) - 2):
        if a[i + 1] / a[i] < 1 - threshold and a[i + 1] / a[SHIPPED] > 0.3:
            return i + 1
    return SHIPPED


def fill_pick(areas: np.ndarray, box_area: float, fill: float) -> int:
    """The smallest bias from the shipped one up whose mask fills at most ``fill`` of the box
    (stopping before a bias that empties the mask)."""
    i = SHIPPED
    while i < len(areas) - 2 and areas[i] > fill * box_area and areas[i + 1] > 0:
        i += 1
    return i


def superpixels(crop: np.ndarray) -> dict[str, np.ndarray]:
    """``(h, w, 3) uint8`` RGB -> the superpixel segmentations tried, ``(h, w) int`` each."""
    out = {
        f"SLIC {n} compactness {c}": slic(crop, n_segments=n, compactness=c, start_label=0)
        for n, c in ((100, 10), (300, 10), (300, 30), (1000, 10))
    }
    for scale in (50, 200):
        out[f"Felzenszwalb scale {scale}"] = felzenszwalb(crop, scale=scale, sigma=0.8, min_size=20)
    return out


def _appender(rows: dict[str, list[float]]) -> Callable[[str, float], None]:
    def add(name: str, value: float) -> None:
        rows.setdefault(name, []).append(value)

    return add


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", type=Path, nargs="+", help="DAVIS-layout folders")
    parser.add_argument("--threads", type=int, default=0, help="OpenCV threads (0 = all)")
    args = parser.parse_args(argv)
    if args.threads:
        cv2.setNumThreads(args.threads)
    print(f"machine: {cpu_model()}; OpenCV {cv2.__version__}")
    for root in args.roots:
        rows: dict[str, list[float]] = {}
        walker_cpu: list[float] = []
        add = _appender(rows)

        for seq in (root / "sequences.txt").read_text().split():
            image, gt = load_frame0(root, seq)
            box = bbox(gt)
            sweep = []
            for bias in BIASES:
                cfg = dataclasses.replace(SelectionConfig(), fg_bias=bias)
                mask = SmartSelector(image, box, cfg).update()
                sweep.append((iou(mask, gt), float(mask.sum())))
            scores, areas = np.array([s for s, _ in sweep]), np.array([a for _, a in sweep])
            add("shipped", scores[SHIPPED])
            add("oracle fg_bias", float(scores.max()))
            for hi in (5, 6, 7):
                add(f"plateau pick, biases up to {BIASES[hi]}", scores[plateau_pick(areas, hi)])
            for thr in (0.2, 0.3, 0.4):
                add(f"first area drop > {thr:.0%}", scores[drop_pick(areas, thr)])
            selector = SmartSelector(image, box)
            mask = selector.update()
            x0, y0, x1, y1 = selector.box
            for fill in (0.3, 0.4, 0.5, 0.6, 0.7):
                pick = fill_pick(areas, (x1 - x0) * (y1 - y0), fill)
                add(f"fill pick: first bias filling <= {fill:.0%} of the box", scores[pick])
            crop, inner = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
            for name, segments in superpixels(crop).items():
                out = mask.copy()
                out[y0:y1, x0:x1] = superpixel_vote(inner, segments)
                add(name, iou(out, gt))
            for band, beta in ((3, 30.0), (3, 130.0), (3, 500.0), (5, 130.0)):
                c0 = time.process_time()
                out = walker_refine(selector, band, beta)
                walker_cpu.append(time.process_time() - c0)
                add(f"random walker band {band} beta {beta:g}", iou(out, gt))
        base = np.array(rows["shipped"])
        print(f"\n## {root}\n\n| setting | box IoU | helped / hurt |\n|---|---|---|")
        for name, values in rows.items():
            v = np.array(values)
            helped, hurt = int((v > base + 1e-3).sum()), int((v < base - 1e-3).sum())
            print(f"| {name} | {v.mean():.3f} | {helped} / {hurt} |")
        print(
            f"random walker CPU median / max: {1000 * np.median(walker_cpu):.0f} / "
            f"{1000 * max(walker_cpu):.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
