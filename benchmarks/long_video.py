"""Long-video benchmark: annotate a generated 1080p video end to end and watch memory.

Phases (each timed, resident memory sampled every 0.2 s from ``/proc/self/status``):

1. generate: a synthetic 1920x1080 video (``--frames``, default 10,000) of three shapes moving
   over a static textured background, MPEG-4 part 2 (``mp4v``) in ``.mp4`` (inter-frame coded
   like real camera files, so random access must seek to a keyframe and decode forward);
   skipped when the file exists.
2. open: ``VideoSource.open`` (verifies the frame count).
3. scrub: ``frame(i)`` for ``--scrub`` random frames, cache misses, latency per access.
4. paint: new project + Session; the tracked disc's exact mask is set on frame 0, a brush stroke
   adds to it, and a keyframe is painted at ``--propagate + 1`` so the run stops there.
5. propagate: a Session propagation job over ``--propagate`` frames with the weight-free
   ``LabEncoder()``; per-frame time, RSS over time (growth = slope over the run), IoU of the
   propagated disc against its exact mask.
6. save + reopen the project; 7. export DAVIS (every frame) and COCO.

Usage::

    .venv/bin/python benchmarks/long_video.py [--frames 10000] [--propagate 1000]
        [--workdir runs/long_video] [--threads 2] [--json results.json]

Prints a results table (markdown) at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

H, W = 1080, 1920
FPS = 30.0
DISC_RADIUS = 110


# --------------------------------------------------------------------------- the synthetic clip


def disc_centre(t: int) -> tuple[float, float]:
    """``(x, y)`` of the tracked disc in frame ``t``: a slow Lissajous path."""
    return (
        W / 2 + 0.33 * W * math.sin(2 * math.pi * t / 900.0),
        H / 2 + 0.28 * H * math.sin(2 * math.pi * t / 620.0 + 0.7),
    )


def disc_mask(t: int) -> np.ndarray:
    """``(H, W) uint8`` exact mask (id 1) of the disc in frame ``t``."""
    mask = np.zeros((H, W), np.uint8)
    x, y = disc_centre(t)
    cv2.circle(mask, (round(x), round(y)), DISC_RADIUS, 1, -1, cv2.LINE_8)
    return mask


def _background() -> np.ndarray:
    """A static, smooth textured ``(H, W, 3) uint8`` BGR background."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(40, 200, size=(H // 60, W // 60, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    stripes = 20 * np.sin(xx / 37.0)[..., None] * np.cos(yy / 53.0)[..., None]
    return np.clip(smooth + stripes, 0, 255).astype(np.uint8)


def draw_frame(background: np.ndarray, t: int) -> np.ndarray:
    """Frame ``t`` (BGR): a red textured disc (tracked), a blue box and a yellow triangle."""
    frame = background.copy()
    bx = int(W * (0.15 + 0.7 * (0.5 + 0.5 * math.sin(2 * math.pi * t / 400.0))))
    cv2.rectangle(frame, (bx - 90, 120), (bx + 90, 300), (200, 60, 20), -1)
    tx, ty = int(W * 0.8 - 300 * math.sin(t / 150.0)), int(H * 0.75)
    triangle = np.array([[tx, ty - 100], [tx - 90, ty + 80], [tx + 90, ty + 80]], np.int32)
    cv2.fillPoly(frame, [triangle], (30, 210, 230))
    x, y = disc_centre(t)
    centre = (round(x), round(y))
    cv2.circle(frame, centre, DISC_RADIUS, (40, 40, 220), -1, cv2.LINE_8)
    cv2.circle(frame, centre, DISC_RADIUS // 2, (90, 90, 250), 12, cv2.LINE_8)
    cv2.putText(frame, f"{t:05d}", (30, H - 40), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 4)
    return frame


def generate(path: Path, frames: int) -> None:
    """Write the synthetic clip with OpenCV's FFmpeg ``mp4v`` encoder."""
    background = _background()
    writer = cv2.VideoWriter(
        str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H)
    )
    if not writer.isOpened():
        raise RuntimeError(f"cannot write {path}")
    try:
        for t in range(frames):
            writer.write(draw_frame(background, t))
            if t % 1000 == 999:
                print(f"  generated {t + 1}/{frames}", flush=True)
    finally:
        writer.release()


# --------------------------------------------------------------------------- memory sampling


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


@dataclass
class MemorySampler:
    """Samples VmRSS every ``interval`` seconds in a thread, labelled with the current phase."""

    interval: float = 0.2
    phase: str = "start"
    samples: list[tuple[float, str, float]] = field(default_factory=list)  # (t, phase, MiB)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.phase, _status_kib("VmRSS") / 1024))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def peak(self, phase: str) -> float:
        """Highest sampled RSS (MiB) during ``phase``."""
        return max((mib for _, p, mib in self.samples if p == phase), default=float("nan"))


@dataclass
class Results:
    """Rows of the results table: (what, value, target/remark)."""

    rows: list[tuple[str, str, str]] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)

    def add(self, key: str, what: str, value: float, fmt: str, note: str = "") -> None:
        self.numbers[key] = value
        self.rows.append((what, fmt.format(value), note))
        print(f"  {what}: {fmt.format(value)} {note}", flush=True)


@contextmanager
def phase(sampler: MemorySampler, results: Results, name: str) -> Iterator[None]:
    """Label samples with ``name``, and record the phase's wall time and peak RSS."""
    print(f"[{name}]", flush=True)
    sampler.phase = name
    t0 = time.perf_counter()
    yield
    seconds = time.perf_counter() - t0
    time.sleep(sampler.interval * 1.5)  # let the sampler see the end of the phase
    results.add(f"{name}_s", f"{name}: wall time", seconds, "{:.1f} s")
    results.add(f"{name}_peak_mib", f"{name}: peak RSS", sampler.peak(name), "{:.0f} MiB")


# --------------------------------------------------------------------------- the benchmark


def main(argv: list[str] | None = None) -> int:
    """Run every phase and print the table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--propagate", type=int, default=1_000)
    parser.add_argument("--scrub", type=int, default=100)
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "long_video")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--skip-davis", action="store_true", help="skip the DAVIS export")
    args = parser.parse_args(argv)
    if args.propagate + 2 > args.frames:
        parser.error("--propagate must be at most --frames - 2")

    # first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
    import tracker_core  # noqa: F401

    # isort: split
    import torch

    from tracker_core.encoder import LabEncoder
    from tracker_core.export import export_coco, export_davis
    from tracker_core.project import Project
    from tracker_core.session import HistoryLimits, Session
    from tracker_core.video import VideoSource

    torch.set_num_threads(args.threads)
    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    video_path = workdir / f"synthetic_{args.frames}f_1080p.mp4"
    sampler = MemorySampler()
    sampler.start()
    results = Results()

    if not video_path.exists():
        with phase(sampler, results, "generate"):
            partial = video_path.with_name("partial_" + video_path.name)
            generate(partial, args.frames)
            partial.rename(video_path)
    results.add("video_mb", "video file size", video_path.stat().st_size / 1e6, "{:.0f} MB")

    with phase(sampler, results, "open"):
        video = VideoSource.open(video_path)
    results.add("num_frames", "frames (verified count)", len(video), "{:.0f}", f"{W}x{H}")

    with phase(sampler, results, "scrub"):
        rng = random.Random(0)
        latencies = []
        for index in rng.sample(range(len(video)), args.scrub):
            t0 = time.perf_counter()
            video.frame(index)
            latencies.append(1000 * (time.perf_counter() - t0))
    latencies.sort()
    results.add("scrub_p50_ms", "scrub latency p50", statistics.median(latencies), "{:.0f} ms")
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    results.add("scrub_p95_ms", "scrub latency p95", p95, "{:.0f} ms", "(target < 150 ms)")
    results.add("scrub_max_ms", "scrub latency max", latencies[-1], "{:.0f} ms")

    scratch = workdir / "scratch"
    scratch.mkdir(exist_ok=True)
    stop = args.propagate + 1
    with phase(sampler, results, "paint"):
        project = Project.new(
            video_path, len(video), video.height, video.width, scratch_dir=scratch
        )
        session = Session(project, video, encoder=LabEncoder(), history=HistoryLimits())
        disc = session.add_object("disc").id
        session.set_mask(0, disc_mask(0))
        x, y = disc_centre(0)
        session.paint_stroke(0, disc, [(x - 60, y), (x + 60, y + 20)], 40.0)
        session.set_mask(stop, disc_mask(stop))

    rss_by_frame: list[tuple[int, float]] = []
    ious: list[float] = []
    with phase(sampler, results, "propagate"):
        job = session.propagation_job(0, "forward")
        for progress in job:
            if progress.done % 25 == 0:
                rss_by_frame.append((progress.done, _status_kib("VmRSS") / 1024))
                truth = disc_mask(progress.frame).astype(bool)
                got = project.labels(progress.frame).mask == disc
                ious.append(float((truth & got).sum() / max(1, (truth | got).sum())))
            if progress.done % 100 == 0:
                print(
                    f"  {progress.done}/{progress.total} frames, "
                    f"{progress.ms_per_frame:.0f} ms/frame, RSS {rss_by_frame[-1][1]:.0f} MiB",
                    flush=True,
                )
    results.add("propagated", "frames propagated", job.done, "{:.0f}")
    results.add("ms_per_frame", "propagation time", session.last_ms_per_frame or 0, "{:.0f} ms/f")
    if len(rss_by_frame) >= 4:
        frames_done = np.array([f for f, _ in rss_by_frame], np.float64)
        rss = np.array([m for _, m in rss_by_frame], np.float64)
        half = len(rss) // 2
        slope = float(np.polyfit(frames_done[half:], rss[half:], 1)[0]) * 100
        results.add(
            "rss_slope_mib_per_100f", "RSS slope, 2nd half of run", slope, "{:+.1f} MiB/100 frames"
        )
        results.add("rss_first_mib", "RSS after 25 frames", rss[0], "{:.0f} MiB")
        results.add("rss_last_mib", "RSS at end of run", rss[-1], "{:.0f} MiB")
    results.add("mean_iou", "mean IoU of propagated disc", float(np.mean(ious)), "{:.3f}")

    project_file = workdir / "long.trackpaint"
    with phase(sampler, results, "save"):
        session.save(project_file)
    results.add("project_mb", "project file size", project_file.stat().st_size / 1e6, "{:.1f} MB")
    with phase(sampler, results, "reopen"):
        project.close()
        project = Project.open(project_file, scratch_dir=scratch)

    def labelled() -> Iterator[tuple[int, object]]:
        states = project.states()
        for t in np.flatnonzero(states):
            yield int(t), project.labels(int(t))

    if not args.skip_davis:
        with phase(sampler, results, "export_davis"):
            export_davis(workdir / "davis", labelled(), len(video), (H, W), "synthetic")
    with phase(sampler, results, "export_coco"):
        export_coco(
            workdir / "coco.json",
            project.objects,
            labelled(),
            (H, W),
            "synthetic/{:05d}.jpg".format,
            len(video),
        )
    project.close()
    video.close()
    sampler.stop()
    results.add(
        "vmhwm_mib",
        "peak RSS of the whole run (VmHWM)",
        _status_kib("VmHWM") / 1024,
        "{:.0f} MiB",
        "(target < 2048 MiB)",
    )

    print("\n| measure | value | note |\n|---|---|---|")
    for what, value, note in results.rows:
        print(f"| {what} | {value} | {note} |")
    if args.json is not None:
        args.json.write_text(json.dumps(results.numbers, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
