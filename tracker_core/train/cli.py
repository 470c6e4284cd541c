"""``trackpaint train``: argparse wiring for the self-supervised trainer.

Register in the main CLI with ``add_train_parser(subparsers)``; the parser's ``func`` default is
:func:`run_train`, which returns a process exit code.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace

import torch

from tracker_core.errors import TrackpaintError
from tracker_core.nets import NetConfig, load_net
from tracker_core.train.objectives import OBJECTIVES, ObjectiveConfig
from tracker_core.train.trainer import TrainConfig, train


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` sub-command to ``subparsers`` and return its parser."""
    parser = subparsers.add_parser(
        "train",
        help="train the propagation encoder self-supervised on unlabeled video",
        description="Self-supervised training (colorization / contrastive random walk) on "
        "frame folders and video files, or distillation of a trained encoder into a smaller one "
        "(--objective distill --teacher CKPT --arch-config JSON).",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="DIR",
        help="frame folders, video files, or folders containing them",
    )
    parser.add_argument("--out", required=True, metavar="CKPT", help="checkpoint to write")
    parser.add_argument("--resume", metavar="CKPT", help="continue from this checkpoint")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps, help="total steps")
    parser.add_argument("--objective", choices=OBJECTIVES, default="colorization")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--crop-size", type=int, default=160)
    parser.add_argument("--ckpt-every", type=int, default=TrainConfig.ckpt_every)
    parser.add_argument(
        "--stop-at",
        type=int,
        default=None,
        metavar="STEP",
        help="stop (and checkpoint) at this step without changing the schedule",
    )
    parser.add_argument(
        "--lab-weight",
        type=float,
        default=None,
        help="recommended Lab-colour fusion weight recorded for inference (default: the "
        f"teacher's with --objective distill, else {TrainConfig.lab_weight:g})",
    )
    parser.add_argument(
        "--arch-config",
        type=_arch_config,
        default=None,
        metavar="JSON",
        help='network of a new run as NetConfig JSON, e.g. \'{"widths": [24, 48, 64], '
        '"blocks": [0, 0, 3]}\' (default: the shipped architecture)',
    )
    parser.add_argument("--teacher", default="", metavar="CKPT", help="distill: teacher checkpoint")
    parser.add_argument(
        "--no-teacher-init",
        action="store_true",
        help="distill: start the student from random weights instead of the teacher's "
        "(copied wherever a parameter's name and shape match)",
    )
    parser.add_argument(
        "--distill-weights",
        type=float,
        nargs=2,
        default=None,
        metavar=("FEATURE", "AFFINITY"),
        help="distill: weights of the feature-cosine and affinity-KL terms (default 1 1)",
    )
    parser.add_argument("--cache-dir", default="data_cache", help="downscaled clip cache")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=run_train)
    return parser


def _arch_config(text: str) -> NetConfig:
    """argparse type: NetConfig from JSON (ArgumentTypeError names the problem)."""
    try:
        return NetConfig.from_dict(json.loads(text))
    except (ValueError, TypeError) as exc:
        raise argparse.ArgumentTypeError(f"bad --arch-config {text!r}: {exc}") from exc


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig described by parsed ``train`` arguments.

    Without ``--lab-weight`` a resumed run keeps its recorded weight, and ``--objective distill``
    takes the teacher's.
    """
    base = TrainConfig()
    lab_weight = args.lab_weight
    source = args.resume or (args.teacher if args.objective == "distill" else None)
    if lab_weight is None and source:
        lab_weight = float(load_net(source)[1].get("lab_weight", base.lab_weight))
    objective = ObjectiveConfig(objective=args.objective)
    if args.distill_weights is not None:
        feature, affinity = args.distill_weights
        objective = replace(
            objective, distill_feature_weight=feature, distill_affinity_weight=affinity
        )
    return replace(
        base,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        ckpt_every=args.ckpt_every,
        lab_weight=base.lab_weight if lab_weight is None else lab_weight,
        sampler=replace(base.sampler, crop_size=args.crop_size),
        objective=objective,
        net=base.net if args.arch_config is None else args.arch_config,
        teacher=args.teacher,
        init_from_teacher=not args.no_teacher_init,
    )


def run_train(args: argparse.Namespace) -> int:
    """Run training from parsed arguments; 0 on success, 2 on a user-facing error."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "trackpaint train: --device cuda requested but CUDA is not available", file=sys.stderr
        )
        return 2
    argv = getattr(args, "argv", None)
    words = ["trackpaint", "train", *argv] if argv is not None else ["trackpaint", *sys.argv[1:]]
    command = shlex.join(words)
    try:
        config = config_from_args(args)
        out = train(
            config,
            args.data,
            args.out,
            device=args.device,
            cache_dir=args.cache_dir,
            resume=args.resume,
            command=command,
            show_progress=not args.no_progress,
            stop_at=args.stop_at,
        )
    except TrackpaintError as exc:
        print(f"trackpaint train: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: ``python -m tracker_core.train.cli --data ... --out ...``."""
    parser = argparse.ArgumentParser(prog="trackpaint")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_train_parser(subparsers)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(["train", *argv])
    args.argv = argv
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
