"""Several propagation settings on one DAVIS root in one process (region localisation, issues 10
and 12): every frame is decoded and encoded once, then each setting propagates every sequence
from its frame-0 ground truth through the same features, so the settings' J&F equal
``trackpaint eval`` and their CPU times (``time.process_time`` of the per-frame loop: affinity,
decoding, references; no encoder) are comparable within the run.

    .venv/bin/python benchmarks/region_eval.py ../shared/data/davis-dev --threads 1 \\
        --precision fp32 --setting base: --setting loc:region_localise=true

A setting is ``NAME:field=value,field=value`` (PropagationConfig fields over the fast preset);
the first is the baseline that "helped / hurt" counts against (|difference| >= 0.1 J&F).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch

from tracker_core.encoder import load_encoder
from tracker_core.evaluate import list_sequences, load_ground_truth, score_sequence
from tracker_core.labels import FrameLabels
from tracker_core.propagate import FeatureCache
from tracker_core.propagator import load_propagator, parse_overrides
from tracker_core.video import VideoSource

FRAMES_DIR = ("JPEGImages", "480p")


def parse_setting(text: str) -> tuple[str, dict[str, object]]:
    """``NAME:field=value,...`` -> (name, overrides)."""
    name, _, rest = text.partition(":")
    return name, parse_overrides([p for p in rest.split(",") if p])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--sequences", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--setting", action="append", required=True)
    ap.add_argument("--json", type=Path, default=None, help="write the per-sequence table here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    encoder = load_encoder(None, precision=args.precision)
    settings = [parse_setting(s) for s in args.setting]
    props = [(n, load_propagator(encoder=encoder, overrides=o)) for n, o in settings]
    names = args.sequences.split(",") if args.sequences else list_sequences(args.root)
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for seq in names:
        gts = load_ground_truth(args.root, seq)
        with VideoSource.open(args.root.joinpath(*FRAMES_DIR, seq)) as video:
            frames = [video.frame(i) for i in range(len(video))]
        cache = FeatureCache(8 * 2**30)
        for i, f in enumerate(frames):
            cache.put(i, encoder.encode(f), 0, 1)
        table[seq] = {}
        for name, prop in props:
            preds = [gts[0].copy()] + [np.zeros_like(gts[0]) for _ in frames[1:]]
            t0 = time.process_time()
            refs = {0: FrameLabels(mask=gts[0])}
            for out in prop.propagate(frames.__getitem__, 0, len(frames), refs, {}, cache=cache):
                preds[out.index] = out.labels.mask
            cpu = 1000 * (time.process_time() - t0) / max(1, len(frames) - 1)
            jf = 100 * score_sequence(seq, preds, gts).jf
            table[seq][name] = (jf, cpu)
            print(f"{seq:18s} {name:14s} J&F {jf:5.1f}  {cpu:6.1f} ms CPU/frame", flush=True)
    base = settings[0][0]
    for name, _ in settings:
        jfs = [table[s][name][0] for s in names]
        cpus = [table[s][name][1] for s in names]
        diff = [table[s][name][0] - table[s][base][0] for s in names]
        helped = sum(d >= 0.1 for d in diff)
        hurt = sum(d <= -0.1 for d in diff)
        print(
            f"MEAN {name:14s} J&F {np.mean(jfs):5.2f}  helped/hurt/equal {helped}/{hurt}/"
            f"{len(names) - helped - hurt}  {np.mean(cpus):6.1f} ms CPU/frame",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
