"""SIGKILL crash-safety harness shared by the pytest test and ``benchmarks/crash_safety.py``.

A child process (``python -m tests.robustness.crash_harness child WORKDIR``) opens or creates a
small project (20 frames of 64x96; after a crash it resumes from the project, or from the
autosave offered for it when that is newer, as a user of the GUI would choose; its autosaves go to
``WORKDIR/recovery``) and then loops over numbered edits
``k = 1, 2, ...``: edit ``k`` paints the deterministic mask :func:`edit_mask` ``(k)`` on frame
``k % 20`` and renames the object to ``"edit k"`` (so a file tells which edit it holds), then
runs one operation chosen by ``k % 4``: save, autosave, DAVIS export, COCO export. Before each
edit it appends ``begin k`` and after each operation returns ``<op> k`` to a log with unbuffered
``os.write`` (a line written is in the kernel and survives SIGKILL).

The parent kills the child with SIGKILL at a random moment and then checks (:func:`check_workdir`)
that the project reopens holding exactly the state after some edit ``M`` with ``M`` >= the last
edit whose save was reported and ``M`` <= the last edit begun; the same for the autosave when it
exists (and it must exist holding >= the last reported autosave unless a save came later); that
the DAVIS export folder, when present, holds all 20 PNGs, each decodes and together they equal
some state >= the last reported DAVIS export; and that the COCO file, when present, parses and
equals some state >= the last reported COCO export. Hidden temp/staging leftovers and scratch
folders left by the killed child are counted (not failures: nothing visible is half-written).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tracker_core.recovery import RECOVERY_ENV, Autosave

N, H, W = 20, 64, 96
OPS = ("save", "autosave", "davis", "coco")
PROJECT_NAME = "work.trackpaint"
VIDEO_NAME = "clip"
COLOR = (200, 30, 30)
ROOT = Path(__file__).resolve().parents[2]


def edit_mask(k: int) -> np.ndarray:
    """The ``(H, W) uint8`` mask edit ``k`` paints (id 1): a square whose place and size depend
    on ``k``, plus ``k`` written in binary along the last row, so no two edits look alike."""
    mask = np.zeros((H, W), np.uint8)
    y, x, side = (k * 7) % (H - 20), (k * 13) % (W - 24), 8 + k % 9
    mask[y : y + side, x : x + side] = 1
    bits = [(k >> b) & 1 for b in range(W)]
    mask[H - 1] = np.array(bits, np.uint8)
    return mask


def expected_masks(k: int) -> list[np.ndarray | None]:
    """Per frame, the mask after edits ``1 .. k`` (None = the frame was never edited)."""
    masks: list[np.ndarray | None] = [None] * N
    for j in range(max(0, k - N + 1), k + 1):
        if j >= 1:
            masks[j % N] = edit_mask(j)
    return masks


def op_of(k: int) -> str:
    """The operation run after edit ``k``."""
    return OPS[k % len(OPS)]


# --------------------------------------------------------------------------- the child


def _log(fd: int, text: str) -> None:
    os.write(fd, (text + "\n").encode())


def child_main(workdir: Path) -> None:
    """Edit, save, autosave and export forever (until killed); see the module docstring."""
    from tracker_core.export import export_coco, export_davis
    from tracker_core.labels import FrameLabels, ObjectSpec
    from tracker_core.project import FrameState, Project

    path = workdir / PROJECT_NAME
    log_fd = os.open(workdir / "log.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if path.exists():
        project = Project.open(path)
        offer = project.recovery_offer()
        if offer.autosave is not None and offer.autosave.written > path.stat().st_mtime:
            project.close()
            project = Project.recover(offer.autosave)
            project.adopt(offer)
        elif offer.autosave is not None:
            project.recovery.discard(offer)
    else:
        project = Project.new(workdir / "clip.avi", N, H, W, [ObjectSpec(1, "edit 0", COLOR)])
        project.save(path)
    k = int(project.object(1).name.split()[-1])
    _log(log_fd, f"start {k}")
    print("ready", flush=True)
    out = workdir / "export"
    while True:
        k += 1
        _log(log_fd, f"begin {k}")
        project.set_frame(k % N, FrameLabels(edit_mask(k)), FrameState.PAINTED)
        project.set_objects([ObjectSpec(1, f"edit {k}", COLOR)])
        op = op_of(k)
        if op == "save":
            project.save()
        elif op == "autosave":
            project.autosave()
        else:
            states = project.states()
            frames = [(t, project.labels(t)) for t in range(N) if states[t]]
            if op == "davis":
                export_davis(out, frames, N, (H, W), VIDEO_NAME)
            else:
                export_coco(
                    out / f"{VIDEO_NAME}.json",
                    project.objects,
                    frames,
                    (H, W),
                    "{:05d}.jpg".format,
                    N,
                    video_name=f"{VIDEO_NAME}@{k}",
                )
        _log(log_fd, f"{op} {k}")


# --------------------------------------------------------------------------- the checks


@dataclass
class CrashCheck:
    """What one kill left behind: the failures found, the edit each artefact holds, and the
    hidden leftovers (temp files, staging folders, scratch folders) of the killed child."""

    problems: list[str] = field(default_factory=list)
    phase: str = ""  # what the child was doing when killed: an op name, "edit", or "startup"
    project_edit: int | None = None
    autosave_edit: int | None = None
    davis_edit: int | None = None
    coco_edit: int | None = None
    hidden_leftovers: int = 0
    leftover_kinds: Counter[str] = field(default_factory=Counter)  # "partial", "tmp", "scratch"


def _read_log(workdir: Path) -> list[tuple[str, int]]:
    path = workdir / "log.txt"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        word, _, number = line.partition(" ")
        if number.isdigit():  # a line cut by the kill is ignored
            rows.append((word, int(number)))
    return rows


def _same_state(masks: list[np.ndarray | None], k: int) -> bool:
    expected = expected_masks(k)
    return all(
        (e is None and (m is None or not m.any())) or (e is not None and np.array_equal(m, e))
        for m, e in zip(masks, expected)
    )


def _check_project(
    path: Path, autosave: Autosave | None, low: int, high: int, problems: list[str]
) -> int | None:
    """Open a project (or the given autosave) and return the edit it holds; record problems."""
    from tracker_core.errors import TrackpaintError
    from tracker_core.project import FrameState, Project

    what = "autosave" if autosave is not None else "project"
    try:
        opened = Project.open(path) if autosave is None else Project.recover(autosave)
        with opened as project:
            k = int(project.object(1).name.split()[-1])
            states = project.states()
            masks = [project.labels(t).mask if states[t] else None for t in range(N)]
            painted = all(states[t] == FrameState.PAINTED for t in range(N) if masks[t] is not None)
    except (TrackpaintError, OSError, ValueError, KeyError) as exc:
        problems.append(f"{what} does not open: {type(exc).__name__}: {exc}")
        return None
    if not low <= k <= high:
        problems.append(f"{what} holds edit {k}, expected {low}..{high}")
    if not _same_state(masks, k) or not painted:
        problems.append(f"{what} claims edit {k} but its frames differ from that state")
    return k


def _matching_edit(masks: list[np.ndarray], low: int, high: int) -> int | None:
    """The newest edit in ``low..high`` whose state equals ``masks`` (all frames), or None."""
    for k in range(high, low - 1, -1):
        if _same_state(list(masks), k):
            return k
    return None


def _check_davis(folder: Path, low: int, high: int, problems: list[str]) -> int | None:
    from tracker_core.errors import TrackpaintError
    from tracker_core.masks import read_indexed_png

    files = sorted(folder.glob("*.png"))
    if [p.name for p in files] != [f"{t:05d}.png" for t in range(N)]:
        problems.append(f"DAVIS export holds {len(files)} files, not the {N} frames")
        return None
    try:
        masks = [read_indexed_png(p) for p in files]
    except TrackpaintError as exc:
        problems.append(f"DAVIS PNG does not decode: {exc}")
        return None
    k = _matching_edit(masks, low, high)
    if k is None:
        problems.append(f"DAVIS export matches no state in edits {low}..{high}")
    return k


def _check_coco(path: Path, low: int, high: int, problems: list[str]) -> int | None:
    """Parse the COCO file (json and :func:`import_coco`); it names its edit in ``info.video``
    (``clip@k``) and its masks must equal that edit's state."""
    from tracker_core.errors import TrackpaintError
    from tracker_core.export import import_coco

    try:
        _, frames, _ = import_coco(path)
        k = int(json.loads(path.read_text(encoding="utf-8"))["info"]["video"].split("@")[-1])
    except (TrackpaintError, OSError, ValueError, KeyError, TypeError) as exc:
        problems.append(f"COCO file does not parse: {type(exc).__name__}: {exc}")
        return None
    masks = [frames[t].mask if t in frames else np.zeros((H, W), np.uint8) for t in range(N)]
    if not low <= k <= high:
        problems.append(f"COCO export holds edit {k}, expected {low}..{high}")
    if not _same_state(list(masks), k):
        problems.append(f"COCO export claims edit {k} but its masks differ from that state")
    return k


def check_workdir(workdir: Path, scratch: Path) -> CrashCheck:
    """Check everything a killed child left in ``workdir``; see the module docstring."""
    from tracker_core.recovery import RecoveryStore, project_owner

    result = CrashCheck()
    log = _read_log(workdir)
    starts = [k for word, k in log if word == "start"]
    begun = max([k for word, k in log if word in ("begin", "start")], default=0)
    last = {op: max([k for word, k in log if word == op], default=0) for op in OPS}
    # order of the last save vs the last autosave report decides whether an autosave must exist
    position = {op: max([i for i, (w, _) in enumerate(log) if w == op], default=-1) for op in OPS}
    if not log or (log[-1][0] == "start" and len(starts) == 1 and begun == 0):
        result.phase = "startup"
    elif log[-1][0] == "begin":
        result.phase = "edit"
    else:
        result.phase = "between"
    if log and log[-1][0] == "begin" and begun >= 1:
        # the edit itself takes microseconds: attribute the kill to the op that follows it
        result.phase = op_of(begun)
    project = workdir / PROJECT_NAME
    if project.exists():
        result.project_edit = _check_project(project, None, last["save"], begun, result.problems)
    elif starts:
        result.problems.append("the project file is gone")
    # the newest autosave of the project (a kill while resuming may leave the adopted one too)
    autosaves = RecoveryStore(workdir / "recovery").autosaves(project_owner(project))
    # a reported autosave must survive unless a later save (reported or not) superseded it
    must_autosave = position["autosave"] > position["save"] and (
        result.project_edit is None or result.project_edit < last["autosave"]
    )
    if autosaves:
        low = last["autosave"] if must_autosave else 0
        result.autosave_edit = _check_project(project, autosaves[0], low, begun, result.problems)
    elif must_autosave:
        result.problems.append(f"autosave of edit {last['autosave']} is gone")
    davis = workdir / "export" / "Annotations" / VIDEO_NAME
    if davis.exists():
        result.davis_edit = _check_davis(davis, last["davis"], begun, result.problems)
    elif last["davis"]:
        result.problems.append(f"DAVIS export of edit {last['davis']} is gone")
    coco = workdir / "export" / f"{VIDEO_NAME}.json"
    if coco.exists():
        result.coco_edit = _check_coco(coco, last["coco"], begun, result.problems)
    elif last["coco"]:
        result.problems.append(f"COCO export of edit {last['coco']} is gone")
    if result.problems:
        tail = " | ".join(f"{w} {k}" for w, k in log[-8:])
        listing = sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*"))
        result.problems.append(f"log tail: {tail}")
        result.problems.append(f"files: {[f for f in listing if not f.startswith('scratch')]}")
    hidden = [p for p in workdir.rglob(".*") if p.name != ".trackpaint-output.json"]
    for path in hidden:
        result.leftover_kinds[path.name.rsplit(".", 1)[-1]] += 1
    result.leftover_kinds["scratch"] = sum(1 for _ in scratch.glob("trackpaint-*"))
    result.hidden_leftovers = sum(result.leftover_kinds.values())
    return result


# --------------------------------------------------------------------------- the parent


def kill_once(workdir: Path, scratch: Path, delay: float, timeout: float = 30.0) -> CrashCheck:
    """Start the child on ``workdir``, SIGKILL it ``delay`` seconds after it is ready, check.

    Raises:
        RuntimeError: the child died on its own or never got ready (its stderr in the message).
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(scratch),
        RECOVERY_ENV: str(workdir / "recovery"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.robustness.crash_harness", "child", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        deadline = time.monotonic() + timeout
        line = proc.stdout.readline()
        if line.strip() != b"ready" or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"child not ready: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(delay)
        if proc.poll() is not None:
            raise RuntimeError(f"child died by itself: {proc.stderr.read().decode()[-2000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return check_workdir(workdir, scratch)


def run_kills(workdir: Path, kills: int, seed: int = 0, max_delay: float = 0.4) -> list[CrashCheck]:
    """``kills`` kill-and-check rounds on one growing project in ``workdir``; the child
    resumes each round from what the previous kill left behind."""
    rng = random.Random(seed)
    scratch = workdir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    return [kill_once(workdir, scratch, rng.uniform(0.0, max_delay)) for _ in range(kills)]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        child_main(Path(sys.argv[2]))
    else:
        sys.exit("usage: python -m tests.robustness.crash_harness child WORKDIR")


# --------------------------------------------------------------------------- propagate kills
#
# ``trackpaint propagate CLIP --init A|B --out OUT --project P`` over an existing output, killed
# with SIGKILL at a random moment after it started writing. The two initial masks carry object
# ids 1 and 2, so a complete result of either run is recognisable frame by frame, and each run
# starts from the mask OUT does not hold yet, so the "new" result always differs from the "old".
# After every kill OUT and P must each hold one complete result -- the previous or the new one,
# never a mix -- equal to the reference run of that mask, and only the killed run's own staging
# copies may lie beside them (the next run removes them).

PROP_N, PROP_H, PROP_W = 40, 48, 64
PROTOCOL = ("--model", "lab", "--radius", "2", "--keyframe-radius", "3", "--n-recent", "2")


@dataclass
class PropagateSetup:
    """The clip, the two initial masks, the targets and the reference results (per init id,
    the ``(N, H, W) uint8`` masks of an uninterrupted run)."""

    clip: Path
    inits: dict[int, Path]
    out: Path
    project: Path
    reference: dict[int, np.ndarray] = field(default_factory=dict)


@dataclass
class PropagateCheck:
    """What one propagate kill left: failures, where the kill landed ("propagating", "commit"
    or "finished"), which result OUT and P hold (the init id, or None) and hidden leftovers."""

    problems: list[str] = field(default_factory=list)
    phase: str = ""
    out_holds: int | None = None
    project_holds: int | None = None
    leftovers: int = 0


def propagate_argv(setup: PropagateSetup, init_id: int) -> list[str]:
    """The ``trackpaint`` arguments of a run from initial mask ``init_id``."""
    return [
        "-q",
        "propagate",
        str(setup.clip),
        "--init",
        str(setup.inits[init_id]),
        "--out",
        str(setup.out),
        "--project",
        str(setup.project),
        *PROTOCOL,
    ]


def make_propagate_setup(workdir: Path) -> PropagateSetup:
    """Write the clip and masks, run both masks once uninterrupted (the references), and leave
    OUT and P holding the result of mask 2 (so the first killed run, from mask 1, is new)."""
    import cv2

    from tests.fixtures_video import make_moving_square_frames, write_frame_folder
    from tracker_core.cli import main

    frames, masks = make_moving_square_frames(PROP_N, PROP_H, PROP_W)
    clip = workdir / "clip"
    write_frame_folder(clip, frames)
    inits = {}
    for k in (1, 2):
        inits[k] = workdir / f"init{k}.png"
        cv2.imwrite(str(inits[k]), masks[0] * k)
    setup = PropagateSetup(clip, inits, workdir / "out", workdir / "pre.trackpaint")
    for k in (1, 2):
        with contextlib.redirect_stdout(io.StringIO()):
            status = main(propagate_argv(setup, k))
        if status != 0:
            raise RuntimeError(f"the reference run from mask {k} failed")
        setup.reference[k] = _out_masks(setup.out)
    return setup


def _out_masks(folder: Path) -> np.ndarray:
    from tracker_core.masks import read_indexed_png

    return np.stack([read_indexed_png(p) for p in sorted(folder.glob("*.png"))])


def _holds(masks: np.ndarray, setup: PropagateSetup, what: str, problems: list[str]) -> int | None:
    """Which reference ``masks`` equals (the init id), recording a problem if neither."""
    if masks.shape != (PROP_N, PROP_H, PROP_W):
        problems.append(f"{what} holds {len(masks)} frames, not {PROP_N}")
        return None
    for k, ref in setup.reference.items():
        if np.array_equal(masks, ref):
            return k
    ids = sorted({int(i) for i in np.unique(masks)} - {0})
    problems.append(f"{what} equals neither complete result (object ids {ids})")
    return None


def check_propagate_targets(
    setup: PropagateSetup, before: tuple[int | None, int | None], new: int, pid: int
) -> PropagateCheck:
    """Check OUT and P after a kill of run ``pid`` writing the result of mask ``new`` over
    ``before`` = (what OUT held, what P held); see the section comment."""
    from tracker_core.errors import TrackpaintError
    from tracker_core.outputs import folder_problem, read_manifest
    from tracker_core.project import FrameState, Project, output_stamp

    result = PropagateCheck()
    if not setup.out.is_dir() or read_manifest(setup.out) is None:
        result.problems.append("OUT is missing or has no manifest")
    else:
        if folder_problem(setup.out) is not None:
            result.problems.append(f"OUT fails its own manifest: {folder_problem(setup.out)}")
        result.out_holds = _holds(_out_masks(setup.out), setup, "OUT", result.problems)
    try:
        if output_stamp(setup.project) is None:
            result.problems.append("P has no valid output stamp")
        with Project.open(setup.project) as project:
            states = project.states()
            masks = np.stack([project.labels(t).mask for t in range(project.num_frames)])
            conf = project.confidences()
        if states[0] != FrameState.PAINTED or not (states[1:] == FrameState.PROPAGATED).all():
            result.problems.append("P's frame states are not keyframe + propagated")
        if not np.isfinite(conf[1:]).all():
            result.problems.append("P has propagated frames without a confidence")
        result.project_holds = _holds(masks, setup, "P", result.problems)
    except TrackpaintError as exc:
        result.problems.append(f"P does not open: {exc}")
    for what, old, holds in zip(("OUT", "P"), before, (result.out_holds, result.project_holds)):
        if holds is not None and holds not in (old, new):
            result.problems.append(f"{what} holds mask {holds}'s result, not {old} or {new}")
    hidden = [p.name for p in setup.out.parent.iterdir() if p.name.startswith(".")]
    result.leftovers = len(hidden)
    stale = [name for name in hidden if f".{pid}-" not in name]  # earlier runs' leftovers
    if stale:
        result.problems.append(f"leftovers of earlier runs were not cleaned: {sorted(stale)}")
    return result


def propagate_kill_once(
    setup: PropagateSetup,
    before: tuple[int | None, int | None],
    delay: float,
    at_commit: bool = False,
    timeout: float = 60.0,
) -> PropagateCheck:
    """Run ``propagate`` over the current results ``before`` (what OUT and P hold) from the
    other mask and SIGKILL it ``delay`` seconds after its staging folder appears -- or, with
    ``at_commit``, after the project's temp file appears (the commit: project save and stamp,
    rename, manifest, swap) -- unless it finished first; then check the targets."""
    new = 2 if before[0] == 1 else 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracker_core.cli", *propagate_argv(setup, new)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    mine = f".{proc.pid}-"

    def own_entries() -> list[str]:
        return [n for n in os.listdir(setup.out.parent) if mine in n and n.startswith(".")]

    def started() -> bool:
        names = own_entries()
        if at_commit:  # the project's temp file appears when the commit begins
            return any(setup.project.name in n for n in names)
        return any(n.endswith(".partial") for n in names)

    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and not started():
            if time.monotonic() > deadline:
                raise RuntimeError("propagate never started writing")
            time.sleep(0.0005)
        time.sleep(delay)
        phase = "finished"
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            names = own_entries()
            committing = any(setup.project.name in n for n in names) or not any(
                n.endswith(".partial") for n in names
            )
            phase = "committing" if committing else "propagating"
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
    if phase == "finished" and proc.returncode != 0:
        raise RuntimeError(f"propagate failed by itself: {stderr[-2000:]}")
    result = check_propagate_targets(setup, before, new, proc.pid)
    result.phase = phase
    return result


def run_propagate_kills(
    workdir: Path, kills: int, seed: int = 0, max_delay: float = 3.5
) -> list[PropagateCheck]:
    """``kills`` rounds of :func:`propagate_kill_once`, each writing the result OUT does not
    hold yet over the one it holds; every third kill is aimed at the commit (0..40 ms after the
    project's temp file appears), the others land anywhere in the first ``max_delay`` seconds."""
    rng = random.Random(seed)
    setup = make_propagate_setup(workdir)
    before: tuple[int | None, int | None] = (2, 2)
    results = []
    for i in range(kills):
        at_commit = i % 3 == 2
        delay = rng.uniform(0.0, 0.04 if at_commit else max_delay)
        result = propagate_kill_once(setup, before, delay, at_commit)
        results.append(result)
        before = (result.out_holds, result.project_holds)
    return results
