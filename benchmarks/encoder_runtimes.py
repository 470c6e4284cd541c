"""The shipped encoder on one 480p frame under each CPU runtime: ms (median) and cosine to fp32.

    .venv/bin/python benchmarks/encoder_runtimes.py --threads 2 [--repeat 9]

Rows: torch eager fp32, channels-last, torch.jit.trace, ONNX Runtime fp32 (the shipped graph),
ONNX Runtime int8 (the shipped quantised graph), and bf16 autocast (fast only on CPUs with
native bf16, emulated elsewhere). Every runtime runs the same ``EncoderGraph`` (Lab in, unit
features out); the runs are interleaved so a noisy machine slows all of them alike.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch

from tracker_core.encoder import DEFAULT_MODEL, EncoderGraph, lab_image
from tracker_core.nets import load_net
from tracker_core.runtime import cpu_description, int8_session, onnx_session, run_session
from tracker_core.video import VideoSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--frame", default="../shared/data/davis-dev/JPEGImages/480p/bear")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with VideoSource.open(args.frame) as video:
        lab = np.ascontiguousarray(lab_image(video.frame(10))[None])
    net, _ = load_net(DEFAULT_MODEL)
    graph = EncoderGraph(net).eval()
    x = torch.from_numpy(lab)
    example = torch.from_numpy(lab[:, :64, :64].copy())
    fp32 = onnx_session(graph, net, example, DEFAULT_MODEL, args.threads)
    int8 = int8_session(net, DEFAULT_MODEL, args.threads)
    with torch.inference_mode():
        ref = graph(x)
        traced = torch.jit.trace(graph, x)
        last = EncoderGraph(net).eval().to(memory_format=torch.channels_last)

        def bf16() -> torch.Tensor:
            with torch.autocast("cpu", torch.bfloat16):
                return graph(x).float()

        runs: dict[str, Callable[[], torch.Tensor]] = {
            "torch eager fp32": lambda: graph(x),
            "torch channels-last fp32": lambda: last(x),
            "torch.jit.trace fp32": lambda: traced(x),
            "ONNX Runtime fp32": lambda: torch.from_numpy(run_session(fp32, lab)),
            "ONNX Runtime int8": lambda: torch.from_numpy(run_session(int8, lab)),
            "torch bf16 autocast": bf16,
        }
        times: dict[str, list[float]] = {k: [] for k in runs}
        outs: dict[str, torch.Tensor] = {k: f() for k, f in runs.items()}  # warm-up
        for _ in range(args.repeat):
            for name, run in runs.items():
                t0 = time.perf_counter()
                run()
                times[name].append(1000 * (time.perf_counter() - t0))
    print(f"# {cpu_description()} | threads {args.threads} | input {tuple(lab.shape[1:3])}")
    print("| runtime | ms (median) | min | cosine to fp32 (min / mean) |\n|---|---|---|---|")
    for name in runs:
        cos = torch.nn.functional.cosine_similarity(outs[name].float(), ref, dim=1)
        print(
            f"| {name} | {np.median(times[name]):.1f} | {min(times[name]):.1f} | "
            f"{float(cos.min()):.4f} / {float(cos.mean()):.5f} |"
        )


if __name__ == "__main__":
    main()
