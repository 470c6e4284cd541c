"""What the damaged-frame checks cost: decoding with and without them.

For a DAVIS frame folder (JPEG) and the same frames as an MJPG AVI, times opening and decoding
every frame in order (a) with plain OpenCV (``cv2.imdecode`` / ``VideoCapture.read`` + RGB
conversion), (b) through ``VideoSource`` with the stderr capture replaced by a no-op (the checks
off), and (c) through ``VideoSource`` as shipped (decoder stderr captured per call, damage
classified). Best of ``--repeats`` runs, ms per frame; "checks cost" is (c) against (b).

    .venv/bin/python benchmarks/decode_checks.py ../shared/data/davis-dev --repeats 11

It also times one empty capture (redirect + restore of descriptor 2 and reading the temporary
file), the fixed cost the checks add per decoder call (1 call per image, 2 per video frame:
grab and retrieve), which is less sensitive to machine load than whole decodes.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from tracker_core import video as video_module
from tracker_core.native_log import capture_native_stderr
from tracker_core.video import VideoSource, list_frame_files


def best_ms_per_frame(fns: list[Callable[[], int]], repeats: int) -> list[float]:
    """Run each ``fn`` (returns frames decoded) ``repeats`` times, interleaved so a change in
    machine load hits all alike; the best ms per frame of each."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            n = fn()
            best[i] = min(best[i], (time.perf_counter() - t0) * 1000 / max(n, 1))
    return best


def plain_folder(folder: Path) -> int:
    files = list_frame_files(folder)
    for f in files:
        bgr = cv2.imdecode(np.fromfile(f, np.uint8), cv2.IMREAD_COLOR)
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return len(files)


def plain_video(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        n += 1
    cap.release()
    return n


@contextlib.contextmanager
def no_capture():  # type: ignore[no-untyped-def]
    yield []


def unchecked(path: Path) -> int:
    real = video_module.capture_native_stderr
    video_module.capture_native_stderr = no_capture
    try:
        with VideoSource.open(path, cache_size=0) as video:
            for _ in video:
                pass
            return len(video)
    finally:
        video_module.capture_native_stderr = real


def checked(path: Path) -> int:
    with VideoSource.open(path, cache_size=0) as video:
        for _ in video:
            pass
        assert video.damaged == (), video.damaged
        return len(video)


def capture_us(calls: int = 2000, batches: int = 7) -> float:
    """Best µs per empty ``capture_native_stderr()`` over ``batches`` batches of ``calls``."""
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            with capture_native_stderr():
                pass
        best = min(best, (time.perf_counter() - t0) * 1e6 / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("davis_root", type=Path)
    parser.add_argument("--sequences", default="bear,bus,car-turn")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"empty capture: {capture_us():.1f} µs per decoder call\n")
    print("| source | frames | plain OpenCV | VideoSource, checks off | as shipped | checks cost |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sequences.split(","):
            folder = args.davis_root / "JPEGImages" / "480p" / name
            files = list_frame_files(folder)
            first = cv2.imread(str(files[0]))
            avi = Path(tmp) / f"{name}.avi"
            writer = cv2.VideoWriter(
                str(avi),
                cv2.CAP_FFMPEG,
                cv2.VideoWriter_fourcc(*"MJPG"),
                25,
                (first.shape[1], first.shape[0]),
            )
            for f in files:
                writer.write(cv2.imread(str(f)))
            writer.release()
            for label, plain, src in (
                (f"{name} JPEG folder", plain_folder, folder),
                (f"{name} MJPG .avi", plain_video, avi),
            ):
                a, b, c = best_ms_per_frame(
                    [
                        lambda p=plain, s=src: p(s),
                        lambda s=src: unchecked(s),
                        lambda s=src: checked(s),
                    ],
                    args.repeats,
                )
                cost = f"{1000 * (c - b):+.0f} µs ({100 * (c - b) / b:+.0f} %)"
                print(f"| {label} | {len(files)} | {a:.2f} | {b:.2f} | {c:.2f} | {cost} |")


if __name__ == "__main__":
    main()
