"""`trackpaint` command line: propagate, eval, eval-keypoints, export, train.

Every user-facing failure prints one line ``trackpaint: error: <file>: <problem>`` on stderr and
exits with status 2; nothing already written by the user is modified.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from tracker_core.encoder import Encoder, load_encoder
from tracker_core.errors import ExportError, MaskError, TrackpaintError
from tracker_core.labels import FrameLabels
from tracker_core.masks import load_mask, write_indexed_png
from tracker_core.propagate import PropagationConfig
from tracker_core.propagator import (
    DEFAULT_PRESET,
    PRESETS,
    Propagator,
    load_propagator,
    preset_config,
)
from tracker_core.video import VideoSource

EXIT_ERROR = 2


# ------------------------------------------------------------------------------ helpers


PROTOCOL_OPTIONS = ("radius", "keyframe_radius", "topk", "temperature", "n_recent", "refine_radius")


def add_protocol_args(parser: argparse.ArgumentParser) -> None:
    """Preset choice and the options that override it (defaults: the preset's values)."""
    d = PRESETS[DEFAULT_PRESET]
    g = parser.add_argument_group("propagation protocol")
    g.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=DEFAULT_PRESET,
        help="propagation preset (the options below override it)",
    )
    g.add_argument("--radius", type=int, help=f"window radius, grid cells ({d.radius})")
    g.add_argument("--keyframe-radius", type=int, help=f"({d.keyframe_radius})")
    g.add_argument("--topk", type=int, help=f"({d.topk})")
    g.add_argument("--temperature", type=float, help=f"({d.temperature})")
    g.add_argument("--n-recent", type=int, help=f"recent frames in memory ({d.n_recent})")
    g.add_argument(
        "--refine-radius", type=int, help=f"guided filter, px, 0 = off ({d.refine_radius})"
    )
    g.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "int8"),
        default="auto",
        help="encoder arithmetic on a CPU (auto: native bf16, else shipped int8, else fp32)",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model checkpoint, or 'lab' for the weight-free colour encoder (default: bundled)",
    )
    parser.add_argument("--lab-weight", type=float, default=None, help="colour fusion weight")


def protocol_from_args(args: argparse.Namespace) -> PropagationConfig:
    """The chosen preset's PropagationConfig with the options given on the command line."""
    given = {k: getattr(args, k) for k in PROTOCOL_OPTIONS if getattr(args, k) is not None}
    try:
        return preset_config(args.preset, given)
    except ValueError as exc:  # e.g. --temperature 0
        raise TrackpaintError(f"--preset {args.preset}: {exc}") from exc


def encoder_from_args(args: argparse.Namespace) -> Encoder:
    """Load the encoder named by ``--model`` (and set the torch thread count)."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return load_encoder(args.model, lab_weight=args.lab_weight, precision=args.precision)


def propagator_from_args(args: argparse.Namespace) -> Propagator:
    """The propagator for ``--preset`` with the protocol options and ``--model`` applied."""
    cfg = protocol_from_args(args)
    encoder = encoder_from_args(args)
    return load_propagator(args.preset, encoder=encoder, overrides=dataclasses.asdict(cfg))


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` if needed and prove it is writable; raise ExportError otherwise."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".trackpaint-probe-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ExportError(
            f"output directory is not writable ({exc.strerror or exc})", path
        ) from exc
    return path


# ------------------------------------------------------------------------------ propagate


def run_propagate(args: argparse.Namespace) -> int:
    """Propagate an initial mask through a whole video; write DIR/NNNNN.png for every frame."""
    propagator = propagator_from_args(args)
    with VideoSource.open(args.source) as video:
        n = len(video)
        if not 0 <= args.init_frame < n:
            raise MaskError(f"--init-frame {args.init_frame} is outside 0..{n - 1}", args.source)
        mask = load_mask(args.init, expected_hw=(video.height, video.width))
        if not mask.any():
            raise MaskError("initial mask is empty (no object pixels)", args.init)
        out = ensure_writable_dir(Path(args.out))
        refs = {args.init_frame: FrameLabels(mask=mask)}
        write_indexed_png(out / f"{args.init_frame:05d}.png", mask)
        seconds, count = 0.0, 0
        with tqdm(total=n - 1, unit="frame", disable=args.quiet, desc="propagating") as bar:
            cache, start = propagator.new_cache(), args.init_frame
            for stop in (n, -1):
                run = propagator.propagate(video.frame, start, stop, refs, {}, cache=cache)
                for res in run:
                    assert res.labels.mask is not None
                    write_indexed_png(out / f"{res.index:05d}.png", res.labels.mask)
                    seconds += res.seconds
                    count += 1
                    bar.update(1)
    ms = 1000 * seconds / max(count, 1)
    name = f"{propagator.encoder.name}, {propagator.name}"
    print(f"wrote {n} masks to {out} | {ms:.1f} ms/frame propagation ({name})")
    return 0


# ------------------------------------------------------------------------------ eval


def run_eval(args: argparse.Namespace) -> int:
    """J, F and J&F per sequence on a DAVIS-layout folder."""
    from tracker_core.evaluate import evaluate_davis

    propagator = propagator_from_args(args)
    root = Path(args.davis_root)
    seqs = [s for s in args.sequences.split(",") if s] if args.sequences else None
    print(f"encoder {propagator.encoder.name} | preset {propagator.name} | {propagator.config}")
    result = evaluate_davis(root, propagator, seqs, args.corrections, print, args.pick)
    print(
        f"{'mean':20s} J {100 * result.j:5.1f}  F {100 * result.f:5.1f}  "
        f"J&F {100 * result.jf:5.1f}  {result.ms_per_frame:6.1f} ms/frame"
    )
    for r, jf in enumerate(result.rounds):
        label = "initial" if r == 0 else f"after {r} correction{'s' if r > 1 else ''}"
        print(f"J&F {label}: {100 * jf:.1f}")
    return 0


def run_eval_keypoints(args: argparse.Namespace) -> int:
    """PCK@0.1 / @0.2 on BADJA-format JSON files, frames from a DAVIS root."""
    from tracker_core.evaluate import evaluate_keypoints, load_badja

    propagator = propagator_from_args(args)
    files = [Path(p) for p in args.badja]
    expanded = [f for p in files for f in (sorted(p.glob("*.json")) if p.is_dir() else [p])]
    per_seq = []
    for path in expanded:
        name = path.stem
        with VideoSource.open(Path(args.davis_root) / "JPEGImages" / "480p" / name) as video:
            labelled = load_badja(path, (video.height, video.width))
            counts = evaluate_keypoints(video, labelled, propagator)
        scores = {a: c / max(t, 1) for a, (c, t) in counts.items()}
        per_seq.append(scores)
        print(f"{name:20s} PCK@0.1 {100 * scores[0.1]:5.1f}  PCK@0.2 {100 * scores[0.2]:5.1f}")
    mean = {a: float(np.mean([s[a] for s in per_seq])) for a in (0.1, 0.2)}
    print(f"{'mean':20s} PCK@0.1 {100 * mean[0.1]:5.1f}  PCK@0.2 {100 * mean[0.2]:5.1f}")
    return 0


# ------------------------------------------------------------------------------ export


def run_export(args: argparse.Namespace) -> int:
    """Export a project file to DAVIS PNGs or COCO JSON."""
    from tracker_core.export import export_coco, export_davis, frame_file_names
    from tracker_core.project import Project

    with Project.open(args.project) as project:
        n, hw = project.num_frames, (project.height, project.width)
        frames = ((i, project.labels(i)) for i in range(n))
        name = (
            project.video_path.stem if not project.video_path.is_dir() else project.video_path.name
        )
        with tqdm(total=n, unit="frame", disable=args.quiet, desc="exporting") as bar:

            def progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            if args.format == "davis":
                path = export_davis(Path(args.out), frames, n, hw, name, progress=progress)
            else:
                path = export_coco(
                    Path(args.out),
                    project.objects,
                    frames,
                    hw,
                    frame_file_names(project.video_path, n),
                    n,
                    polygons=args.polygons,
                    video_name=name,
                    progress=progress,
                )
    print(f"exported {n} frames to {path}")
    return 0


# ------------------------------------------------------------------------------ main


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all subcommands."""
    parser = argparse.ArgumentParser(prog="trackpaint", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("propagate", help="propagate a first-frame mask through a video")
    p.add_argument("source", help="video file or frame folder")
    p.add_argument("--init", required=True, help="indexed/grey PNG mask (0 = background)")
    p.add_argument("--init-frame", type=int, default=0, help="frame the mask belongs to")
    p.add_argument("--out", required=True, help="output folder for NNNNN.png masks")
    add_protocol_args(p)
    p.set_defaults(func=run_propagate)

    p = sub.add_parser("eval", help="DAVIS J&F on a DAVIS-layout folder")
    p.add_argument("davis_root")
    p.add_argument("--sequences", default="", help="comma-separated names (default: all)")
    p.add_argument("--corrections", type=int, default=0, help="simulated annotator rounds")
    p.add_argument(
        "--pick",
        choices=("oracle", "confidence"),
        default="oracle",
        help="which frame the simulated annotator corrects: worst J, or least confident",
    )
    add_protocol_args(p)
    p.set_defaults(func=run_eval)

    p = sub.add_parser("eval-keypoints", help="PCK on BADJA-format keypoint JSON")
    p.add_argument("badja", nargs="+", help="BADJA json files or folders (name = sequence)")
    p.add_argument("--davis-root", required=True, help="DAVIS root holding the frames")
    add_protocol_args(p)
    p.set_defaults(func=run_eval_keypoints)

    p = sub.add_parser("export", help="export a project to DAVIS PNGs or COCO JSON")
    p.add_argument("project")
    p.add_argument("--format", choices=("davis", "coco"), required=True)
    p.add_argument("--out", required=True, help="DAVIS: output folder; COCO: .json path")
    p.add_argument("--polygons", action="store_true", help="COCO: polygons instead of RLE")
    p.set_defaults(func=run_export)

    try:
        from tracker_core.train.cli import add_train_parser, run_train
    except ImportError:  # training extras missing: the other commands still work
        pass
    else:
        add_train_parser(sub).set_defaults(func=run_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trackpaint`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    try:
        status = int(args.func(args) or 0)
    except TrackpaintError as exc:
        print(f"trackpaint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("trackpaint: interrupted", file=sys.stderr)
        return 130
    if os.environ.get("TRACKPAINT_TIMING"):
        print(f"total {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
