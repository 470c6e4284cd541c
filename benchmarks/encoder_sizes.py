"""Encoder architectures on one 480p frame, ONNX Runtime fp32, in one process: GMAC and ms.

    .venv/bin/python benchmarks/encoder_sizes.py --threads 2 [--repeat 9] \\
        [--arch '{"widths": [24, 48, 64], "blocks": [0, 0, 3]}' ...] [--model ckpt.pt ...]

The first row is ``--baseline`` (default: the bundled model); every ``--arch`` is a TrackNet config
with random weights (speed does not depend on the values) and every ``--model`` a checkpoint.
All graphs are the ``EncoderGraph`` the propagator runs (Lab in, unit features out); the runs are
interleaved so a noisy machine slows all of them alike. Also reports CPU time per pass
(``time.process_time``), which is less sensitive to other jobs than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch
from torch import nn

from tracker_core.encoder import DEFAULT_MODEL, EncoderGraph, lab_image
from tracker_core.nets import NetConfig, TrackNet, load_net
from tracker_core.runtime import cpu_description, export_onnx, ort_session, run_session
from tracker_core.video import VideoSource


def conv_macs(net: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every Conv2d in ``net`` on input ``x`` (1, 3, H, W)."""
    total = 0

    def hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        per_out = kh * kw * module.in_channels // module.groups
        total += per_out * output.numel()

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        net(x)
    for h in handles:
        h.remove()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--arch", action="append", default=[], help="NetConfig JSON")
    parser.add_argument("--model", action="append", default=[], help="checkpoint path")
    parser.add_argument("--baseline", default=str(DEFAULT_MODEL), help="first row's checkpoint")
    parser.add_argument("--frame", default="../shared/data/davis-dev/JPEGImages/480p/bear")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with VideoSource.open(args.frame) as video:
        lab = np.ascontiguousarray(lab_image(video.frame(10))[None])
    baseline = f"{os.path.basename(args.baseline)} (baseline)"
    nets: dict[str, nn.Module] = {baseline: load_net(args.baseline)[0]}
    for spec in args.arch:
        torch.manual_seed(0)
        nets[spec] = TrackNet(NetConfig.from_dict(json.loads(spec))).eval()
    for path in args.model:
        nets[os.path.basename(path)] = load_net(path)[0]
    x = torch.from_numpy(lab).permute(0, 3, 1, 2)
    example = torch.zeros(1, 64, 64, 3)
    sessions = {
        k: ort_session(export_onnx(EncoderGraph(n).eval(), example, "bench"), args.threads)
        for k, n in nets.items()
    }
    wall: dict[str, list[float]] = {k: [] for k in nets}
    cpu: dict[str, list[float]] = {k: [] for k in nets}
    for session in sessions.values():
        run_session(session, lab)  # warm-up
    for _ in range(args.repeat):
        for name, session in sessions.items():
            c0, t0 = time.process_time(), time.perf_counter()
            run_session(session, lab)
            wall[name].append(1000 * (time.perf_counter() - t0))
            cpu[name].append(1000 * (time.process_time() - c0))
    base, base_cpu = np.median(wall[baseline]), np.median(cpu[baseline])
    print(f"# {cpu_description()} | threads {args.threads} | input {tuple(lab.shape[1:3])}")
    print(f"# load average {os.getloadavg()[0]:.2f} at the end")
    print(
        "| encoder | params (M) | GMAC | ms (median) | min | CPU ms (median) "
        "| wall / CPU vs baseline |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, net in nets.items():
        params = sum(p.numel() for p in net.parameters()) / 1e6
        gmac = conv_macs(net, x) / 1e9
        med = np.median(wall[name])
        print(
            f"| {name} | {params:.2f} | {gmac:.2f} | {med:.1f} | {min(wall[name]):.1f} | "
            f"{np.median(cpu[name]):.1f} | {med / base:.2f} / "
            f"{np.median(cpu[name]) / base_cpu:.2f} |"
        )


if __name__ == "__main__":
    main()
