"""Crash recovery: where autosaves live, whom each belongs to, and which one to offer on open.

Autosaves live in one per-user folder, never beside the project or the video (so never inside
the install, and read-only media work): ``$TRACKPAINT_RECOVERY_DIR`` when set, else
``platformdirs.user_data_dir("Trackpaint") / "recovery"`` — ``~/.local/share/Trackpaint/recovery``
on Linux (``$XDG_DATA_HOME`` honoured), ``~/Library/Application Support/Trackpaint/recovery`` on
macOS, ``%LOCALAPPDATA%\\Trackpaint\\recovery`` on Windows. :class:`RecoveryStore` takes the folder
as a constructor argument too (tests isolate it that way or with the variable).

Each autosave belongs to an :class:`Owner`, whose :attr:`Owner.key` (a hash) is in the file name:

* a saved project: its resolved path (``project_owner``);
* a never-saved project: its video's identity (``video_owner``): the resolved path plus, for a
  video file, its size and modification time; for a frame folder, the number of frames and the
  name, size and modification time of the first and last frame. A video rewritten in place is a
  different video, so older unsaved work on it is not offered for it (dimension checks would
  often not notice); the file is left in the folder.

File names are ``<name>-<key>.<pid>[-<start>].autosave`` (``<start>``: the process start time
where the OS tells it, so a reused process id is not mistaken for the writer). Every file is a
complete project database (written with temp file + fsync + replace by
:meth:`tracker_core.project.Project.autosave`) whose ``meta`` table holds one more row,
``autosave``: JSON with the owner, the time it was written, the writer (pid, host, start) and what
it contains (frame count, painted / propagated / stale frames, object names). That row proves the
file is a Trackpaint autosave before anything is deleted.

What is offered (:meth:`RecoveryStore.offer`): the newest autosave of exactly the owner being
opened whose writer is not another running Trackpaint (an autosave written by a live process on
this host is left alone, not offered and not deleted; one from another host is left alone too,
as its writer cannot be probed), plus, when opening a project, an old-style ``<project>.autosave``
beside it written by an earlier version (read only, offered when newer than the project file).
The user's decision settles the offer: discarding deletes the offered file and older leftovers of
the same owner; recovering makes the state this process's own autosave first.

Nothing here imports Qt; the GUI asks the question with the text :meth:`RecoveryStore.question`
writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import socket
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from tracker_core.errors import ProjectError, TrackpaintError
from tracker_core.video import list_frame_files

APP_NAME = "Trackpaint"
RECOVERY_ENV = "TRACKPAINT_RECOVERY_DIR"
AUTOSAVE_META_KEY = "autosave"  # the extra ``meta`` row of an autosave file
AUTOSAVE_EXT = ".autosave"
AUTOSAVE_VERSION = 1
PROJECT_FORMAT = "trackpaint-project"  # == tracker_core.project.FILE_FORMAT (it imports us)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_KEY_CHARS = 16


def default_recovery_dir() -> Path:
    """``$TRACKPAINT_RECOVERY_DIR``, else the platform's per-user data folder + ``recovery``."""
    override = os.environ.get(RECOVERY_ENV)
    if override:
        return Path(override).expanduser().absolute()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "recovery"


# --------------------------------------------------------------------------- owners


@dataclass(frozen=True)
class Owner:
    """What an autosave belongs to: a saved project (``kind="project"``) or the video of a
    never-saved one (``kind="video"``); ``path`` is resolved, ``identity`` the video facts."""

    kind: str
    path: Path
    identity: str = ""

    @property
    def key(self) -> str:
        """A short stable hash of kind, path and identity (part of the file name)."""
        text = f"{self.kind}\n{self.path.as_posix()}\n{self.identity}"
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:_KEY_CHARS]

    @property
    def name(self) -> str:
        return self.path.name

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "path": self.path.as_posix(), "identity": self.identity}

    @classmethod
    def from_json(cls, raw: object) -> Owner:
        """Inverse of :meth:`to_json`; raises ValueError/TypeError/KeyError when malformed."""
        if not isinstance(raw, dict) or raw.get("kind") not in ("project", "video"):
            raise ValueError(f"bad autosave owner {raw!r}")
        return cls(str(raw["kind"]), Path(str(raw["path"])), str(raw.get("identity", "")))


def project_owner(path: str | Path) -> Owner:
    """The owner of a saved project's autosaves: the project file's resolved path."""
    return Owner("project", Path(path).resolve())


def video_owner(path: str | Path) -> Owner:
    """The owner of a never-saved project's autosaves: the video's resolved path and identity
    (file: size + mtime; frame folder: frame count + first/last frame's name, size, mtime)."""
    resolved = Path(path).resolve()
    return Owner("video", resolved, _video_identity(resolved))


def _video_identity(path: Path) -> str:
    try:
        if path.is_dir():
            frames = list_frame_files(path)
            if not frames:
                return "frames=0"
            ends = [
                f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                for p in (frames[0], frames[-1])
            ]
            return f"frames={len(frames)};first={ends[0]};last={ends[1]}"
        st = path.stat()
        return f"size={st.st_size};mtime_ns={st.st_mtime_ns}"
    except (OSError, TrackpaintError):
        return "unreadable"


# --------------------------------------------------------------------------- writers


@dataclass(frozen=True)
class Writer:
    """The process that wrote an autosave. ``started`` is its start time as the OS reports it
    (Linux ``/proc``; None elsewhere); ``pid`` 0 means unknown (an old-style autosave)."""

    pid: int
    host: str
    started: str | None = None

    @property
    def tag(self) -> str:
        """The file-name part that tells this process's files from every other's."""
        return f"{self.pid}-{self.started}" if self.started else str(self.pid)


def _process_stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of a process from ``/proc/<pid>/stat``, or None when unknown."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def current_writer() -> Writer:
    """This process as an autosave writer."""
    pid = os.getpid()
    stat = _process_stat(pid)
    return Writer(pid, socket.gethostname(), stat[1] if stat else None)


def is_other_live_instance(writer: Writer, me: Writer) -> bool:
    """Whether ``writer`` is another Trackpaint process that may still be running (so its
    autosave is not a crash leftover). Own files count as leftovers of this process. Another
    host's writer cannot be probed: it counts as live. Where processes cannot be probed
    (not POSIX) the writer counts as gone, so the user is still offered the work."""
    if writer.pid <= 0:
        return False
    if writer.host != me.host:
        return True
    if writer.pid == me.pid:
        return False  # this process (or an earlier one with the same id): never "another"
    if os.name != "posix":
        return False
    try:
        os.kill(writer.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # another user's process took the id: our writer (same user) is gone
    except OverflowError:
        return False
    stat = _process_stat(writer.pid)
    if stat is None:
        return True  # no /proc (macOS): the id is in use, assume it is still the writer
    state, started = stat
    if state in ("Z", "X"):
        return False  # killed, not yet reaped
    return writer.started is None or started == writer.started


# --------------------------------------------------------------------------- autosaves


@dataclass(frozen=True)
class Contents:
    """What an autosave holds: frame count, frames per provenance, object names."""

    num_frames: int
    painted: int
    propagated: int
    stale: int
    objects: tuple[str, ...]

    def describe(self) -> str:
        """E.g. ``"12 painted frames, 30 propagated frames, 2 objects (bear, dog)"``."""
        parts = [_count(self.painted, "painted frame")]
        if self.propagated:
            parts.append(_count(self.propagated, "propagated frame"))
        if self.stale:
            parts.append(_count(self.stale, "stale frame"))
        names = ", ".join(self.objects[:4]) + (", …" if len(self.objects) > 4 else "")
        objects = _count(len(self.objects), "object")
        parts.append(f"{objects} ({names})" if self.objects else objects)
        return ", ".join(parts)


@dataclass(frozen=True)
class Autosave:
    """One autosave file found for an owner. ``written`` is a Unix time; ``legacy`` marks an
    old-style ``<project>.autosave`` beside the project (written by an earlier version)."""

    path: Path
    owner: Owner
    written: float
    writer: Writer
    contents: Contents
    legacy: bool = False


@dataclass(frozen=True)
class Offer:
    """What opening ``owner`` finds: the autosave to offer (None: nothing), older leftovers of
    the same owner (settled with it), and autosaves of other running instances (left alone)."""

    owner: Owner
    autosave: Autosave | None = None
    older: tuple[Autosave, ...] = ()
    busy: tuple[Autosave, ...] = ()


class RecoveryStore:
    """The per-user recovery folder. ``folder`` defaults to :func:`default_recovery_dir`;
    ``clock`` (Unix seconds) stamps autosaves and measures their age."""

    def __init__(
        self, folder: str | Path | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._folder = Path(folder).absolute() if folder is not None else default_recovery_dir()
        self._clock = clock
        self._me = current_writer()

    @property
    def folder(self) -> Path:
        return self._folder

    def now(self) -> float:
        return self._clock()

    # ---- writing (used by Project.autosave) --------------------------------------------------

    def path_for(self, owner: Owner) -> Path:
        """This process's autosave file for ``owner``."""
        slug = _SLUG_UNSAFE.sub("_", owner.name)[:40] or "untitled"
        return self._folder / f"{slug}-{owner.key}.{self._me.tag}{AUTOSAVE_EXT}"

    def prepare(self) -> None:
        """Create the folder (private to the user); raises ProjectError naming it."""
        try:
            self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(
                f"cannot create the recovery folder ({exc.strerror or exc})", self._folder
            ) from exc

    def stamp(self, owner: Owner, contents: Contents) -> str:
        """The ``autosave`` meta row (JSON) for a file written now by this process."""
        written = self.now()
        row = {
            "version": AUTOSAVE_VERSION,
            "owner": owner.to_json(),
            "key": owner.key,
            "written": written,
            "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(written)),
            "writer": dataclasses.asdict(self._me),
            "contents": {**dataclasses.asdict(contents), "objects": list(contents.objects)},
        }
        return json.dumps(row, separators=(",", ":"))

    def remove_own(self, owner: Owner) -> None:
        """Delete this process's autosave of ``owner`` (after a save, or discarded changes)."""
        with contextlib.suppress(OSError):
            self.path_for(owner).unlink(missing_ok=True)

    # ---- finding and settling ----------------------------------------------------------------

    def autosaves(self, owner: Owner) -> list[Autosave]:
        """Every readable autosave of exactly ``owner`` in the folder, newest first."""
        if not self._folder.is_dir():
            return []
        found = []
        for path in self._folder.glob(f"*-{owner.key}.*{AUTOSAVE_EXT}"):
            autosave = read_autosave(path)
            if autosave is not None and autosave.owner == owner:
                found.append(autosave)
        return sorted(found, key=lambda a: a.written, reverse=True)

    def offer(self, owner: Owner, *, project_file: Path | None = None) -> Offer:
        """What to offer when opening ``owner`` (``project_file``: the project being opened,
        whose old-style ``<name>.autosave`` counts when newer than the project)."""
        free: list[Autosave] = []
        busy: list[Autosave] = []
        for autosave in self.autosaves(owner):
            (busy if is_other_live_instance(autosave.writer, self._me) else free).append(autosave)
        if project_file is not None and owner.kind == "project":
            legacy = read_legacy_autosave(project_file)
            if legacy is not None:
                free.append(legacy)
        free.sort(key=lambda a: a.written, reverse=True)
        return Offer(owner, free[0] if free else None, tuple(free[1:]), tuple(busy))

    def discard(self, offer: Offer, *, keep: Path | None = None) -> None:
        """Delete the offered autosave and the older leftovers of the same owner (each proven a
        Trackpaint autosave when found); never a live instance's file, never ``keep``."""
        for autosave in (offer.autosave, *offer.older):
            if autosave is None or autosave.path == keep:
                continue
            ours = autosave.legacy or autosave.path.parent == self._folder
            if ours and autosave.owner == offer.owner:
                with contextlib.suppress(OSError):
                    autosave.path.unlink(missing_ok=True)

    # ---- wording ---------------------------------------------------------------------------

    def question(self, autosave: Autosave) -> str:
        """The recovery question's text: whose work, how old, what it holds."""
        now = self.now()
        age, at = describe_age(now - autosave.written), _clock_time(autosave.written)
        what = autosave.contents.describe()
        if autosave.owner.kind == "video":
            return (
                f"Unsaved work on {autosave.owner.name} from {at} ({age}) was recovered: "
                f"{what}. It was never saved as a project."
            )
        lines = [f"Unsaved changes to {autosave.owner.name} were autosaved {age} ({at}): {what}."]
        try:
            saved = autosave.owner.path.stat().st_mtime
        except OSError:
            saved = None
        if saved is not None and saved > autosave.written + 1:
            lines.append(
                f"The project file was saved after that ({describe_age(now - saved)}): "
                "the autosave may hold older work."
            )
        elif saved is not None:
            lines.append(f"The project file was last saved {describe_age(now - saved)}.")
        if autosave.legacy:
            lines.append(f"(Autosave of an earlier Trackpaint version: {autosave.path})")
        return "\n".join(lines)


def busy_note(autosave: Autosave) -> str:
    """A status line for an autosave that belongs to another running instance."""
    where = "" if autosave.writer.host == socket.gethostname() else f" on {autosave.writer.host}"
    return (
        f"{autosave.owner.name} has unsaved work in another running Trackpaint{where} "
        f"(process {autosave.writer.pid}); its autosave is left alone"
    )


# --------------------------------------------------------------------------- reading files


def read_autosave(path: Path) -> Autosave | None:
    """An autosave file's facts, or None when it is not a readable Trackpaint autosave."""
    meta = _read_meta_rows(path, ("format", AUTOSAVE_META_KEY))
    if meta is None or meta.get("format") != PROJECT_FORMAT or AUTOSAVE_META_KEY not in meta:
        return None
    try:
        raw = json.loads(meta[AUTOSAVE_META_KEY])
        writer = raw["writer"]
        contents = raw["contents"]
        written = float(raw["written"])
        if not math.isfinite(written):
            return None
        return Autosave(
            path=path,
            owner=Owner.from_json(raw["owner"]),
            written=written,
            writer=Writer(int(writer["pid"]), str(writer["host"]), writer.get("started")),
            contents=Contents(
                int(contents["num_frames"]),
                int(contents["painted"]),
                int(contents["propagated"]),
                int(contents["stale"]),
                tuple(str(n) for n in contents["objects"]),
            ),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def legacy_autosave_path(project_file: Path) -> Path:
    """Where earlier versions autosaved a project: ``<name>.autosave`` beside it (read only)."""
    return project_file.with_name(project_file.name + AUTOSAVE_EXT)


def read_legacy_autosave(project_file: Path) -> Autosave | None:
    """The old-style autosave beside ``project_file`` when it is a Trackpaint project database
    newer than the project file, else None."""
    path = legacy_autosave_path(project_file)
    try:
        written = path.stat().st_mtime
        if written <= project_file.stat().st_mtime:
            return None
    except OSError:
        return None
    meta = _read_meta_rows(path, ("format", "num_frames", "objects"))
    if meta is None or meta.get("format") != PROJECT_FORMAT:
        return None
    try:
        names = tuple(str(o["name"]) for o in json.loads(meta["objects"]))
        counts = _state_counts(path)
        contents = Contents(int(meta["num_frames"]), counts[1], counts[2], counts[3], names)
    except (ValueError, TypeError, KeyError, sqlite3.Error):
        return None
    owner = project_owner(project_file)
    return Autosave(path, owner, written, Writer(0, ""), contents, legacy=True)


def _read_meta_rows(path: Path, keys: Sequence[str]) -> dict[str, str] | None:
    """The given ``meta`` rows of a project database (read-only), or None when unreadable."""
    try:
        with open(path, "rb") as f:
            if f.read(16) != _SQLITE_MAGIC:
                return None
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except (OSError, sqlite3.Error):
        return None
    try:
        marks = ",".join("?" * len(keys))
        rows = db.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", tuple(keys))
        return {str(k): str(v) for k, v in rows.fetchall()}
    except (sqlite3.Error, UnicodeDecodeError):
        return None
    finally:
        db.close()


def _state_counts(path: Path) -> dict[int, int]:
    """Frames per stored state (1 painted, 2 propagated, 3 stale) of a project database."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT state, COUNT(*) FROM frames GROUP BY state").fetchall()
    finally:
        db.close()
    counts = {1: 0, 2: 0, 3: 0}
    counts.update({int(s): int(n) for s, n in rows})
    return counts


# --------------------------------------------------------------------------- wording helpers


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def describe_age(seconds: float) -> str:
    """``"just now"``, ``"40 seconds ago"``, ``"3 minutes ago"``, ``"2 hours 5 minutes ago"``,
    ``"4 days ago"`` (a negative age from a clock change reads as ``"just now"``)."""
    s = int(max(0.0, seconds))
    if s < 10:
        return "just now"
    if s < 60:
        return f"{s} seconds ago"
    if s < 3600:
        return f"{_count(s // 60, 'minute')} ago"
    if s < 86400:
        hours, minutes = divmod(s // 60, 60)
        tail = f" {_count(minutes, 'minute')}" if minutes else ""
        return f"{_count(hours, 'hour')}{tail} ago"
    return f"{_count(s // 86400, 'day')} ago"


def _clock_time(unix: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(unix))
