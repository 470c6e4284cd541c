"""The annotation document: objects, per-frame labels with per-object provenance, atomic
save/load/autosave.

A project file is one SQLite database (stdlib ``sqlite3``), schema version 2:

* ``meta(key TEXT PRIMARY KEY, value TEXT)`` holds ``format`` (``"trackpaint-project"``),
  ``schema_version``, ``video_path`` (relative to the project file when possible), ``num_frames``,
  ``height``, ``width`` and ``objects`` (a JSON list of :class:`~tracker_core.labels.ObjectSpec`);
  a project written by ``trackpaint propagate --project`` also holds ``output``, a JSON stamp
  with the fingerprint of its content (:func:`stamp_output`, :func:`output_stamp`).
* ``frames(idx INTEGER PRIMARY KEY, state, confidence, source, ids, keypoints, mask)`` holds one
  row per non-empty frame: the frame's *summary* provenance (see :func:`summarize`), the JSON list
  of object ids present in the mask, the keypoints as JSON ``{"<object id>": [[x, y, visible],
  ...]}`` (``null`` for an unplaced coordinate), and the mask as lossless PNG bytes (NULL when all
  background; last, so reading the small columns of every row never touches the mask pages).
* ``object_frames(idx, object, state, confidence, source)`` holds the provenance of each object
  on each frame where it is not EMPTY: its :class:`FrameState`, its propagation confidence (NULL
  unless propagated) and the keyframe *of that object* it was propagated from (``source``, NULL
  for its keyframes). A frame can be a keyframe of one object and propagated for another.

Schema 1 (before per-object provenance) had only the frame columns; :func:`migrate_v1` turns such a
file into schema 2 when it is opened (the file on disk is rewritten only by a save). It keeps every
label, confidence and source and infers each object's state: on a PAINTED frame the objects that
have labels there are PAINTED (all objects when the frame holds no labels at all: a deliberate
"nothing here" keyframe); on a PROPAGATED or STALE frame the objects with labels there or on the
frame it was propagated from get that state (all objects when neither holds labels).

Memory stays bounded for long videos: an open :class:`Project` works on a private scratch copy of
the database in a temporary directory (``scratch_dir``; default the system temp directory, so
pass a disk-backed folder where that is a RAM-backed tmpfs); every edit is written there at once
(encoded), and only a small LRU of decoded frames plus a few ``(N,)`` arrays (summary state,
confidence, source, ids; and state, confidence, source per object that has any) live in RAM.
:meth:`Project.save` copies the scratch database to the destination atomically (temp file in the
same directory, fsync, ``os.replace``, fsync of the directory), so a crash at any moment leaves
either the old or the new complete file. :meth:`Project.autosave` does the same to this process's
file in the per-user recovery folder (:mod:`tracker_core.recovery`: keyed by the project file, or
by the video for a never-saved project; never beside the project or the video), adding an
``autosave`` meta row that says whose it is, when it was written and what it holds.
:meth:`Project.recovery_offer` says which autosave to offer when the document is opened, and
:meth:`Project.recover` opens one.

Thread safety: every public method takes an internal re-entrant lock, so a worker thread may write
frames while the GUI thread reads them. :class:`~tracker_core.session.Session` is the only
intended mutator; the mutating methods here are its building blocks and do no undo bookkeeping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import math
import os
import shutil
import sqlite3
import tempfile
import threading
import types
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from tracker_core.durable import fsync_dir, process_alive
from tracker_core.errors import MaskError, ProjectError
from tracker_core.labels import FrameLabels, ObjectSpec
from tracker_core.masks import validate_mask
from tracker_core.outputs import clean_stale, unique_suffix
from tracker_core.recovery import (
    AUTOSAVE_EXT,
    AUTOSAVE_META_KEY,
    PROJECT_FORMAT,
    Autosave,
    Contents,
    Offer,
    Owner,
    RecoveryStore,
    legacy_autosave_path,
    project_owner,
    video_owner,
)

SCHEMA_VERSION = 2
FILE_FORMAT = PROJECT_FORMAT  # "trackpaint-project"
AUTOSAVE_SUFFIX = AUTOSAVE_EXT  # old-style <project>.autosave, and recovery files
PROJECT_SUFFIX = ".trackpaint"
DEFAULT_CACHE_SIZE = 16

_SQLITE_MAGIC = b"SQLite format 3\x00"
_OBJECT_FRAMES_SQL = (
    "CREATE TABLE object_frames ("
    " idx INTEGER NOT NULL, object INTEGER NOT NULL, state INTEGER NOT NULL, confidence REAL,"
    " source INTEGER, PRIMARY KEY (idx, object)) WITHOUT ROWID"
)
_SCHEMA_SQL = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE frames ("
    " idx INTEGER PRIMARY KEY, state INTEGER NOT NULL, confidence REAL, source INTEGER,"
    " ids TEXT NOT NULL DEFAULT '[]', keypoints TEXT, mask BLOB)",
    _OBJECT_FRAMES_SQL,
)
MAX_FRAMES = 10_000_000  # ~3.8 days at 30 fps; the (N,) per-frame arrays stay < 100 MB
MAX_SIDE = 32_768
SCRATCH_PREFIX = "trackpaint-scratch-"  # + "<pid>-<random>": lets a later run sweep orphans
OUTPUT_STAMP_KEY = "output"  # meta key of a batch tool's output stamp (see the end)
_META_KEYS = ("format", "schema_version", "video_path", "num_frames", "height", "width", "objects")


class FrameState(enum.IntEnum):
    """Provenance of one frame's labels (stored as a small integer)."""

    EMPTY = 0  # nothing annotated
    PAINTED = 1  # a user keyframe: the labels are ground truth
    PROPAGATED = 2  # computed by the propagator from a keyframe, still consistent with it
    STALE = 3  # propagated, but a keyframe it depends on was edited since


@dataclass(frozen=True)
class ObjectProvenance:
    """Where one object's labels on one frame come from: its state, its propagation confidence
    (nan unless propagated) and the keyframe of that object it was propagated from (or None)."""

    state: FrameState
    confidence: float = math.nan
    source: int | None = None


@dataclass(frozen=True)
class StoredFrame:
    """One frame exactly as stored (encoded), used for sparse, compact undo diffs.

    ``state``, ``confidence`` and ``source`` are the frame's summary (:func:`summarize` of
    ``objects`` whenever that is non-empty); ``objects`` the per-object provenance as sorted
    ``(object id, ObjectProvenance)`` pairs (EMPTY objects left out); ``mask_png`` a lossless PNG
    of the ``(H, W) uint8`` id mask, or None when all background; ``ids`` the object ids present
    in it; ``keypoints_json`` the keypoints JSON or None.
    """

    state: FrameState = FrameState.EMPTY
    confidence: float = math.nan
    source: int | None = None
    mask_png: bytes | None = None
    ids: tuple[int, ...] = ()
    keypoints_json: str | None = None
    objects: tuple[tuple[int, ObjectProvenance], ...] = ()

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the encoded payload, in bytes."""
        payload = len(self.mask_png or b"") + len(self.keypoints_json or "")
        return 64 + 32 * len(self.objects) + payload


def summarize(
    objects: Iterable[ObjectProvenance], fallback: FrameState = FrameState.EMPTY
) -> tuple[FrameState, float, int | None]:
    """The frame's summary ``(state, confidence, source)`` from its objects' provenance.

    State: PAINTED when the frame is a keyframe of any object, else STALE when any object is
    stale, else PROPAGATED when any is propagated, else ``fallback`` (used when no object has a
    state, e.g. a frame painted before any object existed). Confidence: the lowest finite
    confidence of a propagated or stale object (nan if none). Source: that of the first object
    (in the given order) with the summary state.
    """
    rows = list(objects)
    states = {r.state for r in rows}
    for state in (FrameState.PAINTED, FrameState.STALE, FrameState.PROPAGATED):
        if state in states:
            break
    else:
        return fallback, math.nan, None
    confs = [
        r.confidence
        for r in rows
        if r.state in (FrameState.PROPAGATED, FrameState.STALE) and math.isfinite(r.confidence)
    ]
    source = next(r.source for r in rows if r.state == state)
    return state, (min(confs) if confs else math.nan), source


@dataclass(frozen=True)
class ProjectInfo:
    """Video facts recorded in a project: ``video_path`` is absolute once loaded."""

    video_path: Path
    num_frames: int
    height: int
    width: int


@dataclass
class _ObjectMeta:
    """One object's per-frame provenance kept in RAM (``(N,)`` each)."""

    states: np.ndarray  # uint8 FrameState
    confidences: np.ndarray  # float32, nan where none
    sources: np.ndarray  # int32, -1 where none

    @classmethod
    def empty(cls, n: int) -> _ObjectMeta:
        return cls(np.zeros(n, np.uint8), np.full(n, np.nan, np.float32), np.full(n, -1, np.int32))

    def get(self, index: int) -> ObjectProvenance:
        src = int(self.sources[index])
        conf = float(self.confidences[index])
        return ObjectProvenance(
            FrameState(int(self.states[index])),
            math.nan if math.isnan(conf) else conf,  # the one nan object: equal StoredFrames
            None if src < 0 else src,
        )

    def put(self, index: int, prov: ObjectProvenance) -> None:
        self.states[index] = int(prov.state)
        self.confidences[index] = prov.confidence
        self.sources[index] = -1 if prov.source is None else prov.source


@dataclass
class _FrameMeta:
    """The per-frame arrays kept in RAM (``(N,)`` each): the frame summary, and per object
    (created when the object first gets a state)."""

    states: np.ndarray  # uint8 FrameState
    confidences: np.ndarray  # float32, nan where none
    sources: np.ndarray  # int32, -1 where none
    ids: list[tuple[int, ...]] = field(default_factory=list)
    objects: dict[int, _ObjectMeta] = field(default_factory=dict)


# --------------------------------------------------------------------------- encoding helpers


# Fast deflate, no PNG row filter: label maps are runs of equal ids, which filtering only turns
# into noise. A 480p mask encodes in 0.44 vs 2.4 ms, decodes in 0.21 vs 0.78 ms, and is smaller
# (4.7 vs 5.1 kB; benchmarks/RESULTS.md). An OpenCV without the filter option (older 4.x)
# writes its default filter: the same pixels, only slower.
_MASK_PNG = (cv2.IMWRITE_PNG_COMPRESSION, 1) + (
    (cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE)
    if hasattr(cv2, "IMWRITE_PNG_FILTER")
    else ()
)


def encode_mask(mask: np.ndarray) -> bytes | None:
    """``(H, W) uint8`` mask -> lossless PNG bytes, or None when the mask is all background."""
    if not mask.any():
        return None
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(mask), _MASK_PNG)
    if not ok:
        raise MaskError("cannot encode mask as PNG")
    return buf.tobytes()


def decode_mask(data: bytes | None, height: int, width: int) -> np.ndarray:
    """PNG bytes (or None = background) -> ``(H, W) uint8`` mask; raises MaskError on bad data."""
    if data is None:
        return np.zeros((height, width), np.uint8)
    if not isinstance(data, bytes) or not data:
        raise MaskError(f"stored mask is {type(data).__name__}, not PNG bytes")
    try:
        mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise MaskError("stored mask cannot be decoded") from exc
    if mask is None or mask.shape != (height, width) or mask.dtype != np.uint8:
        raise MaskError(f"stored mask is not a {height}x{width} 8-bit PNG")
    return mask


def encode_keypoints(keypoints: Mapping[int, np.ndarray]) -> str | None:
    """``{id: (P, 3) float32}`` -> JSON text (nan -> null), or None when nothing is placed."""
    placed = {k: v for k, v in keypoints.items() if np.isfinite(v[:, :2]).any()}
    if not placed:
        return None
    rows = {
        str(k): [[_json_float(x), _json_float(y), float(vis)] for x, y, vis in v.tolist()]
        for k, v in sorted(placed.items())
    }
    return json.dumps(rows, separators=(",", ":"))


def decode_keypoints(text: str | None) -> dict[int, np.ndarray]:
    """Inverse of :func:`encode_keypoints`; raises ValueError on malformed JSON."""
    if text is None:
        return {}
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("keypoints JSON is not an object")
    out: dict[int, np.ndarray] = {}
    for key, rows in raw.items():
        arr = np.array(
            [[math.nan if v is None else v for v in row] for row in rows], dtype=np.float32
        )
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise ValueError(f"keypoints of object {key} are not (P, 3) rows")
        out[int(key)] = arr
    return out


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def objects_to_json(objects: Sequence[ObjectSpec]) -> str:
    """Serialise object specs as a JSON list."""
    return json.dumps([dataclasses.asdict(o) for o in objects], separators=(",", ":"))


def objects_from_json(text: str) -> tuple[ObjectSpec, ...]:
    """Parse the ``objects`` meta value; raises ValueError/TypeError/KeyError when malformed."""
    raw = json.loads(text)
    if not isinstance(raw, list):
        raise ValueError("objects is not a JSON list")
    specs = tuple(
        ObjectSpec(
            id=int(o["id"]),
            name=str(o["name"]),
            color=tuple(int(c) for c in o["color"]),
            kind=o.get("kind", "mask"),
            keypoint_names=tuple(str(n) for n in o.get("keypoint_names", ())),
            skeleton=tuple((int(a), int(b)) for a, b in o.get("skeleton", ())),
        )
        for o in raw
    )
    check_objects(specs)
    return specs


def check_objects(objects: Sequence[ObjectSpec]) -> None:
    """Raise ValueError when ids repeat or a colour is not three 0..255 ints."""
    ids = [o.id for o in objects]
    if len(set(ids)) != len(ids):
        raise ValueError(f"object ids repeat: {sorted(ids)}")
    for o in objects:
        if len(o.color) != 3 or not all(0 <= c <= 255 for c in o.color):
            raise ValueError(f"object {o.id} colour {o.color} is not three values in 0..255")


def check_mask(mask: np.ndarray, hw: tuple[int, int], allowed_ids: Iterable[int]) -> np.ndarray:
    """Validate an id mask for a frame of size ``hw`` -> ``(H, W) uint8``.

    Raises MaskError for a wrong size/dtype (see :func:`tracker_core.masks.validate_mask`) or ids
    that are not in ``allowed_ids`` (the project's mask objects).
    """
    ids_mask = validate_mask(mask, hw)
    unknown = set(mask_ids(ids_mask)) - set(allowed_ids)
    if unknown:
        raise MaskError(f"mask holds ids {sorted(unknown)} that are not mask objects")
    return ids_mask


def mask_ids(mask: np.ndarray) -> tuple[int, ...]:
    """Sorted non-zero ids present in a ``(H, W) uint8`` mask."""
    counts = np.bincount(mask.ravel(), minlength=256)
    return tuple(int(i) for i in np.flatnonzero(counts[1:]) + 1)


def check_keypoints(keypoints: Mapping[int, np.ndarray], objects: Mapping[int, ObjectSpec]) -> None:
    """Raise MaskError unless every entry is a keypoint object's ``(P, 3)`` float array."""
    for oid, pts in keypoints.items():
        spec = objects.get(oid)
        if spec is None or spec.kind != "keypoints":
            raise MaskError(f"keypoints given for {oid}, which is not a keypoint object")
        n = len(spec.keypoint_names)
        arr = np.asarray(pts)
        if arr.shape != (n, 3):
            raise MaskError(f"keypoints of object {oid} must be ({n}, 3), got {arr.shape}")
        vis = arr[:, 2]
        if not np.isin(vis, (0.0, 1.0)).all():
            raise MaskError(f"keypoint visibility of object {oid} must be 0 or 1")


def autosave_path_for(project_path: Path) -> Path:
    """Where earlier versions autosaved: ``<name>.autosave`` beside ``project_path``. Only read
    (offered once, when newer than the project); autosaves now go to the recovery folder."""
    return legacy_autosave_path(project_path)


def _relative_video_path(video: Path, project_dir: Path) -> str:
    """Video path relative to the project directory when possible, else absolute (POSIX form)."""
    try:
        return Path(os.path.relpath(video, project_dir)).as_posix()
    except ValueError:  # different drive on Windows
        return video.as_posix()


def _check_sqlite_header(path: Path) -> None:
    """Raise ProjectError when ``path`` is not an SQLite file or is shorter than its header says."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
        size = path.stat().st_size
    except OSError as exc:
        raise ProjectError(f"cannot read project file ({exc.strerror})", path) from exc
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise ProjectError("not a Trackpaint project (not an SQLite database)", path)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise ProjectError("not a readable Trackpaint project (corrupt SQLite header)", path)
    page_count = int.from_bytes(header[28:32], "big")
    valid_count = header[24:28] == header[92:96] and page_count > 0
    if size % page_size != 0 or (valid_count and size < page_size * page_count):
        raise ProjectError("project file is truncated", path)


# --------------------------------------------------------------------------- the document


class Project:
    """An open annotation document. Create with :meth:`new` or :meth:`open`; call :meth:`close`.

    Frame indices are ``0 .. num_frames - 1``. Masks are ``(H, W) uint8`` ids; keypoints per
    keypoint object ``(P, 3) float32`` ``(x, y, visible)``. ``labels(t)`` always returns a mask
    (zeros when nothing painted) if the project has mask objects, else ``mask=None``; and an entry
    for every keypoint object (``nan`` rows where unplaced). Returned arrays are read-only.
    """

    def __init__(
        self,
        info: ProjectInfo,
        objects: Sequence[ObjectSpec],
        *,
        path: Path | None,
        cache_size: int,
        scratch_dir: str | Path | None = None,
        recovery: RecoveryStore | None = None,
        _scratch_from: Path | None = None,
    ) -> None:
        """Use :meth:`new` or :meth:`open`. Builds the scratch database in a new folder under
        ``scratch_dir`` (a copy of ``_scratch_from`` when given, else empty). ``recovery`` is
        where autosaves go (default: :class:`~tracker_core.recovery.RecoveryStore` ``()``)."""
        if info.num_frames < 1 or info.height < 1 or info.width < 1:
            raise ProjectError(
                f"video size {info.num_frames}x{info.height}x{info.width} is empty", path
            )
        if info.num_frames > MAX_FRAMES or max(info.height, info.width) > MAX_SIDE:
            raise ProjectError(
                f"implausible video size {info.num_frames}x{info.height}x{info.width} "
                f"(at most {MAX_FRAMES} frames of {MAX_SIDE} px per side)",
                path,
            )
        check_objects(objects)
        self._lock = threading.RLock()
        self._info = info
        self._objects: dict[int, ObjectSpec] = {o.id: o for o in objects}
        self._path = path
        self._cache_size = max(1, int(cache_size))
        self._cache: OrderedDict[int, FrameLabels] = OrderedDict()
        self._modified = False
        self._recovery = recovery if recovery is not None else RecoveryStore()
        self._video_owner: Owner | None = None
        parent = Path(scratch_dir) if scratch_dir is not None else Path(tempfile.gettempdir())
        sweep_stale_scratch(parent)
        try:
            prefix = f"{SCRATCH_PREFIX}{os.getpid()}-"
            self._scratch_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch_dir))
        except OSError as exc:
            raise ProjectError(
                f"cannot create scratch folder ({exc.strerror})", scratch_dir
            ) from exc
        self._db = sqlite3.connect(
            self._scratch_dir / "work.sqlite", check_same_thread=False, isolation_level=None
        )
        self._finalizer = weakref.finalize(self, _close_scratch, self._db, self._scratch_dir)
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA journal_mode=MEMORY")
        if _scratch_from is None:
            for sql in _SCHEMA_SQL:
                self._db.execute(sql)
            self._write_meta(self._db, self._info.video_path.as_posix())
        else:
            src = sqlite3.connect(f"file:{_scratch_from}?mode=ro", uri=True)
            try:
                src.backup(self._db)
            finally:
                src.close()
        n = info.num_frames
        self._meta = _FrameMeta(
            states=np.zeros(n, np.uint8),
            confidences=np.full(n, np.nan, np.float32),
            sources=np.full(n, -1, np.int32),
            ids=[()] * n,
        )

    # ---- construction -----------------------------------------------------------------------

    @classmethod
    def new(
        cls,
        video_path: str | Path,
        num_frames: int,
        height: int,
        width: int,
        objects: Sequence[ObjectSpec] = (),
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        scratch_dir: str | Path | None = None,
        recovery: RecoveryStore | None = None,
    ) -> Project:
        """A new, unsaved project for a video of ``num_frames`` frames of ``height x width``.
        ``cache_size`` bounds the decoded frames kept in RAM; ``scratch_dir`` see module doc;
        ``recovery`` the autosave folder (default: the per-user one)."""
        info = ProjectInfo(Path(video_path).absolute(), int(num_frames), int(height), int(width))
        return cls(
            info,
            objects,
            path=None,
            cache_size=cache_size,
            scratch_dir=scratch_dir,
            recovery=recovery,
        )

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        from_autosave: bool = False,
        cache_size: int = DEFAULT_CACHE_SIZE,
        scratch_dir: str | Path | None = None,
        recovery: RecoveryStore | None = None,
    ) -> Project:
        """Open a project file (or, with ``from_autosave``, the autosave :meth:`recovery_offer`
        would offer for it, keeping ``path`` as the document path and marking it modified).

        Raises ProjectError (one line, naming the file) for a missing, truncated, corrupt or
        non-project file, missing tables, a schema_version newer than this program, or
        inconsistent content (bad objects JSON, frame rows out of range or with unknown ids);
        with ``from_autosave`` also when the project has no autosave to offer.
        """
        path = Path(path).absolute()
        store = recovery if recovery is not None else RecoveryStore()
        source = path
        if from_autosave:
            offered = store.offer(project_owner(path), project_file=path).autosave
            if offered is None:
                raise ProjectError("the project has no autosave to recover", path)
            source = offered.path
        return cls._open_from(source, path, cache_size, scratch_dir, store, from_autosave)

    @classmethod
    def recover(
        cls,
        autosave: Autosave,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        scratch_dir: str | Path | None = None,
        recovery: RecoveryStore | None = None,
    ) -> Project:
        """Open an autosave found by :meth:`RecoveryStore.offer` as the document it belongs to:
        the saved project's path, or no path for unsaved work on a video; marked modified.
        Then call :meth:`adopt` so the recovered state is this process's autosave."""
        path = autosave.owner.path if autosave.owner.kind == "project" else None
        return cls._open_from(autosave.path, path, cache_size, scratch_dir, recovery, True)

    @classmethod
    def _open_from(
        cls,
        source: Path,
        path: Path | None,
        cache_size: int,
        scratch_dir: str | Path | None,
        recovery: RecoveryStore | None,
        modified: bool,
    ) -> Project:
        """Open the database ``source`` as the document at ``path``; see :meth:`open`."""
        if not source.exists():
            raise ProjectError("no such project file", source)
        if not source.is_file():
            raise ProjectError("not a project file (a folder?)", source)
        _check_sqlite_header(source)
        try:
            info, objects = _read_meta(source)
            project = cls(
                info,
                objects,
                path=path,
                cache_size=cache_size,
                scratch_dir=scratch_dir,
                recovery=recovery,
                _scratch_from=source,
            )
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise ProjectError(f"not a readable Trackpaint project ({exc})", source) from exc
        try:
            project._load_frame_meta(source)
        except BaseException:
            project.close()
            raise
        project._modified = modified
        return project

    def _load_frame_meta(self, source: Path) -> None:
        """Fill the in-RAM per-frame arrays from the scratch db (migrating a schema-1 file
        first); validate rows."""
        try:
            check = self._db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise ProjectError(f"project database is corrupt ({check})", source)
            rows = self._db.execute(
                "SELECT idx, state, confidence, source, ids FROM frames"
            ).fetchall()
            version = self._db.execute(
                "SELECT value FROM meta WHERE key='schema_version'"
            ).fetchone()[0]
            tables = {
                r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise ProjectError(f"project database is corrupt ({exc})", source) from exc
        n = self._info.num_frames
        mask_ids_ok = {o.id for o in self._objects.values() if o.kind == "mask"}
        for idx, state, conf, src, ids_text in rows:
            if not (isinstance(idx, int) and 0 <= idx < n):
                raise ProjectError(f"frame row {idx!r} is outside 0..{n - 1}", source)
            try:
                st = FrameState(state)
                ids = tuple(int(i) for i in json.loads(ids_text))
            except (ValueError, TypeError) as exc:
                raise ProjectError(f"frame {idx} has a malformed row ({exc})", source) from exc
            if not set(ids) <= mask_ids_ok:
                raise ProjectError(f"frame {idx} holds ids {ids} that are not mask objects", source)
            if not (conf is None or isinstance(conf, (int, float))) or not (
                src is None or (isinstance(src, int) and 0 <= src < n)
            ):
                raise ProjectError(
                    f"frame {idx} has a malformed row (confidence {conf!r}, source {src!r})", source
                )
            self._meta.states[idx] = st
            self._meta.confidences[idx] = math.nan if conf is None else conf
            self._meta.sources[idx] = -1 if src is None else src
            self._meta.ids[idx] = ids
        if int(version) < 2:
            try:
                migrate_v1(self._db, self._objects, source)
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                raise ProjectError(f"cannot read the schema-1 project ({exc})", source) from exc
        elif "object_frames" not in tables:
            missing = "missing tables ['object_frames']"
            raise ProjectError(f"not a Trackpaint project ({missing})", source)
        self._load_object_rows(source)

    def _load_object_rows(self, source: Path) -> None:
        """Read ``object_frames`` into the per-object arrays and derive each frame's summary."""
        try:
            rows = self._db.execute(
                "SELECT idx, object, state, confidence, source FROM object_frames"
                " ORDER BY idx, object"
            ).fetchall()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise ProjectError(f"project database is corrupt ({exc})", source) from exc
        n = self._info.num_frames
        by_frame: dict[int, list[ObjectProvenance]] = {}
        for idx, oid, state, conf, src in rows:
            bad = (
                not (isinstance(idx, int) and 0 <= idx < n)
                or oid not in self._objects
                or state not in (FrameState.PAINTED, FrameState.PROPAGATED, FrameState.STALE)
                or not (conf is None or isinstance(conf, (int, float)))
                or not (src is None or (isinstance(src, int) and 0 <= src < n))
            )
            if bad:
                raise ProjectError(
                    f"object row (frame {idx!r}, object {oid!r}) is malformed or names an "
                    "unknown object",
                    source,
                )
            if self._meta.states[idx] == FrameState.EMPTY:
                raise ProjectError(f"frame {idx} has object provenance but no frame row", source)
            prov = ObjectProvenance(
                FrameState(state), math.nan if conf is None else float(conf), src
            )
            self._object_meta(oid).put(idx, prov)
            by_frame.setdefault(idx, []).append(prov)
        for idx, provs in by_frame.items():
            st, conf, src = summarize(provs)
            self._meta.states[idx] = st
            self._meta.confidences[idx] = conf
            self._meta.sources[idx] = -1 if src is None else src

    def close(self) -> None:
        """Release the scratch database. Unsaved changes are lost (autosave first if needed)."""
        with self._lock:
            self._cache.clear()
            self._finalizer()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- facts -----------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The project file (absolute), or None before the first save."""
        return self._path

    @property
    def info(self) -> ProjectInfo:
        """Video path (absolute), frame count and size."""
        return self._info

    @property
    def video_path(self) -> Path:
        return self._info.video_path

    @property
    def num_frames(self) -> int:
        return self._info.num_frames

    @property
    def height(self) -> int:
        return self._info.height

    @property
    def width(self) -> int:
        return self._info.width

    @property
    def modified(self) -> bool:
        """True when there are changes since the last :meth:`save` (or open/new)."""
        return self._modified

    def mark_unmodified(self) -> None:
        """Declare the current content the baseline (e.g. a bundled sample keyframe that comes
        with the document): ``modified`` is False until the next change."""
        with self._lock:
            self._modified = False

    @property
    def cache_len(self) -> int:
        """Number of decoded frames currently held in RAM (bounded by ``cache_size``)."""
        return len(self._cache)

    @property
    def cache_size(self) -> int:
        return self._cache_size

    # ---- objects ---------------------------------------------------------------------------

    @property
    def objects(self) -> tuple[ObjectSpec, ...]:
        """All objects, ordered by id."""
        with self._lock:
            return tuple(self._objects[k] for k in sorted(self._objects))

    def object(self, object_id: int) -> ObjectSpec:
        """The object with this id; KeyError when absent."""
        with self._lock:
            try:
                return self._objects[object_id]
            except KeyError:
                raise KeyError(f"no object with id {object_id}") from None

    def mask_object_ids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(k for k, o in self._objects.items() if o.kind == "mask"))

    def keypoint_object_ids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(k for k, o in self._objects.items() if o.kind == "keypoints"))

    def next_object_id(self) -> int:
        """Smallest unused id in 1..255; ProjectError when all are taken."""
        with self._lock:
            for i in range(1, 256):
                if i not in self._objects:
                    return i
        raise ProjectError("all 255 object ids are in use", self._path)

    def add_object(self, spec: ObjectSpec) -> None:
        """Add an object; ValueError when its id is taken."""
        with self._lock:
            if spec.id in self._objects:
                raise ValueError(f"object id {spec.id} is already used")
            self.set_objects((*self._objects.values(), spec))

    def replace_object(self, spec: ObjectSpec) -> None:
        """Replace the object with ``spec.id`` (rename/recolour/skeleton); ValueError when its
        kind or number of keypoints changes, KeyError when it does not exist."""
        with self._lock:
            old = self.object(spec.id)
            if old.kind != spec.kind or len(old.keypoint_names) != len(spec.keypoint_names):
                raise ValueError(f"object {spec.id}: kind and number of keypoints are fixed")
            self.set_objects(spec if o.id == spec.id else o for o in self._objects.values())

    def remove_object(self, object_id: int) -> list[int]:
        """Remove an object, erase its pixels/keypoints from every frame and drop its provenance
        (the other objects' states are kept; a frame left with no object provenance keeps its
        summary state). Returns the frames that were rewritten (:meth:`frames_touching_object`)."""
        with self._lock:
            spec = self.object(object_id)
            touched = self.frames_touching_object(object_id)
            for t in self.frames_with_object(object_id):
                labels = self.labels(t)
                mask = labels.mask
                if spec.kind == "mask" and mask is not None:
                    mask = np.where(mask == object_id, 0, mask).astype(np.uint8)
                kps = {k: v for k, v in labels.keypoints.items() if k != object_id}
                self._write_frame(t, FrameLabels(mask, kps), self.stored(t))
            self.set_objects(o for o in self._objects.values() if o.id != object_id)
            return touched

    def set_objects(self, objects: Iterable[ObjectSpec]) -> None:
        """Replace the whole object list (used by undo). Frames are not checked or rewritten; the
        provenance of objects no longer in the list is dropped."""
        objs = tuple(objects)
        check_objects(objs)
        with self._lock:
            gone = set(self._objects) - {o.id for o in objs}
            self._objects = {o.id: o for o in objs}
            self._db.execute(
                "UPDATE meta SET value=? WHERE key='objects'", (objects_to_json(self.objects),)
            )
            for oid in sorted(gone):
                meta = self._meta.objects.pop(oid, None)
                if meta is None:
                    continue
                self._db.execute("DELETE FROM object_frames WHERE object=?", (oid,))
                self._update_summaries(np.flatnonzero(meta.states).tolist())
            self._cache.clear()
            self._modified = True

    def frames_with_object(self, object_id: int) -> list[int]:
        """Frames whose mask holds ``object_id`` or whose keypoints of it are placed."""
        with self._lock:
            spec = self.object(object_id)
            if spec.kind == "mask":
                return [t for t, ids in enumerate(self._meta.ids) if object_id in ids]
            rows = self._db.execute(
                "SELECT idx, keypoints FROM frames WHERE keypoints IS NOT NULL ORDER BY idx"
            )
            return [int(t) for t, text in rows if str(object_id) in json.loads(text)]

    def frames_touching_object(self, object_id: int) -> list[int]:
        """Frames where ``object_id`` has labels or a (non-EMPTY) provenance, ascending."""
        with self._lock:
            with_state = np.flatnonzero(self.object_states(object_id)).tolist()
            return sorted(set(self.frames_with_object(object_id)) | set(with_state))

    # ---- per-frame queries -----------------------------------------------------------------
    # The frame-level queries (states, state, source, confidences, sources, keyframes) return the
    # summary of :func:`summarize`; the object_* queries the provenance of one object.

    def states(self) -> np.ndarray:
        """``(N,) uint8`` summary :class:`FrameState` values (a copy)."""
        with self._lock:
            return self._meta.states.copy()

    def state(self, index: int) -> FrameState:
        """The frame's summary state."""
        self._check_index(index)
        return FrameState(int(self._meta.states[index]))

    def source(self, index: int) -> int | None:
        """Summary source of frame ``index`` (see :func:`summarize`), or None."""
        self._check_index(index)
        src = int(self._meta.sources[index])
        return None if src < 0 else src

    def confidences(self) -> np.ndarray:
        """``(N,) float32`` frame confidence in [0, 1]: the lowest confidence of its propagated or
        stale objects, nan where none (a copy)."""
        with self._lock:
            return self._meta.confidences.copy()

    def sources(self) -> np.ndarray:
        """``(N,) int32`` summary source per frame, -1 if none (a copy)."""
        with self._lock:
            return self._meta.sources.copy()

    def keyframes(self) -> list[int]:
        """Frames that are a keyframe of at least one object (summary PAINTED), ascending."""
        with self._lock:
            return np.flatnonzero(self._meta.states == FrameState.PAINTED).tolist()

    def object_states(self, object_id: int) -> np.ndarray:
        """``(N,) uint8`` :class:`FrameState` of one object on every frame (a copy)."""
        with self._lock:
            self.object(object_id)
            meta = self._meta.objects.get(object_id)
            return np.zeros(self.num_frames, np.uint8) if meta is None else meta.states.copy()

    def object_confidences(self, object_id: int) -> np.ndarray:
        """``(N,) float32`` one object's propagation confidence, nan where none (a copy)."""
        with self._lock:
            self.object(object_id)
            meta = self._meta.objects.get(object_id)
            if meta is None:
                return np.full(self.num_frames, np.nan, np.float32)
            return meta.confidences.copy()

    def object_sources(self, object_id: int) -> np.ndarray:
        """``(N,) int32`` the keyframe of this object each frame was propagated from, -1 if none."""
        with self._lock:
            self.object(object_id)
            meta = self._meta.objects.get(object_id)
            return np.full(self.num_frames, -1, np.int32) if meta is None else meta.sources.copy()

    def object_keyframes(self, object_id: int) -> list[int]:
        """Frames that are keyframes of ``object_id`` (its state PAINTED), ascending."""
        return np.flatnonzero(self.object_states(object_id) == FrameState.PAINTED).tolist()

    def provenance(self, index: int) -> dict[int, ObjectProvenance]:
        """``{object id: provenance}`` of every object on frame ``index`` (EMPTY ones too)."""
        self._check_index(index)
        with self._lock:
            out = {oid: ObjectProvenance(FrameState.EMPTY) for oid in sorted(self._objects)}
            for oid, meta in self._meta.objects.items():
                if meta.states[index]:
                    out[oid] = meta.get(index)
            return out

    def object_state(self, index: int, object_id: int) -> FrameState:
        """The state of one object on one frame."""
        return self.provenance(index)[self.object(object_id).id].state

    def labels(self, index: int) -> FrameLabels:
        """The labels of frame ``index`` (read-only arrays; copy before editing)."""
        self._check_index(index)
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
            try:
                row = self._db.execute(
                    "SELECT mask, keypoints FROM frames WHERE idx=?", (index,)
                ).fetchone()
                mask_png, kp_text = (None, None) if row is None else row
                labels = self._complete(
                    decode_mask(mask_png, self.height, self.width), decode_keypoints(kp_text)
                )
            except (MaskError, ValueError, TypeError, sqlite3.DatabaseError) as exc:
                raise ProjectError(f"frame {index} is stored corrupt ({exc})", self._path) from exc
            self._remember(index, labels)
            return labels

    def stored(self, index: int) -> StoredFrame:
        """Frame ``index`` exactly as stored (encoded) — for undo diffs."""
        self._check_index(index)
        with self._lock:
            row = self._db.execute(
                "SELECT state, confidence, source, ids, keypoints, mask FROM frames WHERE idx=?",
                (index,),
            ).fetchone()
            objects = self._object_rows(index)
        if row is None:
            return StoredFrame()
        state, conf, src, ids, kps, mask_png = row
        return StoredFrame(
            state=FrameState(state),
            confidence=math.nan if conf is None else float(conf),
            source=src,
            mask_png=mask_png,
            ids=tuple(json.loads(ids)),
            keypoints_json=kps,
            objects=objects,
        )

    # ---- per-frame mutation (used by Session) -----------------------------------------------

    def set_frame(
        self,
        index: int,
        labels: FrameLabels,
        state: FrameState,
        *,
        confidence: float = math.nan,
        source: int | None = None,
    ) -> None:
        """Store ``labels`` for frame ``index`` with provenance ``state`` for EVERY object.

        ``confidence`` is meaningful for PROPAGATED/STALE frames; ``source`` is the keyframe the
        frame was propagated from. Raises MaskError for a mask of the wrong size/dtype or with
        ids that are not mask objects, and for malformed keypoints. ``state=EMPTY`` clears.
        Use :meth:`set_labels` to give objects different provenance.
        """
        self._check_index(index)
        with self._lock:
            if state == FrameState.EMPTY:
                self.restore(index, StoredFrame())
                return
            labels = self._checked(labels)
            prov = ObjectProvenance(FrameState(state), confidence, source)
            meta = StoredFrame(
                state=FrameState(state),
                confidence=confidence,
                source=source,
                objects=tuple((oid, prov) for oid in sorted(self._objects)),
            )
            self._write_frame(index, labels, meta)

    def set_labels(
        self, index: int, labels: FrameLabels, updates: Mapping[int, ObjectProvenance]
    ) -> None:
        """Store ``labels`` for frame ``index`` and set the provenance of the objects in
        ``updates`` (an EMPTY state removes it); other objects keep theirs. The summary follows
        (:func:`summarize`). Raises MaskError like :meth:`set_frame`, KeyError for an unknown
        object, and ValueError when labels would remain with no object provenance at all."""
        self._check_index(index)
        with self._lock:
            for oid in updates:
                self.object(oid)
            labels = self._checked(labels)
            rows = dict(self._object_rows(index))
            for oid, prov in updates.items():
                if prov.state == FrameState.EMPTY:
                    rows.pop(oid, None)
                else:
                    rows[oid] = prov
            objects = tuple(sorted(rows.items()))
            if not objects:
                if not labels.is_empty():
                    raise ValueError(f"frame {index}: labels need an object with a state")
                self.restore(index, StoredFrame())
                return
            state, conf, src = summarize(p for _, p in objects)
            meta = StoredFrame(state=state, confidence=conf, source=src, objects=objects)
            self._write_frame(index, labels, meta)

    def set_object_states(self, indices: Iterable[int], object_id: int, state: FrameState) -> None:
        """Change only the state of ``object_id`` on the given frames (labels, confidences and
        sources untouched); frames where the object has no state (EMPTY) are left alone."""
        if state == FrameState.EMPTY:
            raise ValueError("set_object_states cannot clear; use set_labels")
        idx = sorted(set(int(i) for i in indices))
        for i in idx:
            self._check_index(i)
        with self._lock:
            self.object(object_id)
            meta = self._meta.objects.get(object_id)
            if meta is None or not idx:
                return
            idx = [i for i in idx if meta.states[i]]
            self._db.executemany(
                "UPDATE object_frames SET state=? WHERE idx=? AND object=?",
                [(int(state), i, object_id) for i in idx],
            )
            meta.states[idx] = int(state)
            self._update_summaries(idx)
            self._modified = True

    def restore(self, index: int, frame: StoredFrame) -> None:
        """Put back a frame exactly as returned by :meth:`stored` (no validation; provenance of
        objects that no longer exist is skipped)."""
        self._check_index(index)
        with self._lock:
            self._db.execute("DELETE FROM object_frames WHERE idx=?", (index,))
            if frame.state == FrameState.EMPTY:
                self._db.execute("DELETE FROM frames WHERE idx=?", (index,))
            else:
                self._db.execute(
                    "INSERT OR REPLACE INTO frames VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        index,
                        int(frame.state),
                        None if math.isnan(frame.confidence) else frame.confidence,
                        frame.source,
                        json.dumps(list(frame.ids)),
                        frame.keypoints_json,
                        frame.mask_png,
                    ),
                )
            for meta in self._meta.objects.values():
                meta.put(index, ObjectProvenance(FrameState.EMPTY))
            rows = [(oid, p) for oid, p in frame.objects if oid in self._objects]
            if frame.state != FrameState.EMPTY:
                self._db.executemany(
                    "INSERT INTO object_frames VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            index,
                            oid,
                            int(p.state),
                            None if math.isnan(p.confidence) else p.confidence,
                            p.source,
                        )
                        for oid, p in rows
                    ],
                )
                for oid, p in rows:
                    self._object_meta(oid).put(index, p)
            self._set_meta_row(index, frame.state, frame.confidence, frame.source, frame.ids)
            self._cache.pop(index, None)
            self._modified = True

    # ---- persistence -----------------------------------------------------------------------

    def save(self, path: str | Path | None = None) -> Path:
        """Atomically write the project to ``path`` (default: the current path) and make it the
        document path. On failure the previous file is intact and ProjectError is raised.
        A successful save removes this document's autosave (the one under the old key too,
        after a save to a new path: later autosaves are keyed by the new path)."""
        with self._lock:
            target = Path(path).absolute() if path is not None else self._path
            if target is None:
                raise ProjectError("project has never been saved; choose a file name")
            before = self.autosave_owner()
            self._write_atomic(target)
            self._path = target
            self._modified = False
            self._recovery.remove_own(before)
            self._recovery.remove_own(self.autosave_owner())
            return target

    @property
    def recovery(self) -> RecoveryStore:
        """Where this document autosaves."""
        return self._recovery

    def autosave_owner(self) -> Owner:
        """Whom this document's autosaves belong to: the project file, or the video (its
        identity taken once, when first needed) while the project was never saved."""
        if self._path is not None:
            return project_owner(self._path)
        if self._video_owner is None:
            self._video_owner = video_owner(self._info.video_path)
        return self._video_owner

    def autosave_path(self) -> Path:
        """Where :meth:`autosave` writes: this process's file in the recovery folder."""
        return self._recovery.path_for(self.autosave_owner())

    def autosave(self) -> Path:
        """Atomically write a recovery copy to :meth:`autosave_path`; the document path and
        ``modified`` flag are unchanged. Returns the recovery file path."""
        with self._lock:
            owner = self.autosave_owner()
            target = self._recovery.path_for(owner)
            self._recovery.prepare()
            self._write_atomic(target, autosave=self._recovery.stamp(owner, self._contents()))
            return target

    def recovery_offer(self) -> Offer:
        """The autosave to offer for this document (see :meth:`RecoveryStore.offer`)."""
        return self._recovery.offer(self.autosave_owner(), project_file=self._path)

    def recovery_path(self) -> Path | None:
        """The file :meth:`recovery_offer` offers, or None."""
        offered = self.recovery_offer().autosave
        return None if offered is None else offered.path

    def adopt(self, offer: Offer) -> Path:
        """After :meth:`recover` from ``offer``: write the recovered state as this process's
        autosave, then delete the offered file and older leftovers of it. Raises ProjectError
        (and deletes nothing) when the autosave cannot be written."""
        own = self.autosave()
        self._recovery.discard(offer, keep=own)
        return own

    def discard_autosave(self) -> None:
        """Delete this process's autosave of the document (its changes were discarded)."""
        self._recovery.remove_own(self.autosave_owner())

    def _contents(self) -> Contents:
        states = self._meta.states
        return Contents(
            num_frames=self._info.num_frames,
            painted=int(np.count_nonzero(states == FrameState.PAINTED)),
            propagated=int(np.count_nonzero(states == FrameState.PROPAGATED)),
            stale=int(np.count_nonzero(states == FrameState.STALE)),
            objects=tuple(o.name for o in self.objects),
        )

    def _write_atomic(self, target: Path, autosave: str | None = None) -> None:
        """Copy the scratch db to ``target`` via temp file + fsync + os.replace + dir fsync.
        ``autosave``: the meta row that marks an autosave (its video path stays absolute).
        The temp file is named ``.<name>.<pid>-<random>.tmp`` so that a later write of the same
        target removes the ones of killed processes (:func:`tracker_core.outputs.clean_stale`)."""
        directory = target.parent
        clean_stale(target)
        tmp = directory / f".{target.name}.{unique_suffix()}.tmp"
        try:  # O_EXCL with mode 0o666 so the saved file gets the user's umask (mkstemp: 0o600)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as exc:
            raise ProjectError(f"cannot write project ({exc.strerror})", target) from exc
        try:
            dst = sqlite3.connect(tmp, isolation_level=None)
            try:
                self._db.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                video = self._info.video_path.as_posix()
                if autosave is None:
                    video = _relative_video_path(self._info.video_path, directory)
                    dst.execute("DELETE FROM meta WHERE key=?", (AUTOSAVE_META_KEY,))
                else:
                    dst.execute(
                        "INSERT OR REPLACE INTO meta VALUES (?, ?)", (AUTOSAVE_META_KEY, autosave)
                    )
                dst.execute("UPDATE meta SET value=? WHERE key='video_path'", (video,))
            finally:
                dst.close()
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
            fsync_dir(directory)
        except (OSError, sqlite3.Error) as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise ProjectError(f"cannot write project ({exc})", target) from exc

    # ---- internals -------------------------------------------------------------------------

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self._info.num_frames:
            raise IndexError(f"frame {index} is outside 0..{self._info.num_frames - 1}")

    def _complete(self, mask: np.ndarray, keypoints: dict[int, np.ndarray]) -> FrameLabels:
        """Fill defaults (mask None without mask objects, nan rows for unplaced keypoint
        objects), drop entries of unknown objects, make arrays read-only."""
        has_mask_objects = any(o.kind == "mask" for o in self._objects.values())
        out_mask = mask if has_mask_objects else None
        kps: dict[int, np.ndarray] = {}
        for oid in self.keypoint_object_ids():
            n = len(self._objects[oid].keypoint_names)
            arr = keypoints.get(oid)
            if arr is None or arr.shape != (n, 3):
                arr = np.tile(np.array([np.nan, np.nan, 0.0], np.float32), (n, 1))
            kps[oid] = arr
        for arr in (out_mask, *kps.values()):
            if arr is not None:
                arr.flags.writeable = False
        return FrameLabels(out_mask, types.MappingProxyType(kps))

    def _remember(self, index: int, labels: FrameLabels) -> None:
        self._cache[index] = labels
        self._cache.move_to_end(index)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _write_frame(self, index: int, labels: FrameLabels, meta: StoredFrame) -> None:
        """Encode and store labels with the provenance fields of ``meta``."""
        mask = labels.mask
        mask_png = None if mask is None else encode_mask(mask)
        ids = () if mask is None else mask_ids(mask)
        kp_text = encode_keypoints(labels.keypoints)
        self.restore(
            index, dataclasses.replace(meta, mask_png=mask_png, ids=ids, keypoints_json=kp_text)
        )
        full = np.zeros((self.height, self.width), np.uint8) if mask is None else mask.copy()
        kps = {k: np.asarray(v, np.float32).copy() for k, v in labels.keypoints.items()}
        self._remember(index, self._complete(full, kps))

    def _checked(self, labels: FrameLabels) -> FrameLabels:
        """Validate labels for this project (MaskError) -> labels with a checked mask."""
        mask = labels.mask
        if mask is not None:
            mask = check_mask(mask, (self.height, self.width), self.mask_object_ids())
        check_keypoints(labels.keypoints, self._objects)
        return FrameLabels(mask, labels.keypoints)

    def _object_meta(self, object_id: int) -> _ObjectMeta:
        meta = self._meta.objects.get(object_id)
        if meta is None:
            meta = self._meta.objects[object_id] = _ObjectMeta.empty(self.num_frames)
        return meta

    def _object_rows(self, index: int) -> tuple[tuple[int, ObjectProvenance], ...]:
        """Sorted ``(object id, provenance)`` of the objects with a state on frame ``index``."""
        return tuple(
            (oid, meta.get(index))
            for oid, meta in sorted(self._meta.objects.items())
            if meta.states[index]
        )

    def _update_summaries(self, indices: Iterable[int]) -> None:
        """Recompute (RAM and db) the summary of frames whose object provenance changed; a frame
        left without any object provenance keeps its summary."""
        updates = []
        for t in indices:
            rows = self._object_rows(t)
            if not rows:
                continue
            state, conf, src = summarize(p for _, p in rows)
            self._set_meta_row(t, state, conf, src, self._meta.ids[t])
            updates.append((int(state), None if math.isnan(conf) else conf, src, t))
        self._db.executemany(
            "UPDATE frames SET state=?, confidence=?, source=? WHERE idx=?", updates
        )

    def _set_meta_row(
        self, index: int, state: FrameState, conf: float, source: int | None, ids: tuple[int, ...]
    ) -> None:
        self._meta.states[index] = int(state)
        self._meta.confidences[index] = conf
        self._meta.sources[index] = -1 if source is None else source
        self._meta.ids[index] = tuple(ids)

    def _write_meta(self, db: sqlite3.Connection, video_path: str) -> None:
        values = {
            "format": FILE_FORMAT,
            "schema_version": str(SCHEMA_VERSION),
            "video_path": video_path,
            "num_frames": str(self._info.num_frames),
            "height": str(self._info.height),
            "width": str(self._info.width),
            "objects": objects_to_json(self.objects),
        }
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))


def sweep_stale_scratch(parent: Path) -> int:
    """Delete scratch folders left in ``parent`` by Trackpaint processes that no longer exist
    (killed before their finalizer ran). Returns how many were removed. POSIX only: elsewhere
    a process cannot be probed safely, and nothing is removed."""
    if os.name != "posix" or not parent.is_dir():
        return 0
    removed = 0
    for folder in parent.glob(f"{SCRATCH_PREFIX}*-*"):
        pid_text = folder.name[len(SCRATCH_PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or process_alive(int(pid_text)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += not folder.exists()
    return removed


def _close_scratch(db: sqlite3.Connection, scratch_dir: Path) -> None:
    """Close the scratch connection and delete its directory (finalizer; idempotent)."""
    with contextlib.suppress(sqlite3.Error):
        db.close()
    shutil.rmtree(scratch_dir, ignore_errors=True)


def migrate_v1(db: sqlite3.Connection, objects: Mapping[int, ObjectSpec], path: Path) -> None:
    """IN PLACE: turn a schema-1 database into schema 2 (see the module doc for the rule).

    Adds the ``object_frames`` table, infers each object's provenance from the frame's state, its
    labels and those of the frame it was propagated from, and sets ``schema_version`` to 2. Labels
    and the frame columns are untouched. Raises ProjectError naming ``path`` for a frame whose
    keypoints JSON cannot be read.
    """
    present: dict[int, set[int]] = {}
    rows = db.execute(
        "SELECT idx, state, confidence, source, ids, keypoints FROM frames"
    ).fetchall()
    for idx, _state, _conf, _src, ids_text, kp_text in rows:
        try:
            placed = {
                k for k, v in decode_keypoints(kp_text).items() if np.isfinite(v[:, :2]).any()
            }
        except (ValueError, TypeError, KeyError) as exc:
            raise ProjectError(f"frame {idx} has malformed keypoints ({exc})", path) from exc
        present[idx] = ({int(i) for i in json.loads(ids_text)} | placed) & set(objects)
    inserts: list[tuple[int, int, int, float | None, int | None]] = []
    for idx, state, conf, src, _ids, _kps in rows:
        owners = set(present[idx])
        if state in (FrameState.PROPAGATED, FrameState.STALE) and src is not None:
            owners |= present.get(src, set())
        if state == FrameState.PAINTED:
            conf, src = None, None
        for oid in sorted(owners or objects):
            inserts.append((idx, oid, int(state), conf, src))
    db.execute(_OBJECT_FRAMES_SQL)
    db.executemany("INSERT INTO object_frames VALUES (?, ?, ?, ?, ?)", inserts)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))


def _read_meta(path: Path) -> tuple[ProjectInfo, tuple[ObjectSpec, ...]]:
    """Read and validate the ``meta`` table of a project file (read-only)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        missing = {"meta", "frames"} - tables
        if missing:
            raise ProjectError(f"not a Trackpaint project (missing tables {sorted(missing)})", path)
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    finally:
        db.close()
    return _parse_meta(meta, path)


def _parse_meta(meta: Mapping[str, str], path: Path) -> tuple[ProjectInfo, tuple[ObjectSpec, ...]]:
    """Validate meta values -> (info with absolute video path, objects)."""
    if meta.get("format") != FILE_FORMAT:
        raise ProjectError("not a Trackpaint project (no format marker)", path)
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise ProjectError(f"project metadata lacks {missing}", path)
    try:
        version = int(meta["schema_version"])
    except ValueError as exc:
        raise ProjectError(f"bad schema_version {meta['schema_version']!r}", path) from exc
    if version > SCHEMA_VERSION:
        raise ProjectError(
            f"made by a newer Trackpaint (schema {version}, this version reads up to "
            f"{SCHEMA_VERSION})",
            path,
        )
    if version < 1:
        raise ProjectError(f"bad schema_version {version}", path)
    try:
        num_frames, height, width = (int(meta[k]) for k in ("num_frames", "height", "width"))
        objects = objects_from_json(meta["objects"])
        video = Path(meta["video_path"])
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ProjectError(f"inconsistent project metadata ({exc})", path) from exc
    if not (1 <= num_frames <= MAX_FRAMES and 1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise ProjectError(f"inconsistent video size {num_frames}x{height}x{width}", path)
    video = video if video.is_absolute() else (path.parent / video)
    info = ProjectInfo(Path(os.path.normpath(video)), num_frames, height, width)
    return info, objects


# --------------------------------------------------------------------------- output stamps
# A project written by a batch tool (``trackpaint propagate --project``) is an *output* that a
# later run may replace -- but only while nobody has changed it: once a user corrects it in the
# GUI and saves, it is their work. The tool stamps the file with a fingerprint of its content;
# :func:`output_stamp` returns the stamp only while the content still matches it.


def content_fingerprint(db: sqlite3.Connection) -> str:
    """SHA-256 hex over everything a user can change in a project: the video size, the objects
    and every frame row (state, confidence, source, ids, keypoints, mask bytes)."""
    digest = hashlib.sha256()
    keys = ("num_frames", "height", "width", "objects")
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    digest.update(json.dumps([meta.get(k) for k in keys]).encode())
    rows = db.execute(
        "SELECT idx, state, confidence, source, ids, keypoints, mask FROM frames ORDER BY idx"
    )
    for idx, state, conf, src, ids, kps, mask in rows:
        digest.update(json.dumps([idx, state, conf, src, ids, kps]).encode())
        data = mask if isinstance(mask, bytes) else b""
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()


def stamp_output(path: Path, stamp: Mapping[str, str]) -> None:
    """Record in the saved project file ``path`` that Trackpaint wrote it as an output:
    ``meta.output = {**stamp, "fingerprint": content_fingerprint}``. Raises sqlite3.Error."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        record = {**stamp, "fingerprint": content_fingerprint(db)}
        db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (OUTPUT_STAMP_KEY, json.dumps(record))
        )
    finally:
        db.close()


def output_stamp(path: Path) -> dict[str, str] | None:
    """The output stamp of the project file ``path`` when its content still matches it (nothing
    changed since Trackpaint wrote it), else None (no stamp, changed, or not a project)."""
    try:
        _check_sqlite_header(path)
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except (ProjectError, sqlite3.Error, ValueError):
        return None
    try:
        row = db.execute("SELECT value FROM meta WHERE key=?", (OUTPUT_STAMP_KEY,)).fetchone()
        stamp = json.loads(row[0]) if row is not None else None
        if not isinstance(stamp, dict) or stamp.get("fingerprint") != content_fingerprint(db):
            return None
    except (sqlite3.Error, ValueError, TypeError, UnicodeDecodeError):
        return None
    finally:
        db.close()
    return stamp
