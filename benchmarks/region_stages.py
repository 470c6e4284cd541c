"""CPU time of the region-localised affinity and of the whole per-frame loop (encoder excluded),
this tree's ``tracker_core.propagate`` against a baseline copy of that module, in one process.

    git show HEAD:tracker_core/propagate.py > /tmp/propagate_base.py
    .venv/bin/python benchmarks/region_stages.py ../shared/data/davis-dev \\
        --baseline /tmp/propagate_base.py --sequences bear,dog-agility --threads 1

Per sequence: the fast preset (region localisation on) runs ``--frames`` frames from frame 0's
mask with features encoded beforehand (the fp32 encoder, outside the clock). The soft labels
and masks of every frame of the two modules are compared (max abs difference; equal masks).
The call of ``local_affinity_copy`` at frame ``--capture`` (with its per-tile reference sets)
is kept and timed alone (median and min of ``--repeat`` interleaved calls,
``time.process_time``), then the whole loop per frame (median and min of ``--loops``
interleaved runs). ``--with-off``: also this tree with region localisation off in that
interleaving (its own outputs, so only its time is printed).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch
from affinity_stages import (  # the script's folder
    capture,
    comparison_parser,
    interleaved,
    modules_to_compare,
    prepared,
)

import tracker_core.propagate as current
from tracker_core.encoder import Encoder, load_encoder


def bench_sequence(
    root: Path, seq: str, mods: dict[str, ModuleType], enc: Encoder, args: argparse.Namespace
) -> None:
    """Time both modules on one sequence and print their rows."""
    frames, fake, refs = prepared(root, seq, args.frames, enc)

    def results(mod: ModuleType, localise: bool = True) -> list:
        cfg = mod.PropagationConfig(region_localise=localise)
        return list(mod.propagate(frames.__getitem__, 0, len(frames), refs, {}, fake, cfg))

    out = {n: results(m) for n, m in mods.items()}
    diff = max(
        float((a.soft - b.soft).abs().max()) for a, b in zip(out["baseline"], out["current"])
    )
    same = all(
        np.array_equal(a.labels.mask, b.labels.mask)
        for a, b in zip(out["baseline"], out["current"])
    )
    at = min(args.capture, len(frames) - 1)
    kept = {n: capture(m, lambda m=m: results(m), at)["affinity"] for n, m in mods.items()}
    n_regions = len(kept["current"][1].get("regions", ()))
    aff = interleaved(
        [
            lambda m=m, n=n: m.local_affinity_copy(*kept[n][0], **kept[n][1])
            for n, m in mods.items()
        ],
        args.repeat,
    )
    loops = [lambda m=m: results(m) for m in mods.values()]
    if args.with_off:
        loops.append(lambda: results(current, localise=False))
    per_frame = [
        (med / (len(frames) - 1), low / (len(frames) - 1))
        for med, low in interleaved(loops, args.loops)
    ]
    for name, (a, f) in zip(mods, zip(aff, per_frame)):
        print(
            f"{seq:16s} {name:8s} affinity@{at} {a[0]:6.1f} (min {a[1]:6.1f}) ms"
            f" | loop {f[0]:6.1f} (min {f[1]:6.1f}) ms/frame"
        )
    if args.with_off:
        off = per_frame[-1]
        print(
            f"{seq:16s} current, localisation off: loop {off[0]:6.1f} (min {off[1]:6.1f}) ms/frame"
        )
    print(
        f"{seq:16s} soft max |diff| {diff:.1e} over {len(frames) - 1} frames; masks equal: {same};"
        f" translated sets at the captured frame: {n_regions}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    seqs = "bear,dog-agility,soccerball,motocross-bumps"
    parser = comparison_parser(__doc__, seqs, 40, "frame whose affinity is timed")
    parser.add_argument("--with-off", action="store_true", help="also time localisation off")
    args = parser.parse_args(argv)
    mods = modules_to_compare(args)
    enc = load_encoder(None, precision="fp32")
    print(f"# load average {os.getloadavg()} | torch threads {torch.get_num_threads()}")
    for seq in [s for s in args.sequences.split(",") if s]:
        bench_sequence(args.davis_root, seq, mods, enc, args)
    print(f"# load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
