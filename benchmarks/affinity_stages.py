"""CPU time of the affinity, decoding and the whole per-frame loop (encoder excluded), this
tree's ``tracker_core.propagate`` against a baseline copy of that module, in one process.

    git show 8ff7cd2:tracker_core/propagate.py > /tmp/propagate_base.py
    .venv/bin/python benchmarks/affinity_stages.py ../shared/data/davis-dev \\
        --baseline /tmp/propagate_base.py --sequences bear,dog-agility --threads 1

Per sequence: the fast preset runs ``--frames`` frames from frame 0's mask with features encoded
beforehand (the fp32 encoder, outside the clock); the inputs of ``local_affinity_copy`` and
``decode_labels`` at frame ``--capture`` are kept and each is timed alone (median and min of
``--repeat`` interleaved calls, ``time.process_time``), then the whole loop per frame. Outputs
of the two modules are compared (max abs difference of the affinity, equal masks).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch

import tracker_core.propagate as current
from tracker_core.encoder import Encoder, load_encoder
from tracker_core.evaluate import load_ground_truth
from tracker_core.labels import FrameLabels
from tracker_core.video import VideoSource


def load_module(path: Path) -> ModuleType:
    """A propagate.py of another commit, imported under its own name."""
    spec = importlib.util.spec_from_file_location("propagate_baseline", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


class Precomputed:
    """An encoder that returns features computed before the clock starts."""

    def __init__(self, frames: list[np.ndarray], feats: list[torch.Tensor], stride: int) -> None:
        self._by_id = {id(f): x for f, x in zip(frames, feats)}
        self.stride = stride

    def encode(self, frame: np.ndarray) -> torch.Tensor:
        return self._by_id[id(frame)]


def prepared(
    root: Path, seq: str, n_frames: int, enc: Encoder
) -> tuple[list[np.ndarray], Precomputed, dict[int, FrameLabels]]:
    """The first ``n_frames`` frames of a DAVIS sequence, their features encoded beforehand
    (outside any clock) and frame 0's ground truth as the only keyframe."""
    with VideoSource.open(root / "JPEGImages" / "480p" / seq) as video:
        frames = [video.frame(i) for i in range(min(n_frames, len(video)))]
    fake = Precomputed(frames, [enc.encode(f) for f in frames], enc.stride)
    return frames, fake, {0: FrameLabels(mask=load_ground_truth(root, seq)[0])}


def capture(mod: ModuleType, run: Callable[[], None], at: int) -> dict[str, tuple]:
    """Run ``run`` with ``mod``'s affinity and decoder wrapped; keep their call at frame ``at``."""
    kept: dict[str, tuple] = {}
    calls = {"n": 0}
    lac, dec = mod.local_affinity_copy, mod.decode_labels

    def lac_wrap(*a, **k):
        calls["n"] += 1
        if calls["n"] == at:
            kept["affinity"] = (a, k)
        return lac(*a, **k)

    def dec_wrap(*a, **k):
        if calls["n"] == at:
            kept["decode"] = (a, k)
        return dec(*a, **k)

    mod.local_affinity_copy, mod.decode_labels = lac_wrap, dec_wrap
    try:
        run()
    finally:
        mod.local_affinity_copy, mod.decode_labels = lac, dec
    return kept


def interleaved(fns: Sequence[Callable[[], object]], repeat: int) -> list[tuple[float, float]]:
    """(median, min) CPU ms of each function, calls interleaved."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for t, fn in zip(times, fns):
            t0 = time.process_time()
            fn()
            t.append(1000 * (time.process_time() - t0))
    return [(float(np.median(t)), min(t)) for t in times]


def bench_sequence(
    root: Path, seq: str, mods: dict[str, ModuleType], enc: Encoder, args: argparse.Namespace
) -> None:
    """Time both modules on one sequence and print their rows."""
    frames, fake, refs = prepared(root, seq, args.frames, enc)

    def loop(mod: ModuleType) -> list[np.ndarray]:
        it = mod.propagate(frames.__getitem__, 0, len(frames), refs, {}, fake)
        return [r.labels.mask for r in it]

    # each module's own references (same memory, each in its own layout)
    kept = {n: capture(m, lambda m=m: loop(m), args.capture) for n, m in mods.items()}
    out = {n: m.local_affinity_copy(*kept[n]["affinity"][0]) for n, m in mods.items()}
    diff = float((out["baseline"] - out["current"]).abs().max())
    aff = interleaved(
        [lambda m=m, n=n: m.local_affinity_copy(*kept[n]["affinity"][0]) for n, m in mods.items()],
        args.repeat,
    )
    dec = interleaved(
        [lambda m=m, n=n: m.decode_labels(*kept[n]["decode"][0]) for n, m in mods.items()],
        args.repeat,
    )
    masks = {n: loop(m) for n, m in mods.items()}
    same = all(np.array_equal(a, b) for a, b in zip(masks["baseline"], masks["current"]))
    per_frame = [
        (med / (len(frames) - 1), low / (len(frames) - 1))
        for med, low in interleaved([lambda m=m: loop(m) for m in mods.values()], args.loops)
    ]
    for name, (a, d, f) in zip(mods, zip(aff, dec, per_frame)):
        print(
            f"{seq:14s} {name:8s} affinity {a[0]:6.1f} (min {a[1]:6.1f}) | decode {d[0]:5.1f}"
            f" (min {d[1]:5.1f}) | loop ms/frame {f[0]:6.1f} (min {f[1]:6.1f})"
        )
    print(f"{seq:14s} affinity max |diff| {diff:.1e}; masks of all frames equal: {same}")


def comparison_parser(
    doc: str, sequences: str, frames: int, capture_help: str
) -> argparse.ArgumentParser:
    """The options of a baseline-vs-current timing script (this one and region_stages.py)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("davis_root", type=Path)
    parser.add_argument("--baseline", type=Path, required=True, help="an older propagate.py")
    parser.add_argument("--sequences", default=sequences)
    parser.add_argument("--frames", type=int, default=frames)
    parser.add_argument("--capture", type=int, default=20, help=capture_help)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--loops", type=int, default=3, help="whole-loop runs per module")
    parser.add_argument("--threads", type=int, default=1)
    return parser


def modules_to_compare(args: argparse.Namespace) -> dict[str, ModuleType]:
    """Set torch's and OpenCV's threads from ``args``; the baseline and current modules."""
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    return {"baseline": load_module(args.baseline), "current": current}


def main(argv: Sequence[str] | None = None) -> None:
    parser = comparison_parser(__doc__, "bear,dog-agility", 25, "frame whose inputs are timed")
    args = parser.parse_args(argv)
    mods = modules_to_compare(args)
    enc = load_encoder(None, precision="fp32")
    print(f"# load average {os.getloadavg()} | torch threads {torch.get_num_threads()}")
    for seq in [s for s in args.sequences.split(",") if s]:
        bench_sequence(args.davis_root, seq, mods, enc, args)
    print(f"# load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
