"""Batch pre-labelling: many videos from a manifest, on a local process pool or a Ray cluster.

Every item runs :func:`tracker_core.prelabel.prelabel_video` -- the code path of
``trackpaint propagate`` -- in a worker (:func:`run_item`), writing

- ``OUT/<name>/<name>.trackpaint``: the project (keyframe PAINTED, every other frame PROPAGATED
  with its confidence), atomically, under the output rule of :mod:`tracker_core.outputs`;
- on request, exports through :func:`tracker_core.export.export_project`: ``davis`` ->
  ``OUT/<name>/Annotations/<video name>/NNNNN.png``, ``coco`` -> ``OUT/<name>/<name>.json``;
- last, ``OUT/<name>/.trackpaint-batch.json`` (:data:`STATE_NAME`): the item's input key and
  its result, written atomically once every output above is committed.

**Resume.** An item is *up to date* -- skipped, status ``"skipped (up to date)"`` -- when its
state file holds the same key (:func:`item_key`: a SHA-256 over the video's identity, the seed's
bytes, the model file's bytes and every setting that changes the output) and its outputs are
still the ones Trackpaint wrote (the project's output stamp and the exports' proofs hold). A
kill at any point leaves each output complete or absent, and no state file newer than its
outputs, so a re-run redoes exactly the unfinished items. A project corrected and saved in the
GUI is the user's: its item is not up to date, and recomputing it is refused (the item fails
naming the file) rather than overwriting the corrections.

**Failures.** An item that fails (missing or damaged video, bad mask, refused output, an
unexpected exception in its worker, a worker process that died) gets status
``"failed: <one line>"``; the other items go on.

**Where it runs.** :func:`run_local`: with one worker, in this process; else a
``ProcessPoolExecutor`` (forkserver where available, else spawn) with ``torch`` threads per
worker = cores // workers. :func:`run_ray`: one Ray task per video
(``ray.remote(num_cpus=..., num_gpus=...)``), on the cluster at ``address`` (``"auto"``: the
running one), or on the Ray session this process already started. No scheduler of our own.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import math
import multiprocessing
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tracker_core import __version__
from tracker_core.errors import ManifestError, TrackpaintError
from tracker_core.prelabel import Seed
from tracker_core.propagate import PropagationConfig
from tracker_core.propagator import DEFAULT_PRESET, PRESETS, load_propagator, preset_config

STATE_NAME = ".trackpaint-batch.json"
SUMMARY_NAME = "batch-summary.json"
STATE_VERSION = 1
COLUMNS = ("video", "mask", "frame", "project", "name", "model", "preset")
KNOWN_PRESETS = tuple(PRESETS)
"""Accepted in the ``preset`` column: that row is propagated with the preset (the batch's protocol
options still override it), and the preset is recorded in the key and the summary."""
EXPORT_FORMATS = ("davis", "coco")
STATUS_DONE = "done"
STATUS_SKIPPED = "skipped (up to date)"
FAILED_PREFIX = "failed: "
_NAME = re.compile(r"[^\s/\\:*?\"<>|\0][^/\\:*?\"<>|\0]*")

MANIFEST_HELP = """\
MANIFEST is CSV with a header row (.csv) or JSON Lines, one object per line (.jsonl / .ndjson;
other names: JSON Lines when the first non-blank character is '{'). Columns:

  video    (required) video file or frame folder
  mask     initial mask PNG (indexed or grey, 0 = background) ...
  frame      ... of this frame (default 0)
  project  ... or an existing .trackpaint project on the same video: its earliest keyframe
           (first painted frame) and that frame's id mask seed the run (other keyframes,
           keypoints and object names are not used)
  name     output name (default: the frame folder's name / the video file's stem); unique
  model    model checkpoint or 'lab' for this item (default: --model)
  preset   fast | accurate: this row's propagation preset (default: the batch's --preset)

Exactly one of mask / project per item. Relative paths resolve against the manifest's folder.
Each item writes OUT/<name>/<name>.trackpaint (+ --export targets) and a state file; a re-run
skips items whose inputs, settings and outputs are unchanged. Exit status: 0 every item done or
up to date, 1 some item failed (the others still ran), 2 bad manifest or options."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class BatchItem:
    """One manifest row, paths resolved. ``model`` None = the batch's ``--model``."""

    name: str
    video: Path
    seed: Seed
    model: str | None = None
    preset: str | None = None


@dataclass(frozen=True)
class BatchSettings:
    """What applies to every item: output root, default model, protocol, exports."""

    out: Path
    model: str | None = None
    lab_weight: float | None = None
    config: PropagationConfig = dataclasses.field(default_factory=PropagationConfig)
    # the protocol options given on the command line (field, value), applied on top of a row's
    # own preset; ``config`` is the batch's --preset with them
    overrides: tuple[tuple[str, Any], ...] = ()
    preset: str = DEFAULT_PRESET
    exports: tuple[str, ...] = ()
    # learned encoders' arithmetic for every item ("auto" is decided from the CPU's flags, the
    # same in every worker of one machine; give "fp32" on a cluster of different CPUs so every
    # node computes the same masks)
    precision: str = "fp32"


@dataclass(frozen=True)
class ItemResult:
    """One row of the summary. Numbers are nan/0 for a failed item."""

    name: str
    status: str
    frames: int = 0
    propagated: int = 0
    ms_per_frame: float = math.nan
    confidence_mean: float = math.nan
    confidence_min: float = math.nan
    damaged: int = 0
    seconds: float = 0.0
    encoder: str = ""
    preset: str | None = None
    outputs: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.status.startswith(FAILED_PREFIX)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (nan -> None)."""
        out = dataclasses.asdict(self)
        out["outputs"] = list(self.outputs)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ItemResult:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        for key in ("ms_per_frame", "confidence_mean", "confidence_min"):
            kwargs[key] = math.nan if kwargs.get(key) is None else float(kwargs[key])
        kwargs["outputs"] = tuple(kwargs.get("outputs", ()))
        return cls(**kwargs)


def item_dir(settings: BatchSettings, item: BatchItem) -> Path:
    """``OUT/<name>``: everything the item writes lives here."""
    return settings.out / item.name


def project_target(settings: BatchSettings, item: BatchItem) -> Path:
    """``OUT/<name>/<name>.trackpaint``."""
    return item_dir(settings, item) / f"{item.name}.trackpaint"


def export_out(settings: BatchSettings, item: BatchItem, fmt: str) -> Path:
    """The ``out`` argument of :func:`~tracker_core.export.export_project` for ``fmt``."""
    folder = item_dir(settings, item)
    return folder / f"{item.name}.json" if fmt == "coco" else folder


# --------------------------------------------------------------------------- manifest


def default_name(video: Path) -> str:
    """The frame folder's name or the video file's stem (what DAVIS/COCO exports name it)."""
    return video.name if video.is_dir() or not video.suffix else video.stem


def _rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` of a CSV or JSON Lines manifest."""
    suffix = path.suffix.lower()
    jsonl = suffix in (".jsonl", ".ndjson") or (suffix != ".csv" and text.lstrip().startswith("{"))
    if jsonl:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ManifestError(f"line {number}: not JSON ({exc.msg})", path) from None
            if not isinstance(row, dict):
                raise ManifestError(f"line {number}: not a JSON object", path)
            yield number, row
        return
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise ManifestError("is empty (no header row)", path)
    header = [(h or "").strip() for h in reader.fieldnames]
    reader.fieldnames = header
    if "video" not in header:
        raise ManifestError(f"line 1: header has no 'video' column (columns: {header})", path)
    for row in reader:
        if None in row:
            raise ManifestError(f"line {reader.line_num}: more fields than header columns", path)
        yield reader.line_num, {k: v for k, v in row.items() if v is not None and v.strip()}


def _text(value: Any, column: str, number: int, path: Path) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ManifestError(f"line {number}: '{column}' must be a string", path)
    return str(value).strip()


def parse_row(row: Mapping[str, Any], number: int, manifest: Path) -> BatchItem:
    """One manifest row -> a BatchItem; ManifestError (``line N: ...``) when malformed. Files
    are not opened here: a missing video or mask fails that item, not the manifest."""
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise ManifestError(
            f"line {number}: unknown column {unknown[0]!r} (known: {', '.join(COLUMNS)})",
            manifest,
        )
    values = {k: _text(v, k, number, manifest) for k, v in row.items() if v not in (None, "")}
    values = {k: v for k, v in values.items() if v}
    base = manifest.parent

    def resolve(p: str) -> Path:
        return Path(os.path.abspath(base / Path(p).expanduser()))

    if "video" not in values:
        raise ManifestError(f"line {number}: no 'video'", manifest)
    video = resolve(values["video"])
    has_mask, has_project = "mask" in values, "project" in values
    if has_mask == has_project:
        raise ManifestError(
            f"line {number}: give exactly one of 'mask' and 'project' "
            f"({'both' if has_mask else 'neither'} given)",
            manifest,
        )
    if has_mask:
        frame_text = values.get("frame", "0")
        if not re.fullmatch(r"\d+", frame_text):
            raise ManifestError(
                f"line {number}: 'frame' must be a frame index >= 0, got {frame_text!r}", manifest
            )
        seed = Seed("mask", resolve(values["mask"]), int(frame_text))
    else:
        if "frame" in values:
            raise ManifestError(
                f"line {number}: 'frame' goes with 'mask' (a project seeds from its earliest "
                "keyframe)",
                manifest,
            )
        seed = Seed("project", resolve(values["project"]))
    name = values.get("name") or default_name(video)
    if not _NAME.fullmatch(name) or name in (".", "..") or name.startswith("."):
        raise ManifestError(f"line {number}: {name!r} cannot name an output folder", manifest)
    preset = values.get("preset")
    if preset is not None and preset not in KNOWN_PRESETS:
        raise ManifestError(
            f"line {number}: unknown preset {preset!r} (known: {', '.join(KNOWN_PRESETS)})",
            manifest,
        )
    model = values.get("model")
    if model is not None and model != "lab":
        model = str(resolve(model))
    return BatchItem(name, video, seed, model, preset)


def read_manifest(path: str | Path) -> list[BatchItem]:
    """Every item of a CSV / JSON Lines manifest (:data:`MANIFEST_HELP`).

    Raises:
        ManifestError: unreadable file, malformed row, duplicate names, no items (one line
            naming the manifest and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError("is not UTF-8 text", path) from None
    except OSError as exc:
        raise ManifestError(f"cannot read ({exc.strerror or exc})", path) from None
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    for number, row in _rows(path, text):
        item = parse_row(row, number, path)
        key = item.name.casefold()
        if key in seen:
            raise ManifestError(
                f"line {number}: name {item.name!r} is used on line {seen[key]} too "
                "(add a 'name' column)",
                path,
            )
        seen[key] = number
        items.append(item)
    if not items:
        raise ManifestError("has no items", path)
    return items


# --------------------------------------------------------------------------- keys, state


def _digest_file(path: Path, cache: dict[Path, str]) -> str:
    """SHA-256 of a file's bytes, ``"missing"`` when unreadable (the item will fail)."""
    if path not in cache:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    h.update(chunk)
            cache[path] = h.hexdigest()
        except OSError:
            cache[path] = "missing"
    return cache[path]


def video_identity(video: Path) -> list[Any]:
    """Cheap identity of a video: ``[path, size, mtime_ns]`` of the file, or of every frame
    file of a folder (names included); ``["missing"]`` when it cannot be read."""
    from tracker_core.video import list_frame_files

    try:
        files = list_frame_files(video) if video.is_dir() else [video]
        stats = [(f.name, f.stat()) for f in files]
    except (OSError, TrackpaintError):
        return ["missing"]
    return [str(video), *[[n, s.st_size, s.st_mtime_ns] for n, s in stats]]


def model_identity(model: str | None, cache: dict[Path, str]) -> str:
    """``"lab"`` or the SHA-256 of the checkpoint that ``load_encoder(model)`` would load."""
    from tracker_core.encoder import DEFAULT_MODEL

    if model == "lab" or (model is None and not DEFAULT_MODEL.exists()):
        return "lab"
    return _digest_file(Path(model) if model is not None else DEFAULT_MODEL, cache)


def item_config(item: BatchItem, settings: BatchSettings) -> PropagationConfig:
    """The protocol of one item: its ``preset`` column with the batch's options on top, or the
    batch's config when the row names no preset."""
    if item.preset is None:
        return settings.config
    return preset_config(item.preset, dict(settings.overrides))


def item_key(item: BatchItem, settings: BatchSettings, cache: dict[Path, str]) -> str:
    """SHA-256 over everything that decides an item's outputs: video identity, seed bytes and
    frame, model bytes, lab weight, preset, protocol config, exports, Trackpaint version."""
    material = {
        "version": __version__,
        "video": video_identity(item.video),
        "seed": [item.seed.kind, item.seed.frame, _digest_file(item.seed.path, cache)],
        "model": model_identity(item.model or settings.model, cache),
        "lab_weight": settings.lab_weight,
        "precision": settings.precision,
        "preset": item.preset,
        "config": dataclasses.asdict(item_config(item, settings)),
        "exports": list(settings.exports),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _read_json(path: Path, marker: str) -> dict[str, Any] | None:
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 20:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get(marker) == STATE_VERSION else None


def state_problem(path: Path) -> str | None:
    """Proof for the state file: None when it is a batch state file Trackpaint wrote."""
    if _read_json(path, "trackpaint_batch") is None:
        return "is not a trackpaint batch state file"
    return None


def summary_problem(path: Path) -> str | None:
    """Proof for ``batch-summary.json``: None when it is a summary Trackpaint wrote."""
    if _read_json(path, "trackpaint_batch_summary") is None:
        return "is not a trackpaint batch summary"
    return None


def outputs_intact(item: BatchItem, settings: BatchSettings) -> bool:
    """True when the item's project and exports exist and are unchanged since written."""
    from tracker_core.export.coco import coco_problem
    from tracker_core.outputs import folder_problem, read_manifest
    from tracker_core.prelabel import project_problem

    project = project_target(settings, item)
    if not project.is_file() or project_problem(project) is not None:
        return False
    for fmt in settings.exports:
        out = export_out(settings, item, fmt)
        if fmt == "coco":
            if not out.is_file() or coco_problem(out) is not None:
                return False
        else:
            folder = out / "Annotations" / default_name(item.video)
            listed = read_manifest(folder)
            if listed is None or folder_problem(folder) is not None:
                return False
            if any(not (folder / name).is_file() for name in listed["files"]):
                return False  # folder_problem accepts a file removed; completeness does not
    return True


def up_to_date(item: BatchItem, settings: BatchSettings, key: str) -> ItemResult | None:
    """The stored result (status :data:`STATUS_SKIPPED`) when the item need not run again."""
    state = _read_json(item_dir(settings, item) / STATE_NAME, "trackpaint_batch")
    if state is None or state.get("key") != key or not isinstance(state.get("result"), dict):
        return None
    if not outputs_intact(item, settings):
        return None
    try:
        stored = ItemResult.from_json(state["result"])
    except (TypeError, ValueError):
        return None
    return dataclasses.replace(stored, status=STATUS_SKIPPED, seconds=0.0)


def write_json_output(path: Path, data: Mapping[str, Any], proof: Callable, inputs: list) -> None:
    """Write a small JSON output atomically, replacing only one Trackpaint wrote."""
    from tracker_core.outputs import StagedFile

    with StagedFile(path, proof, inputs) as tmp:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")


# --------------------------------------------------------------------------- one item


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, TrackpaintError):
        return str(exc)
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def run_item(item: BatchItem, settings: BatchSettings, key: str, threads: int) -> ItemResult:
    """Pre-label one item in this process (a pool worker, a Ray task, or the caller) and write
    its state file last. Never raises for the item's own problems: returns status
    ``"failed: <one line>"`` instead.

    Args:
        item: the manifest row.
        settings: the batch settings.
        key: :func:`item_key` computed when the batch was planned (stored in the state file).
        threads: torch threads for this worker (>= 1).
    """
    import time

    import torch

    from tracker_core.encoder import load_encoder
    from tracker_core.export import export_project
    from tracker_core.native_log import quiet_native_logging
    from tracker_core.prelabel import prelabel_video
    from tracker_core.project import Project

    t0 = time.perf_counter()
    quiet_native_logging()
    torch.set_num_threads(max(1, int(threads)))
    try:
        model = item.model or settings.model
        encoder = load_encoder(model, settings.lab_weight, precision=settings.precision)
        propagator = load_propagator(
            item.preset or settings.preset,
            encoder=encoder,
            overrides=dataclasses.asdict(item_config(item, settings)),
        )
        project = project_target(settings, item)
        result = prelabel_video(item.video, item.seed, propagator, project_path=project)
        outputs = [str(project)]
        if settings.exports:
            with Project.open(project) as opened:
                for fmt in settings.exports:
                    written = export_project(opened, fmt, export_out(settings, item, fmt))
                    outputs.append(str(written.path))
        done = ItemResult(
            item.name,
            STATUS_DONE,
            frames=result.frames,
            propagated=result.propagated,
            ms_per_frame=result.ms_per_frame,
            confidence_mean=result.confidence_mean,
            confidence_min=result.confidence_min,
            damaged=len(result.damaged),
            seconds=time.perf_counter() - t0,
            encoder=result.encoder,
            preset=item.preset,
            outputs=tuple(outputs),
        )
        state = {"trackpaint_batch": STATE_VERSION, "key": key, "result": done.to_json()}
        inputs = [("input video", item.video), (item.seed.label, item.seed.path)]
        write_json_output(item_dir(settings, item) / STATE_NAME, state, state_problem, inputs)
        return done
    except Exception as exc:  # one item's failure, whatever it is, must not stop the batch
        return failed(item, _one_line(exc), time.perf_counter() - t0)


def failed(item: BatchItem, message: str, seconds: float = 0.0) -> ItemResult:
    """The summary row of an item that failed with ``message`` (one line)."""
    return ItemResult(item.name, FAILED_PREFIX + message, seconds=seconds, preset=item.preset)


# --------------------------------------------------------------------------- runners

OnDone = Callable[[ItemResult], None]
Job = tuple[BatchItem, str]  # (item, key)


def default_workers(cores: int | None = None) -> int:
    """One worker per two cores, at least one."""
    return max(1, (cores or os.cpu_count() or 1) // 2)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """torch threads per worker so ``workers`` of them fill the cores without oversubscribing."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver (fast worker start, no fork of a threaded parent) where there is one, else
    spawn; never plain fork (torch's threads do not survive it)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["tracker_core.batch", "tracker_core.prelabel"])
        return ctx
    return multiprocessing.get_context("spawn")


def run_local(
    jobs: Sequence[Job], settings: BatchSettings, workers: int, threads: int, on_done: OnDone
) -> None:
    """Run ``jobs`` with ``workers`` processes (1: in this process); ``on_done`` per item."""
    workers = min(workers, len(jobs))
    if workers <= 1:
        for item, key in jobs:
            on_done(run_item(item, settings, key, threads))
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        futures = {pool.submit(run_item, item, settings, key, threads): item for item, key in jobs}
        for future in as_completed(futures):
            try:
                result = future.result()
            except Exception as exc:  # the worker process died (BrokenProcessPool) or similar
                result = failed(futures[future], f"worker process failed ({_one_line(exc)})")
            on_done(result)


def run_ray(
    jobs: Sequence[Job],
    settings: BatchSettings,
    address: str | None,
    cpus: float,
    gpus: float,
    on_done: OnDone,
) -> None:
    """One Ray task per item (``num_cpus=cpus``, ``num_gpus=gpus``; torch threads = cpus).

    ``address``: ``"auto"`` (the running cluster), ``"local"`` (start one on this machine) or a
    cluster address; ignored when this process already called ``ray.init``. A session started
    here is shut down at the end.
    """
    try:
        import ray
    except ImportError:
        raise TrackpaintError(
            "--ray needs the 'ray' package: pip install 'trackpaint[cluster]'"
        ) from None
    started = False
    if not ray.is_initialized():
        try:
            if address == "local":
                ray.init(include_dashboard=False, log_to_driver=False)
            else:
                ray.init(address=address, log_to_driver=False)
        except Exception as exc:
            raise TrackpaintError(
                f"cannot connect to Ray at {address!r} ({_one_line(exc)})"
            ) from None
        started = True
    try:
        task = ray.remote(num_cpus=cpus, num_gpus=gpus)(run_item)
        refs = {task.remote(item, settings, key, max(1, int(cpus))): item for item, key in jobs}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the task's worker died (RayTaskError, WorkerCrashed)
                    result = failed(refs[ref], f"ray task failed ({_one_line(exc)})")
                on_done(result)
    finally:
        if started:
            ray.shutdown()


# --------------------------------------------------------------------------- the batch


@dataclass(frozen=True)
class BatchPlan:
    """Which items run and which are up to date, decided before anything runs."""

    jobs: tuple[Job, ...]
    skipped: tuple[ItemResult, ...]


def plan_batch(items: Sequence[BatchItem], settings: BatchSettings) -> BatchPlan:
    """Key every item; those whose state and outputs are current are skipped."""
    cache: dict[Path, str] = {}
    jobs, skipped = [], []
    for item in items:
        key = item_key(item, settings, cache)
        stored = up_to_date(item, settings, key)
        if stored is None:
            jobs.append((item, key))
        else:
            skipped.append(stored)
    return BatchPlan(tuple(jobs), tuple(skipped))


def estimate_frames(video: Path) -> int:
    """Frame count for the progress bar (frame folder: image files; file: the container's
    claimed count); 0 when unknown."""
    from tracker_core.video import list_frame_files

    try:
        if video.is_dir():
            return len(list_frame_files(video))
        import cv2

        cap = cv2.VideoCapture(str(video))
        try:
            return max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        finally:
            cap.release()
    except (OSError, TrackpaintError):
        return 0


def summary_document(
    results: Sequence[ItemResult], manifest: Path, settings: BatchSettings, runner: str
) -> dict[str, Any]:
    """The content of ``batch-summary.json``."""
    return {
        "trackpaint_batch_summary": STATE_VERSION,
        "version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "manifest": str(manifest),
        "out": str(settings.out),
        "runner": runner,
        "failed": sum(r.failed for r in results),
        "items": [r.to_json() for r in results],
    }


def _fmt(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def summary_table(results: Sequence[ItemResult]) -> str:
    """The table printed at the end: item, frames, ms/frame, confidence mean/min, status."""
    width = max([4, *(len(r.name) for r in results)])
    lines = [f"{'item':{width}s}  frames  ms/frame  conf mean  conf min  status"]
    for r in results:
        lines.append(
            f"{r.name:{width}s}  {r.frames:6d}  {_fmt(r.ms_per_frame, '8.1f'):>8s}  "
            f"{_fmt(r.confidence_mean, '9.3f'):>9s}  {_fmt(r.confidence_min, '8.3f'):>8s}  "
            f"{r.status}"
        )
    return "\n".join(lines)


def run_batch(
    items: Sequence[BatchItem],
    settings: BatchSettings,
    *,
    manifest: Path,
    workers: int | None = None,
    threads: int = 0,
    ray_address: str | None = None,
    ray_cpus: float = 2.0,
    ray_gpus: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[ItemResult]:
    """Run a batch (see the module doc); write ``OUT/batch-summary.json``; return the results
    in manifest order.

    Args:
        items: from :func:`read_manifest`.
        settings: output root, model, protocol, exports.
        manifest: the manifest file (recorded in the summary).
        workers: local processes (default :func:`default_workers`); unused with Ray.
        threads: torch threads per local worker (0: :func:`threads_per_worker`).
        ray_address: None for the local pool; ``"auto"``, ``"local"`` or a cluster address.
        ray_cpus, ray_gpus: resources of each Ray task.
        progress: ``progress(frames done, frames total)`` after each finished item.
    """
    from tracker_core.outputs import check_not_input, make_parents

    inputs = [("manifest", manifest)]
    for item in items:
        inputs += [("input video", item.video), (item.seed.label, item.seed.path)]
    check_not_input(settings.out / SUMMARY_NAME, inputs)  # OUT is not, nor is inside, an input
    make_parents(settings.out)  # here, not racing in the workers
    plan = plan_batch(items, settings)
    results: dict[str, ItemResult] = {r.name: r for r in plan.skipped}
    estimates = {item.name: estimate_frames(item.video) for item, _ in plan.jobs}
    total = sum(estimates.values())
    done = 0

    def on_done(result: ItemResult) -> None:
        nonlocal done, total
        results[result.name] = result
        if result.frames:
            total += result.frames - estimates[result.name]
        done += result.frames or estimates[result.name]
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    if plan.jobs:
        if ray_address is not None:
            run_ray(plan.jobs, settings, ray_address, ray_cpus, ray_gpus, on_done)
            runner = f"ray ({ray_address}, {ray_cpus:g} CPU + {ray_gpus:g} GPU per task)"
        else:
            n = workers or default_workers()
            per = threads or threads_per_worker(n)
            run_local(plan.jobs, settings, n, per, on_done)
            runner = f"local ({n} worker{'s' if n > 1 else ''}, {per} threads each)"
    else:
        runner = "none (every item up to date)"
    ordered = [results[item.name] for item in items]
    document = summary_document(ordered, manifest, settings, runner)
    write_json_output(
        settings.out / SUMMARY_NAME, document, summary_problem, [("manifest", manifest)]
    )
    return ordered
