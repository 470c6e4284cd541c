"""GUI vs CLI propagation throughput on the same clip, interleaved A/B in one session.

    xvfb-run -a .venv/bin/python benchmarks/gui_vs_cli.py --repeats 3 --threads 2 --precision int8
        [--frames 39] [--omp passive|default|both|spin|countN[,...]] [--arms cli,gui,guiteam]
        [--busy N]

Each round runs, as separate processes one after the other, the CLI arm (``trackpaint
propagate``'s code path: :func:`tracker_core.cli.propagator_from_args` +
:func:`tracker_core.prelabel.prelabel_video`, masks written to a temporary folder) and the GUI
arm (``benchmarks/gui_responsiveness.py``: the real main window, propagation on the worker
thread, the view following), on the first ``--frames`` + 1 frames of the bear sample. The order
alternates between rounds. ``--omp`` picks the OpenMP wait policy of the children, a comma
list runs each: ``passive`` (``OMP_WAIT_POLICY=PASSIVE``: helps only on an overloaded machine,
+36 % ms/frame on a quiet one, so Trackpaint does not set it); ``default`` (nothing set here, so
Trackpaint's own ``GOMP_SPINCOUNT=20000`` from ``tracker_core/__init__.py``); ``countN``
(``GOMP_SPINCOUNT=N``; libgomp's own default is ``count300000``); ``spin`` (ACTIVE, 300,000
rounds, never throttled); ``both`` (passive and default). ``--arms guiteam`` adds the GUI with
an idle OpenMP team left on its GUI thread (as loading a model did before ``load_net``
assigned its tensors: libgomp then throttles the worker's spin to 100 rounds). ``--busy N``
runs N busy-loop processes throughout (a reproducible loaded machine). Every arm reports the
mean compute ms/frame (warm-up excluded, as the status bar and the CLI print it) and the process
CPU time per frame from the first propagated frame to the end (so model loading and warm-up are
left out of both); the GUI arms also report their GUI thread's share. The 1-minute load
average is printed with every run: on a shared machine compare the arms of one round.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gui_responsiveness import getrusage, rusage_per_frame  # the script's folder

ROOT = Path(__file__).resolve().parent.parent
CLIP = ROOT / "resources" / "sample" / "bear"
INIT = ROOT / "resources" / "sample" / "bear_00000.png"


USAGE_KEYS = (
    "steady_sys_ms_per_frame",
    "steady_minflt_per_frame",
    "steady_vcsw_per_frame",
    "steady_ivcsw_per_frame",
)


def cli_child(threads: int, precision: str, frames: int) -> dict[str, object]:
    """Run the CLI's propagate path on the first ``frames`` + 1 frames of the sample clip in
    this process; return its numbers."""
    from tracker_core.cli import build_parser, propagator_from_args
    from tracker_core.prelabel import Seed, prelabel_video

    scratch = Path(tempfile.mkdtemp(prefix="tp-gui-vs-cli-"))
    clip, out = scratch / "clip", scratch / "masks"
    clip.mkdir()
    for src in sorted(p for p in CLIP.iterdir() if p.is_file())[: frames + 1]:
        shutil.copyfile(src, clip / src.name)
    argv = ["propagate", str(clip), "--init", str(INIT), "--out", str(out)]
    argv += ["--threads", str(threads), "--precision", precision]
    args = build_parser().parse_args(argv)
    propagator = propagator_from_args(args, skip_damaged=args.skip_damaged)
    marks: list[tuple[int, float]] = []

    usage: list[object] = []

    def progress(done: int, total: int) -> None:
        if not marks:
            usage.append(getrusage())
        marks.append((done, time.process_time()))

    load0 = os.getloadavg()[0]
    result = prelabel_video(
        Path(args.source),
        Seed("mask", Path(args.init), args.init_frame),
        propagator,
        masks_dir=out,
        progress=progress,
    )
    end = time.process_time()
    (first_done, first_cpu) = marks[0]
    end_usage = getrusage()
    shutil.rmtree(scratch)
    frames = result.propagated
    return {
        **rusage_per_frame(usage[0], end_usage, frames - first_done),
        "arm": "cli",
        "frames": frames,
        "ms_per_frame": round(result.ms_per_frame, 1),
        "steady_cpu_ms_per_frame": round(1000 * (end - first_cpu) / max(1, frames - first_done), 1),
        "load_1min_start_end": [round(load0, 1), round(os.getloadavg()[0], 1)],
    }


def run_arm(arm: str, omp: str, args: argparse.Namespace) -> dict[str, object]:
    py = sys.executable
    common = ["--threads", str(args.threads), "--precision", args.precision]
    if arm == "cli":
        cmd = [py, __file__, "--child-cli", "--frames", str(args.frames), *common]
    else:
        script = ROOT / "benchmarks" / "gui_responsiveness.py"
        cmd = [py, str(script), "--frames", str(args.frames), "--idle-seconds", "0", *common]
        cmd += ["--no-stall-timer"]  # its 100 wake-ups a second are the benchmark's, not the app's
        if arm == "guiteam":
            cmd += ["--gui-thread-team"]
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if omp == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    elif omp == "spin":  # libgomp's default spin count, not throttled when teams outnumber CPUs
        env["OMP_WAIT_POLICY"] = "ACTIVE"
        env["GOMP_SPINCOUNT"] = "300000"
    elif omp.startswith("count"):  # e.g. count20000: GOMP_SPINCOUNT=20000, policy unset
        env["GOMP_SPINCOUNT"] = omp.removeprefix("count")
    if arm == "gui" and env.get("DISPLAY"):  # under xvfb-run: a real X server, not offscreen
        env.setdefault("QT_QPA_PLATFORM", "xcb")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True, env=env)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("{")][-1]
    out = json.loads(line)
    out["arm"] = f"{arm}/{omp}"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--frames", type=int, default=39, help="frames to propagate (<= 39)")
    parser.add_argument(
        "--omp",
        default="default",
        help="passive | default | both | spin | countN (GOMP_SPINCOUNT=N); a comma list runs each",
    )
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="run this many busy-loop processes during every arm (a reproducible loaded machine)",
    )
    parser.add_argument(
        "--arms",
        default="cli,gui",
        help="cli, gui, guiteam (the GUI with an idle OpenMP team on its GUI thread, as before)",
    )
    parser.add_argument("--child-cli", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child_cli:
        print(json.dumps(cli_child(args.threads, args.precision, args.frames)))
        return 0
    keys = ("ms_per_frame", "steady_cpu_ms_per_frame", "gui_thread_cpu_ms_per_frame")
    policies = ("passive", "default") if args.omp == "both" else tuple(args.omp.split(","))
    rows: dict[str, list[dict[str, object]]] = {}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        run_rounds(args, policies, rows, keys)
    finally:
        for proc in busy:
            proc.kill()
    summarise(policies, rows, keys)
    return 0


def run_rounds(
    args: argparse.Namespace,
    policies: tuple[str, ...],
    rows: dict[str, list[dict[str, object]]],
    keys: tuple[str, ...],
) -> None:
    """``--repeats`` rounds of every (arm, policy), the order alternating between rounds."""
    for r in range(args.repeats):
        order = [(a, o) for o in policies for a in args.arms.split(",")]
        for arm, omp in order if r % 2 == 0 else order[::-1]:
            res = run_arm(arm, omp, args)
            rows.setdefault(f"{arm}/{omp}", []).append(res)
            extra = ("frames", "load_1min_start_end", *USAGE_KEYS)
            shown = {k: res[k] for k in (*keys, *extra) if k in res}
            print(f"round {r + 1} {arm}/{omp}: {json.dumps(shown)}", flush=True)


def summarise(
    policies: tuple[str, ...], rows: dict[str, list[dict[str, object]]], keys: tuple[str, ...]
) -> None:
    """Median per arm and policy, and the GUI / CLI ratio."""
    for omp in policies:
        for key in keys[:2]:
            mids = {}
            for arm in ("cli", "gui", "guiteam"):
                if f"{arm}/{omp}" in rows:
                    vals = sorted(float(x[key]) for x in rows[f"{arm}/{omp}"])
                    mids[arm] = vals[len(vals) // 2]
            line = "  ".join(f"{a} {v:.1f}" for a, v in mids.items())
            if "cli" in mids:
                line += "  " + "  ".join(
                    f"{a}/cli {v / mids['cli']:.2f}" for a, v in mids.items() if a != "cli"
                )
            print(f"{omp}: median {key}: {line}")


if __name__ == "__main__":
    sys.exit(main())
