"""Peak RSS while propagating through a long generated 1080p video: it must stay flat (< 2 GB).

    .venv/bin/python benchmarks/memory.py --frames 3000 [--propagate 3000] [--video PATH]
        [--size 1920x1080] [--threads N]

Generates (once, at ``--size``) an MJPG video of moving textured shapes, propagates a mask from
frame 0 with the default encoder, writes every mask to disk through ``write_indexed_png`` (as the
CLI does), and samples the process RSS every 0.2 s. Prints RSS (and CPU time per frame, load
average) after each tenth of the run and the peak.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch

from tracker_core.encoder import load_encoder
from tracker_core.labels import FrameLabels
from tracker_core.masks import write_indexed_png
from tracker_core.propagator import load_propagator
from tracker_core.video import VideoSource


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_video(path: Path, frames: int, h: int = 1080, w: int = 1920) -> np.ndarray:
    """Write a synthetic MJPG video; return frame 0's object mask (H, W) uint8. The moving
    square is 320 px at 1080p and scales with the height."""
    rng = np.random.default_rng(0)
    bg = cv2.resize(
        rng.integers(0, 255, (h // 16, w // 16, 3), np.uint8), (w, h), cv2.INTER_NEAREST
    )
    side = max(16, round(320 * h / 1080))
    tex = cv2.resize(rng.integers(0, 255, (20, 20, 3), np.uint8), (side, side), cv2.INTER_NEAREST)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (w, h))
    first = np.zeros((h, w), np.uint8)
    for t in range(frames):
        x = int((w - side) * (0.5 + 0.5 * np.sin(t / 40)))
        y = int((h - side) * (0.5 + 0.5 * np.cos(t / 57)))
        img = bg.copy()
        img[y : y + side, x : x + side] = tex
        if t == 0:
            first[y : y + side, x : x + side] = 1
        writer.write(img)
    writer.release()
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--propagate", type=int, default=0, help="frames to propagate (0 = all)")
    parser.add_argument("--video", type=Path, default=Path(tempfile.gettempdir()) / "tp_long.avi")
    parser.add_argument("--model", default=None)
    parser.add_argument("--size", default="1920x1080", help="WxH of a generated video")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    mask_path = args.video.with_suffix(".mask.npy")
    if not args.video.exists() or not mask_path.exists():
        t0 = time.perf_counter()
        np.save(mask_path, make_video(args.video, args.frames, h, w))
        print(f"generated {args.frames} frames in {time.perf_counter() - t0:.0f} s")
    first = np.load(mask_path)
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), rss_mb()))
            time.sleep(0.2)

    threading.Thread(target=sampler, daemon=True).start()
    encoder = load_encoder(args.model)
    out = Path(tempfile.mkdtemp(prefix="tp_masks_"))
    with VideoSource.open(args.video) as video:
        n = min(len(video), args.propagate or len(video))
        print(f"video {video.width}x{video.height}, {len(video)} frames; propagating {n}")
        refs = {0: FrameLabels(mask=first)}
        marks = {int(n * k / 10) for k in range(1, 11)}
        t0, c0 = time.perf_counter(), time.process_time()
        propagator = load_propagator(encoder=encoder)
        for res in propagator.propagate(video.frame, 0, n, refs, {}, cache=propagator.new_cache()):
            write_indexed_png(out / f"{res.index:05d}.png", res.labels.mask)
            if res.index + 1 in marks:
                rate = (res.index) / (time.perf_counter() - t0)
                cpu_ms = 1000 * (time.process_time() - c0) / res.index
                print(
                    f"frame {res.index + 1:5d}: RSS {rss_mb():7.1f} MiB ({rate:.2f} frames/s, "
                    f"{cpu_ms:.0f} ms CPU/frame, load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        size = f"{video.width}x{video.height}"
    stop.set()
    peak = max(r for _, r in samples)
    print(f"peak RSS {peak:.1f} MiB over {n} frames at {size} ({encoder.name})")


if __name__ == "__main__":
    main()
