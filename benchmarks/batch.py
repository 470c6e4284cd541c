"""Batch pre-labelling throughput: 1 vs 2 local workers, local pool vs Ray, per-item overhead.

    .venv/bin/python benchmarks/batch.py ../shared/data/davis-dev [--model lab] [--frames 30]
        [--runs local1,local2,ray2]

Builds a manifest of every sequence of a DAVIS-layout root (video = ``JPEGImages/480p/<seq>``,
mask = ``Annotations/480p/<seq>/00000.png``; with ``--frames K`` the first K frames of each are
copied to a temporary folder first) and runs :func:`tracker_core.batch.run_batch` -- what
``trackpaint batch`` runs -- once per runner, each into a fresh output folder:

- ``local1``: one worker in this process with every core as torch threads;
- ``local2``: two pool processes, cores // 2 threads each;
- ``ray2``: a local Ray instance (``ray.init(num_cpus=cores)``, started before the clock;
  its start-up is reported separately), one task per video with ``num_cpus=1``.

Reported per runner: wall time, frames/s, the propagation compute inside the items
(sum of frames x ms/frame), the per-item time outside propagation in the worker (model load,
decode, project write, state file), and the dispatch overhead (wall - busy time / concurrency).
Then a re-run where every item is up to date (the cost of a resume per item), and whether every
runner wrote identical masks.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from tracker_core.batch import BatchItem, BatchSettings, ItemResult, run_batch
from tracker_core.encoder import native_bf16
from tracker_core.prelabel import Seed
from tracker_core.project import Project


def machine() -> str:
    """lscpu model name + whether the CPU has avx512_bf16."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in text.splitlines() if "Model name" in ln), "?"
        )
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor() or "?"
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return f"{model}, avx512_bf16 {'yes' if 'avx512_bf16' in flags else 'no'}"


def build_items(root: Path, work: Path, frames: int | None) -> list[BatchItem]:
    """One item per sequence of ``root`` (``sequences.txt`` or the JPEGImages folders)."""
    listing = root / "sequences.txt"
    jpegs = root / "JPEGImages" / "480p"
    names = (
        listing.read_text().split() if listing.exists() else sorted(p.name for p in jpegs.iterdir())
    )
    items = []
    for name in names:
        video = jpegs / name
        if frames is not None:
            copy = work / "frames" / name
            copy.mkdir(parents=True)
            for f in sorted(video.iterdir())[:frames]:
                shutil.copy2(f, copy / f.name)
            video = copy
        mask = root / "Annotations" / "480p" / name / "00000.png"
        items.append(BatchItem(name, video, Seed("mask", mask, 0)))
    return items


def project_masks(path: Path) -> np.ndarray:
    with Project.open(path) as project:
        return np.stack([project.labels(i).mask for i in range(project.num_frames)])


def report(label: str, wall: float, results: list[ItemResult], concurrency: int) -> str:
    frames = sum(r.frames for r in results)
    compute = sum(r.propagated * r.ms_per_frame for r in results) / 1000
    busy = sum(r.seconds for r in results)
    outside = (busy - compute) / len(results)
    dispatch = wall - busy / concurrency
    failed = [r for r in results if r.failed]
    line = (
        f"| {label} | {len(results)} | {frames} | {wall:.1f} | {frames / wall:.2f} | "
        f"{compute:.1f} | {outside:.2f} | {dispatch:.1f} |"
    )
    if failed:
        line += f" FAILED: {[r.status for r in failed]}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("davis_root", type=Path)
    parser.add_argument("--model", default=None, help="'lab' or a checkpoint (default: bundled)")
    parser.add_argument("--frames", type=int, default=None, help="first K frames of each")
    parser.add_argument("--runs", default="local1,local2,ray2")
    parser.add_argument("--cores", type=int, default=2, help="cores to use (this machine: 2)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=None)
    parser.add_argument("--keep", type=Path, default=None, help="write outputs here, keep them")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="trackpaint-batch-bench-"))
    try:
        items = build_items(args.davis_root, work, args.frames)
        precision = args.precision or ("bf16" if native_bf16() else "fp32")  # as the CLI
        out_root = args.keep or work / "out"
        print(
            f"machine: {machine()}; {args.cores} cores; model {args.model or 'bundled'}, "
            f"{precision}"
        )
        print(f"{len(items)} sequences, frames: {'all' if args.frames is None else args.frames}")
        print(
            "| runner | items | frames | wall s | frames/s | propagation s | "
            "per-item s outside propagation | dispatch overhead s |"
        )
        print("|---|---|---|---|---|---|---|---|")
        outs: dict[str, Path] = {}
        ray = None
        for run in [r for r in args.runs.split(",") if r]:
            settings = BatchSettings(out=out_root / run, model=args.model, precision=precision)
            manifest = work / "manifest.csv"
            manifest.touch()
            kwargs: dict = {}
            if run == "local1":
                kwargs, concurrency = {"workers": 1, "threads": args.cores}, 1
            elif run == "local2":
                kwargs, concurrency = {"workers": 2, "threads": max(1, args.cores // 2)}, 2
            elif run == "ray2":
                import ray as ray_module

                ray = ray_module
                t0 = time.perf_counter()
                ray.init(num_cpus=args.cores, include_dashboard=False, log_to_driver=False)
                print(f"(ray.init(num_cpus={args.cores}): {time.perf_counter() - t0:.1f} s)")
                kwargs = {"ray_address": "auto", "ray_cpus": 1.0}
                concurrency = args.cores
            else:
                raise SystemExit(f"unknown run {run!r}")
            t0 = time.perf_counter()
            results = run_batch(items, settings, manifest=manifest, **kwargs)
            wall = time.perf_counter() - t0
            print(report(run, wall, results, concurrency), flush=True)
            outs[run] = settings.out
            t0 = time.perf_counter()
            again = run_batch(items, settings, manifest=manifest, **kwargs)
            wall = time.perf_counter() - t0
            skipped = sum(r.status.startswith("skipped") for r in again)
            print(
                f"|   {run} re-run, {skipped}/{len(again)} up to date | | | {wall:.2f} | | | "
                f"{wall / len(again):.3f} per item | |",
                flush=True,
            )
        if ray is not None:
            ray.shutdown()
        runs = list(outs)
        for i, first in enumerate(runs):
            for other in runs[i + 1 :]:
                diff = total = 0
                for item in items:
                    name = f"{item.name}/{item.name}.trackpaint"
                    a, b = project_masks(outs[first] / name), project_masks(outs[other] / name)
                    diff += int((a != b).sum())
                    total += a.size
                verdict = "identical masks" if diff == 0 else f"{diff} of {total} pixels differ"
                print(f"{first} vs {other}: {verdict} ({len(items)} sequences)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
