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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from tracker_core.encoder import Encoder, load_encoder
from tracker_core.errors import ExportError, FrameDamaged, TrackpaintError
from tracker_core.native_log import quiet_native_logging
from tracker_core.propagate import PropagationConfig
from tracker_core.propagator import (
    DEFAULT_PRESET,
    PRESETS,
    Propagator,
    load_propagator,
    parse_overrides,
    preset_config,
)
from tracker_core.video import VideoSource, summarize_damaged

EXIT_ERROR = 2


# ------------------------------------------------------------------------------ helpers


PROTOCOL_OPTIONS = (
    "radius",
    "keyframe_radius",
    "topk",
    "temperature",
    "n_recent",
    "refine_radius",
    "max_work_height",
)
# given only by the commands that have them (eval-keypoints)
KEYPOINT_OPTIONS = (
    "keypoint_decode",
    "keypoint_window",
    "keypoint_sigma",
    "keypoint_mask_weight",
    "keypoint_n_recent",
)


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
    g.add_argument(
        "--max-work-height",
        type=int,
        help=f"taller frames are matched downscaled to this height, 0 = never "
        f"({d.max_work_height})",
    )
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="any PropagationConfig field, e.g. --set region_localise=true (repeatable; "
        "applied after the options above)",
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


def _given_protocol(args: argparse.Namespace) -> dict[str, Any]:
    """The protocol options given on the command line: field name -> value."""
    names = (*PROTOCOL_OPTIONS, *KEYPOINT_OPTIONS)
    given = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    try:
        given.update(parse_overrides(getattr(args, "set", None) or []))
    except ValueError as exc:
        raise TrackpaintError(f"--set: {exc}") from exc
    return given


def protocol_from_args(args: argparse.Namespace) -> PropagationConfig:
    """The chosen preset's PropagationConfig with the options given on the command line."""
    given = _given_protocol(args)
    try:
        return preset_config(args.preset, given)
    except ValueError as exc:  # e.g. --temperature 0
        raise TrackpaintError(f"--preset {args.preset}: {exc}") from exc


def encoder_from_args(args: argparse.Namespace) -> Encoder:
    """Load the encoder named by ``--model`` (and set the torch thread count)."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return load_encoder(args.model, lab_weight=args.lab_weight, precision=args.precision)


def propagator_from_args(args: argparse.Namespace, skip_damaged: bool = False) -> Propagator:
    """The propagator for ``--preset`` with the protocol options and ``--model`` applied
    (``skip_damaged``: pass over damaged frames instead of failing on them)."""
    cfg = dataclasses.replace(protocol_from_args(args), skip_damaged=skip_damaged)
    encoder = encoder_from_args(args)
    return load_propagator(args.preset, encoder=encoder, overrides=dataclasses.asdict(cfg))


# ------------------------------------------------------------------------------ propagate


def run_propagate(args: argparse.Namespace) -> int:
    """Propagate an initial mask through a whole video; write DIR/NNNNN.png for every frame
    (``--out``; with ``--skip-damaged`` the damaged frames get none and are listed at the end)
    and/or a project to correct in the GUI (``--project``), each atomically
    (:func:`tracker_core.prelabel.prelabel_video`, the code path ``trackpaint batch`` runs too)."""
    from tracker_core.prelabel import Seed, prelabel_video

    if args.out is None and args.project is None:
        raise ExportError("nothing to write: give --out DIR and/or --project FILE.trackpaint")
    propagator = propagator_from_args(args, skip_damaged=args.skip_damaged)
    with tqdm(unit="frame", disable=args.quiet, desc="propagating") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        result = prelabel_video(
            Path(args.source),
            Seed("mask", Path(args.init), args.init_frame),
            propagator,
            masks_dir=None if args.out is None else Path(args.out),
            project_path=None if args.project is None else Path(args.project),
            progress=progress,
        )
    ms, n = result.ms_per_frame, result.frames
    written = [f"{result.propagated + 1} masks to {args.out}"] if args.out is not None else []
    written += [f"a project of {n} frames to {args.project}"] if args.project is not None else []
    print(f"wrote {' and '.join(written)} | {ms:.1f} ms/frame propagation ({result.encoder})")
    for line in summarize_damaged(result.damaged):
        print(f"trackpaint: warning: {line} (skipped: no mask)", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------ batch


def run_batch(args: argparse.Namespace) -> int:
    """Pre-label every item of a manifest (tracker_core.batch); 1 if any item failed."""
    from tracker_core import batch

    items = batch.read_manifest(args.manifest)
    exports = tuple(f for f in args.export.split(",") if f)
    for fmt in exports:
        if fmt not in batch.EXPORT_FORMATS:
            known = ", ".join(batch.EXPORT_FORMATS)
            raise TrackpaintError(f"--export: unknown format {fmt!r} (known: {known})")
    if args.workers is not None and args.workers < 1:
        raise TrackpaintError("--workers must be >= 1")
    if args.model is not None and args.model != "lab":
        args.model = os.path.abspath(args.model)
    settings = batch.BatchSettings(
        out=Path(os.path.abspath(args.out)),
        model=args.model,
        lab_weight=args.lab_weight,
        config=dataclasses.replace(protocol_from_args(args), skip_damaged=args.skip_damaged),
        overrides=(
            *sorted(_given_protocol(args).items()),
            ("skip_damaged", bool(args.skip_damaged)),
        ),
        preset=args.preset,
        exports=exports,
        precision=args.precision,
    )
    with tqdm(unit="frame", disable=args.quiet, desc="batch") as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        results = batch.run_batch(
            items,
            settings,
            manifest=Path(os.path.abspath(args.manifest)),
            workers=args.workers,
            threads=args.threads,
            ray_address=args.ray,
            ray_cpus=args.cpus_per_task,
            ray_gpus=args.gpus_per_task,
            progress=progress,
        )
    print(batch.summary_table(results))
    failed = sum(r.failed for r in results)
    print(
        f"{len(results) - failed} of {len(results)} items done or up to date"
        f"{f', {failed} failed' if failed else ''} | summary: "
        f"{settings.out / batch.SUMMARY_NAME}"
    )
    return 1 if failed else 0


# ------------------------------------------------------------------------------ eval


def run_eval(args: argparse.Namespace) -> int:
    """J, F and J&F per sequence on a DAVIS-layout folder."""
    from tracker_core.evaluate import evaluate_davis

    propagator = propagator_from_args(args)
    root = Path(args.davis_root)
    seqs = [s for s in args.sequences.split(",") if s] if args.sequences else None
    print(f"encoder {propagator.encoder.name} | preset {propagator.name} | {propagator.config}")
    until = args.until
    if until is not None and not 0 < until <= 1:
        raise TrackpaintError(f"--until {until}: must be a J in (0, 1]")
    result = evaluate_davis(root, propagator, seqs, args.corrections, print, args.pick, until)
    print(
        f"{'mean':20s} J {100 * result.j:5.1f}  F {100 * result.f:5.1f}  "
        f"J&F {100 * result.jf:5.1f}  {result.ms_per_frame:6.1f} ms/frame"
    )
    for r, jf in enumerate(result.rounds):
        label = "initial" if r == 0 else f"after {r} correction{'s' if r > 1 else ''}"
        print(f"J&F {label}: {100 * jf:.1f}")
    if result.effort:
        per100 = result.corrections_per_100
        worst = int(np.argmax(per100))
        print(
            f"corrections until every frame has J >= {until} (pick {args.pick}): "
            f"{np.mean(per100):.1f} per 100 frames (mean), worst {per100[worst]:.1f} "
            f"({result.sequences[worst].name})"
        )
    return 0


def run_eval_keypoints(args: argparse.Namespace) -> int:
    """PCK@0.1 / @0.2 on BADJA-format JSON files, frames (and masks) from a DAVIS root."""
    from tracker_core.evaluate import (
        FRAMES_DIR,
        evaluate_keypoints,
        expand_badja_paths,
        ground_truth_lookup,
        load_badja,
    )

    propagator = propagator_from_args(args)
    expanded = expand_badja_paths([Path(p) for p in args.badja])
    root = Path(args.davis_root)
    print(f"encoder {propagator.encoder.name} | preset {propagator.name} | {propagator.config}")
    print("PCK: joints within alpha x 0.6 x visible-joint box diagonal (JHMDB); [alpha x")
    print("sqrt(ground-truth mask area) (BADJA), where the DAVIS root has the masks]")
    per_seq = []
    pooled = {(a, r): [0, 0] for a in (0.1, 0.2) for r in ("box", "area")}
    for path in expanded:
        name = path.stem
        gt_mask = ground_truth_lookup(root, name)
        with VideoSource.open(root.joinpath(*FRAMES_DIR, name)) as video:
            labelled = load_badja(path, (video.height, video.width))
            start = None if args.no_mask else gt_mask(labelled[0].frame)
            res = evaluate_keypoints(
                video, labelled, propagator, start_mask=start, gt_masks=gt_mask
            )
        scores = {(a, r): res.pck(a, r) for a in (0.1, 0.2) for r in ("box", "area")}
        for key, tally in pooled.items():
            c, t = res.counts(*key)
            tally[0], tally[1] = tally[0] + c, tally[1] + t
        has_area = res.counts(0.1, "area")[1] > 0
        per_seq.append(scores)
        area = (
            f"  [{100 * scores[0.1, 'area']:5.1f} / {100 * scores[0.2, 'area']:5.1f}]"
            if has_area
            else ""
        )
        with_mask = "with its start mask" if start is not None else "keypoints only"
        print(
            f"{name:20s} PCK@0.1 {100 * scores[0.1, 'box']:5.1f}  "
            f"PCK@0.2 {100 * scores[0.2, 'box']:5.1f}{area}  "
            f"({res.counts(0.1)[1]} joints, {with_mask})"
        )
    mean = {k: float(np.mean([s[k] for s in per_seq])) for k in per_seq[0]}
    print(
        f"{'mean':20s} PCK@0.1 {100 * mean[0.1, 'box']:5.1f}  PCK@0.2 {100 * mean[0.2, 'box']:5.1f}"
        f"  [{100 * mean[0.1, 'area']:5.1f} / {100 * mean[0.2, 'area']:5.1f}]"
    )
    pool = {k: c / max(t, 1) for k, (c, t) in pooled.items()}
    print(
        f"{'all joints pooled':20s} PCK@0.1 {100 * pool[0.1, 'box']:5.1f}  "
        f"PCK@0.2 {100 * pool[0.2, 'box']:5.1f}"
        f"  [{100 * pool[0.1, 'area']:5.1f} / {100 * pool[0.2, 'area']:5.1f}]"
    )
    return 0


# ------------------------------------------------------------------------------ export


def run_export(args: argparse.Namespace) -> int:
    """Export a project file to DAVIS PNGs or COCO JSON (every frame; see tracker_core.export)."""
    from tracker_core.export import describe_exports, export_project
    from tracker_core.project import Project

    with Project.open(args.project) as project:
        with tqdm(
            total=project.num_frames, unit="frame", disable=args.quiet, desc="exporting"
        ) as bar:

            def progress(done: int, total: int) -> None:
                bar.update(done - bar.n)

            result = export_project(
                project, args.format, args.out, polygons=args.polygons, progress=progress
            )
    print(describe_exports([result]))
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
    p.add_argument("--out", default=None, help="output folder for NNNNN.png masks")
    p.add_argument(
        "--project",
        default=None,
        help="also (or instead) write a .trackpaint project to correct in the GUI",
    )
    p.add_argument(
        "--skip-damaged",
        action="store_true",
        help="propagate past damaged frames (corrupt, truncated, missing): they get no mask "
        "and are listed at the end (default: stop with an error naming the first)",
    )
    add_protocol_args(p)
    p.set_defaults(func=run_propagate)

    from tracker_core.batch import MANIFEST_HELP

    p = sub.add_parser(
        "batch",
        help="pre-label every video of a manifest (local worker pool or Ray)",
        description="Pre-label every video of a manifest: one project per item, resumable.",
        epilog=MANIFEST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("manifest", help="CSV or JSON Lines manifest (columns below)")
    p.add_argument("--out", required=True, help="output root: OUT/<name>/<name>.trackpaint ...")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local worker processes (default: one per 2 cores; 1 = in this process)",
    )
    p.add_argument(
        "--ray",
        default=None,
        metavar="auto|local|ADDRESS",
        help="run one Ray task per video: on the running cluster (auto), a new local one "
        "(local), or the cluster at ADDRESS; needs trackpaint[cluster]",
    )
    p.add_argument("--cpus-per-task", type=float, default=2.0, help="Ray: CPUs per task")
    p.add_argument("--gpus-per-task", type=float, default=0.0, help="Ray: GPUs per task")
    p.add_argument("--export", default="", help="also export each project: davis,coco")
    p.add_argument(
        "--skip-damaged",
        action="store_true",
        help="propagate past damaged frames (default: such an item fails naming the frame)",
    )
    add_protocol_args(p)
    p.set_defaults(func=run_batch)

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
    p.add_argument(
        "--until",
        type=float,
        default=None,
        help="annotation effort: correct frames (by --pick; at most --corrections, 0 = no "
        "limit) until every frame has this J, and report corrections per 100 frames",
    )
    add_protocol_args(p)
    p.set_defaults(func=run_eval)

    d = PRESETS[DEFAULT_PRESET]
    p = sub.add_parser("eval-keypoints", help="PCK on BADJA-format keypoint JSON")
    p.add_argument("badja", nargs="+", help="BADJA json files or folders (name = sequence)")
    p.add_argument("--davis-root", required=True, help="DAVIS root holding the frames")
    p.add_argument(
        "--no-mask",
        action="store_true",
        help="propagate the joints alone (default: the DAVIS mask of the first labelled frame, "
        "where there is one, is propagated alongside as the joints' object)",
    )
    g = p.add_argument_group("keypoint decoding")
    g.add_argument("--keypoint-decode", choices=("top3", "peak"), help=f"({d.keypoint_decode})")
    g.add_argument("--keypoint-window", type=int, help=f"peak window, cells ({d.keypoint_window})")
    g.add_argument(
        "--keypoint-sigma", type=float, help=f"heatmap sigma, cells ({d.keypoint_sigma})"
    )
    g.add_argument(
        "--keypoint-mask-weight", type=float, help=f"0 = ignore the mask ({d.keypoint_mask_weight})"
    )
    g.add_argument(
        "--keypoint-n-recent",
        type=int,
        help=f"recent frames in the joints' memory, 0 = --n-recent ({d.keypoint_n_recent})",
    )
    add_protocol_args(p)
    p.set_defaults(func=run_eval_keypoints)

    p = sub.add_parser("export", help="export a project to DAVIS PNGs or COCO JSON")
    p.add_argument("project")
    p.add_argument("--format", choices=("davis", "coco"), required=True)
    p.add_argument(
        "--out",
        required=True,
        help="DAVIS: dataset folder (writes Annotations/<video>/); "
        "COCO: .json file, or a folder for <video>.json",
    )
    p.add_argument("--polygons", action="store_true", help="COCO: polygons instead of RLE")
    p.set_defaults(func=run_export)

    try:
        from tracker_core.train.cli import add_train_parser, run_train
    except ImportError:  # training extras missing: the other commands still work
        pass
    else:
        add_train_parser(sub).set_defaults(func=run_train)
    return parser


def _damage_hint(args: argparse.Namespace, exc: TrackpaintError) -> str:
    """What to do about a damaged frame that stopped ``propagate`` ("" for other errors)."""
    if not isinstance(exc, FrameDamaged) or args.command != "propagate":
        return ""
    if exc.frame == args.init_frame:
        return " (the frame of the initial mask must decode)"
    return "" if args.skip_damaged else " (--skip-damaged propagates past damaged frames)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``trackpaint`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    quiet_native_logging()
    t0 = time.perf_counter()
    try:
        status = int(args.func(args) or 0)
    except TrackpaintError as exc:
        print(f"trackpaint: error: {exc}{_damage_hint(args, exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("trackpaint: interrupted", file=sys.stderr)
        return 130
    if os.environ.get("TRACKPAINT_TIMING"):
        print(f"total {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
