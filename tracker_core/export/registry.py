"""The one export entry point: :func:`export_project` and the format registry :data:`FORMATS`.

The CLI (``trackpaint export``), the GUI's export dialog and the tests all call
:func:`export_project`; a format owns its frame selection and naming here, so every caller
writes the same files.

Frame selection (the same for every format, chosen deliberately): **every frame of the video is
exported**. Frames with labels (PAINTED, PROPAGATED and STALE alike -- the project's state is not
a filter) are written with their labels; frames without labels (EMPTY) are written empty: an
all-zero PNG in DAVIS (the DAVIS convention: one annotation file per frame), an image entry
without annotations in COCO. So an export of a 40-frame video always reports 40 frames.

Naming, from ``out`` and the video name (the frame folder's name, or the video file's stem):

- ``davis``: ``out`` is a dataset root; the PNGs go to ``out/Annotations/<video>/00000.png ...``.
- ``coco``: ``out`` ending in ``.json`` is the file; any other ``out`` is a folder and the file
  is ``out/<video>.json`` (what the GUI dialog uses).

The project's video and its file are inputs (:mod:`tracker_core.outputs`): no export may be, lie
inside, or contain them; and an export replaces only a previous Trackpaint export.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from tracker_core.errors import ExportError
from tracker_core.export.coco import export_coco, frame_file_names
from tracker_core.export.davis import davis_folder, export_davis
from tracker_core.labels import FrameLabels
from tracker_core.outputs import Inputs
from tracker_core.project import FrameState, Project

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportOptions:
    """Format options; ``polygons``: COCO masks as polygons instead of RLE (ignored by DAVIS)."""

    polygons: bool = False


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote: the format, the path (DAVIS: the sequence folder; COCO: the
    file), the frames written (always every frame of the video) and how many carried labels."""

    format: str
    path: Path
    frames: int
    labelled: int


@dataclass(frozen=True)
class ExportFormat:
    """One entry of the registry: ``name`` (CLI ``--format``), ``label`` (shown in the GUI),
    ``target(out, video name)`` -> the path written, ``write(project, target, options,
    inputs, progress)`` -> writes every frame there."""

    name: str
    label: str
    target: Callable[[Path, str], Path]
    write: Callable[[Project, Path, ExportOptions, Inputs, ProgressFn | None], None]


def video_name(project: Project) -> str:
    """The sequence name of a project: the frame folder's name, or the video file's stem."""
    path = project.video_path
    return path.name if path.is_dir() else path.stem


def labelled_frames(project: Project) -> Iterator[tuple[int, FrameLabels]]:
    """``(index, labels)`` of every frame holding labels (any state but EMPTY), in order."""
    states = project.states()
    for t in range(project.num_frames):
        if states[t] != FrameState.EMPTY:
            yield t, project.labels(t)


def project_inputs(project: Project) -> list[tuple[str, Path | None]]:
    """What an export of ``project`` reads and so may not overwrite: its video and its file."""
    return [("input video", project.video_path), ("project file", project.path)]


def _coco_target(out: Path, name: str) -> Path:
    return out if out.suffix.lower() == ".json" else out / f"{name}.json"


def _write_davis(
    project: Project,
    target: Path,
    options: ExportOptions,
    inputs: Inputs,
    progress: ProgressFn | None,
) -> None:
    hw = (project.height, project.width)
    export_davis(
        target.parent.parent,
        labelled_frames(project),
        project.num_frames,
        hw,
        target.name,
        progress=progress,
        inputs=inputs,
    )


def _write_coco(
    project: Project,
    target: Path,
    options: ExportOptions,
    inputs: Inputs,
    progress: ProgressFn | None,
) -> None:
    n = project.num_frames
    export_coco(
        target,
        project.objects,
        labelled_frames(project),
        (project.height, project.width),
        frame_file_names(project.video_path, n),
        n,
        polygons=options.polygons,
        video_name=video_name(project),
        progress=progress,
        inputs=inputs,
    )


FORMATS: Mapping[str, ExportFormat] = MappingProxyType(
    {
        "davis": ExportFormat("davis", "DAVIS PNGs", davis_folder, _write_davis),
        "coco": ExportFormat("coco", "COCO JSON", _coco_target, _write_coco),
    }
)


def export_format(fmt: str) -> ExportFormat:
    """The registry entry named ``fmt``; ExportError for an unknown name."""
    try:
        return FORMATS[fmt]
    except KeyError:
        known = ", ".join(FORMATS)
        raise ExportError(f"unknown export format {fmt!r} (known: {known})") from None


def export_target(project: Project, fmt: str, out: str | Path) -> Path:
    """The path :func:`export_project` would write for these arguments."""
    return export_format(fmt).target(Path(out), video_name(project))


def export_project(
    project: Project,
    fmt: str,
    out: str | Path,
    *,
    polygons: bool = False,
    progress: ProgressFn | None = None,
) -> ExportResult:
    """Export every frame of ``project`` in format ``fmt`` (a :data:`FORMATS` key) to ``out``.

    Args:
        project: the open project (read only; thread-safe, so a worker thread may export).
        fmt: ``"davis"`` or ``"coco"``.
        out: DAVIS: dataset root; COCO: the ``.json`` file or a folder for ``<video>.json``.
        polygons: COCO masks as polygons instead of RLE.
        progress: called as ``progress(done, total)`` while writing.

    Returns:
        What was written (:class:`ExportResult`).

    Raises:
        ExportError: unknown format, a target that is an input or holds something Trackpaint
            did not write, inconsistent labels, or the target cannot be written (one line
            naming the path); nothing is left half-written and a previous export is intact.
    """
    spec = export_format(fmt)
    target = spec.target(Path(out), video_name(project))
    spec.write(project, target, ExportOptions(polygons=polygons), project_inputs(project), progress)
    labelled = int((project.states() != FrameState.EMPTY).sum())
    return ExportResult(spec.name, target, project.num_frames, labelled)


def describe_exports(results: Sequence[ExportResult]) -> str:
    """One line for the user: ``Exported 40 frames to /x/Annotations/bear and /x/bear.json``."""
    if not results:
        return "Nothing exported"
    n = results[0].frames
    noun = "frame" if n == 1 else "frames"
    return f"Exported {n} {noun} to " + " and ".join(str(r.path) for r in results)
