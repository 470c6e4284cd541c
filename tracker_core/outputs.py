"""Output safety: Trackpaint deletes or replaces only outputs it wrote itself and can prove it.

Every output Trackpaint writes (DAVIS exports, COCO files, the mask folder and the project of
``trackpaint propagate``) goes through :class:`StagedFolder` or :class:`StagedFile`, which enforce
one rule in four steps:

1. **Never inside an input** (:func:`check_not_input`). A target may not be, lie inside, or
   contain an input (the video file or frame folder, the initial mask, the project file). Paths
   are compared resolved (``os.path.realpath``) and by device and inode of every existing
   ancestor, so symbolic links, ``..``, bind mounts and case-insensitive file systems do not
   slip through.
2. **Replace only what is provably ours.** A folder output carries a manifest
   ``.trackpaint-output.json``::

       {"trackpaint_output": 1, "kind": "davis", "version": "0.1.0",
        "created": "2026-12-02T10:00:00+00:00",
        "files": {"00000.png": {"size": 1234, "sha256": "..."}, ...}}

   written last into the staging folder, so a folder holding a valid manifest is complete. An
   existing folder is replaced only when it is empty, or when its manifest is valid and every
   entry in it is a listed file with the listed size and SHA-256 (:func:`folder_problem`):
   a file the user added or edited makes the folder theirs. Operating-system clutter
   (:data:`OS_CLUTTER`) is ignored. A single-file output carries its own proof, checked by the
   ``proof`` function its writer passes (COCO: a ``"trackpaint"`` block first in ``info`` holding
   the SHA-256 of the rest of the file; a project: an output stamp whose content fingerprint still
   matches). Anything else at a target -- a foreign or edited folder or file, a symbolic link, a
   file where a folder is wanted -- raises :class:`~tracker_core.errors.ExportError` naming the
   path; nothing is deleted.
3. **Atomic.** Everything is written into a hidden sibling of the target
   (``.<name>.<pid>-<random>.partial`` for a folder, ``.<name>.<pid>-<random>.tmp`` for a file),
   fsync'ed, and swapped in: a folder with Linux ``renameat2(RENAME_EXCHANGE)`` (the target never
   disappears) or, elsewhere, two renames keeping the old folder as ``.<name>.<pid>-<random>.old``
   until the new one is in place (put back by :func:`recover_interrupted_swap` when a kill lands
   between them); a file with ``os.replace``. Just before the swap the target is checked again
   when it changed meanwhile. A failure removes the staging copy and the parent folders the write
   created, and leaves a previous output untouched.
4. **Clean up after dead runs** (:func:`clean_stale`). When a target is written, its siblings
   named like Trackpaint's staging, backup and temp files are removed if the process id in the
   name no longer exists (POSIX); those of running processes are left alone. Names without a
   process id (written before this rule, by Trackpaint 0.1.0) are removed once untouched for
   :data:`LEGACY_IDLE_SECONDS`.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from tracker_core import __version__
from tracker_core.durable import fsync_dir, process_alive
from tracker_core.errors import ExportError, TrackpaintError

MANIFEST_NAME = ".trackpaint-output.json"
MANIFEST_VERSION = 1
MAX_MANIFEST_BYTES = 64 << 20
OS_CLUTTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".directory"})
LEGACY_IDLE_SECONDS = 600.0
REFUSAL_HINT = "move it away or choose another output"

Inputs = Iterable[tuple[str, "str | os.PathLike[str] | None"]]
"""``(label, path)`` pairs naming what an output must stay clear of, e.g. ``("input video", p)``;
None paths are skipped."""
Proof = Callable[[Path], "str | None"]
"""Checks an existing single-file target: None when Trackpaint wrote it, else why it is not."""

_LEFTOVER = re.compile(  # after ".<name>." (or "..<name>." for a temp of a temp)
    r"(?:(?P<pid>\d+)-[0-9a-f]{12}|(?P<legacy>[0-9a-f]{32}))\.(?P<kind>partial|old|tmp)"
    r"(?P<inner>\.(?:\d+-[0-9a-f]{12}|[0-9a-f]{32})\.tmp)?(?:-journal)?"
)
_PROBE = re.compile(r"\.trackpaint-probe-\d+-[0-9a-f]{12}")


def unique_suffix() -> str:
    """``<pid>-<12 hex>``: the part of a staging/temp name that tells which process made it."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def reason(exc: BaseException) -> str:
    """Why a write failed, without the (staging) path: the OS's description of an OSError
    (e.g. 'No space left on device') or the message of a TrackpaintError minus its path."""
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    text = str(exc)
    path = getattr(exc, "path", None)
    prefix = f"{path}: "
    return text[len(prefix) :] if path is not None and text.startswith(prefix) else text


# --------------------------------------------------------------------------- 1. inputs


def check_not_input(target: Path, inputs: Inputs) -> None:
    """Raise ExportError when ``target`` is, lies inside, or contains one of ``inputs``."""
    for label, source in inputs:
        if source is None:
            continue
        relation = _relation(Path(target), Path(source))
        if relation == "same":
            raise ExportError(f"output is the {label} itself; choose another output", target)
        if relation == "inside":
            raise ExportError(
                f"output lies inside the {label} {source}; choose another output", target
            )
        if relation == "contains":
            raise ExportError(
                f"output would contain the {label} {source}; choose another output", target
            )


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def _relation(target: Path, source: Path) -> str | None:
    """``"same"``, ``"inside"`` (target inside source), ``"contains"`` or None."""
    t, s = Path(os.path.realpath(target)), Path(os.path.realpath(source))
    if t == s:
        return "same"
    if s in t.parents:
        return "inside"
    if t in s.parents:
        return "contains"
    s_id = _identity(s)
    if s_id is not None:
        for i, ancestor in enumerate((t, *t.parents)):
            if _identity(ancestor) == s_id:
                return "same" if i == 0 else "inside"
    t_id = _identity(t)
    if t_id is not None and any(_identity(a) == t_id for a in s.parents):
        return "contains"
    return None


def check_target_shape(target: Path, folder: bool) -> None:
    """Raise ExportError unless ``target`` is absent or of the wanted kind (a folder when
    ``folder``, else a regular file), is no symbolic link, and its nearest existing ancestor is
    a folder."""
    if target.is_symlink():
        raise ExportError(f"is a symbolic link; refusing to replace it: {REFUSAL_HINT}", target)
    if target.exists():
        if folder and not target.is_dir():
            raise ExportError("is a file, not a folder; this output needs a folder", target)
        if not folder and not target.is_file():
            kind = "a folder" if target.is_dir() else "not a regular file"
            raise ExportError(f"is {kind}; this output is a file: {REFUSAL_HINT}", target)
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ExportError("is a file, not a folder", parent)
            return


# --------------------------------------------------------------------------- 2. ownership


def file_digest(path: Path) -> tuple[int, str]:
    """``(size in bytes, SHA-256 hex)`` of a file; raises OSError."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a Trackpaint output folder, or None when it is missing or malformed."""
    path = folder / MANIFEST_NAME
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("trackpaint_output"), int):
        return None
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("kind"), str):
        return None
    for name, entry in files.items():
        if (
            not _plain_name(name)
            or not isinstance(entry, dict)
            or not isinstance(entry.get("size"), int)
            or not isinstance(entry.get("sha256"), str)
        ):
            return None
    return manifest


def _plain_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and name not in ("", ".", "..", MANIFEST_NAME)
        and not any(c in name for c in "/\\\0")
    )


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` may not be replaced, or None when it may: it is absent, empty (OS clutter
    aside), or an unmodified Trackpaint output (see the module docstring)."""
    try:
        entries = {e.name: e for e in os.scandir(folder)}
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be read ({reason(exc)})"
    names = {n for n in entries if n not in OS_CLUTTER and not _PROBE.fullmatch(n)}
    if not names:
        return None
    manifest = read_manifest(folder)
    if manifest is None:
        return f"is not a Trackpaint output (no valid {MANIFEST_NAME} in it)"
    files: dict[str, dict[str, Any]] = manifest["files"]
    foreign = sorted(names - set(files) - {MANIFEST_NAME})
    if foreign:
        shown = ", ".join(foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        return f"holds {shown}, which Trackpaint did not write"
    for name in sorted(names - {MANIFEST_NAME}):
        if not entries[name].is_file(follow_symlinks=False):
            return f"holds {name}, which Trackpaint did not write"
        try:
            size, digest = file_digest(folder / name)
        except OSError as exc:
            return f"{name} cannot be read ({reason(exc)})"
        if size != files[name]["size"] or digest != files[name]["sha256"]:
            return f"{name} was changed after Trackpaint wrote it"
    return None


def write_manifest(folder: Path, kind: str) -> dict[str, Any]:
    """List every file of a finished staging folder in its manifest (written and fsync'ed last).

    Raises:
        OSError: a file cannot be read or the manifest cannot be written.
        ExportError: the folder holds something other than regular files.
    """
    files: dict[str, dict[str, Any]] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name == MANIFEST_NAME:
            continue
        if not entry.is_file(follow_symlinks=False):
            raise ExportError(f"staging folder holds a non-file {entry.name}", folder)
        size, digest = file_digest(Path(entry.path))
        files[entry.name] = {"size": size, "sha256": digest}
    manifest = {
        "trackpaint_output": MANIFEST_VERSION,
        "kind": kind,
        "version": __version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "files": files,
    }
    fd = os.open(folder / MANIFEST_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(folder)
    return manifest


def _listing(path: Path) -> object:
    """A cheap fingerprint of what is at ``path`` now (names, sizes, mtimes), to notice change."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not os.path.isdir(path):
        return ("file", st.st_ino, st.st_size, st.st_mtime_ns)
    with contextlib.suppress(OSError):
        return (
            "dir",
            st.st_ino,
            sorted(
                (e.name, e.stat(follow_symlinks=False).st_size, e.stat().st_mtime_ns)
                for e in os.scandir(path)
            ),
        )
    return ("dir", st.st_ino)


# --------------------------------------------------------------------------- 4. leftovers


def _is_dead_leftover(entry: os.DirEntry[str], suffix: str, now: float) -> bool:
    match = _LEFTOVER.fullmatch(suffix)
    if match is None or (match["inner"] is None and entry.name.startswith("..")):
        return False
    if match["pid"] is not None:
        pid = int(match["pid"])
        return os.name == "posix" and pid != os.getpid() and not process_alive(pid)
    try:
        return now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_IDLE_SECONDS
    except OSError:
        return False


def clean_stale(target: Path) -> int:
    """Remove the staging folders, backups and temp files that dead Trackpaint runs left beside
    ``target`` (see the module docstring). A backup (``.old``) is only removed while ``target``
    exists. Returns how many were removed."""
    parent = target.parent
    prefixes = (f".{target.name}.", f"..{target.name}.")
    removed = 0
    try:
        entries = [e for e in os.scandir(parent) if e.name.startswith(prefixes)]
    except OSError:
        return 0
    now = dt.datetime.now().timestamp()
    target_exists = os.path.lexists(target)
    for entry in entries:
        outer = entry.name.startswith(prefixes[0])
        suffix = entry.name[len(prefixes[0] if outer else prefixes[1]) :]
        if not _is_dead_leftover(entry, suffix, now):
            continue
        if suffix.endswith(".old") and not target_exists:
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_symlink():
                continue
            if entry.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed += 1
    return removed


# --------------------------------------------------------------------------- 3. the swap


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the call is unavailable (other systems, old kernels, some filesystems).
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def recover_interrupted_swap(target: Path) -> bool:
    """Put back a previous output left aside by a two-rename swap that was killed midway
    (systems without an atomic exchange). Returns True if one was restored."""
    if os.path.lexists(target) or not target.parent.is_dir():
        return False
    prefix = f".{target.name}."
    backups = []
    for path in target.parent.glob(f".{glob_escape(target.name)}.*.old"):
        match = _LEFTOVER.fullmatch(path.name[len(prefix) :])
        if match is not None and path.is_dir() and not path.is_symlink():
            backups.append(path)
    backups.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for backup in backups:
        with contextlib.suppress(OSError):
            os.rename(backup, target)
            fsync_dir(target.parent)
            return True
    return False


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def swap_into_place(staging: Path, target: Path) -> None:
    """Rename the complete ``staging`` folder to ``target``, replacing a previous output.

    Where the system can swap two folders atomically, ``target`` never disappears, even if the
    process is killed mid-swap; elsewhere the previous output is renamed aside first.
    """
    backup = None
    try:
        if os.path.lexists(target) and _exchange(staging, target):
            shutil.rmtree(staging, ignore_errors=True)
            fsync_dir(target.parent)
            return
        if os.path.lexists(target):
            backup = target.with_name(f".{target.name}.{unique_suffix()}.old")
            os.rename(target, backup)
        os.rename(staging, target)
    except OSError as exc:
        if backup is not None and not os.path.lexists(target):
            with contextlib.suppress(OSError):
                os.rename(backup, target)
        raise ExportError(
            f"cannot move the finished output into place ({reason(exc)})", target
        ) from exc
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)
    fsync_dir(target.parent)


def make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return those created, outermost first."""
    missing = []
    for path in (folder, *folder.parents):
        if os.path.lexists(path):
            break
        missing.append(path)
    created: list[Path] = []
    try:
        for path in reversed(missing):
            os.mkdir(path)
            created.append(path)
    except OSError as exc:
        remove_created(created)
        raise ExportError(f"cannot create output folder ({reason(exc)})", folder) from exc
    return created


def remove_created(created: list[Path]) -> None:
    """Remove the folders :func:`make_parents` created, innermost first, if still empty."""
    for path in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _probe_writable(folder: Path) -> None:
    """Raise ExportError unless a file can be created in ``folder``. Where the system has
    ``O_TMPFILE`` (Linux) the probe is an unnamed file, so a kill leaves nothing behind;
    elsewhere a named probe is created and removed at once."""
    try:
        unnamed = getattr(os, "O_TMPFILE", 0)
        if unnamed:
            try:
                os.close(os.open(folder, unnamed | os.O_WRONLY, 0o600))
                return
            except OSError as exc:  # file system or kernel without O_TMPFILE
                if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                    raise
        probe = folder / f".trackpaint-probe-{unique_suffix()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise ExportError(f"output folder is not writable ({reason(exc)})", folder) from exc


def _refuse(problem: str, target: Path) -> ExportError:
    return ExportError(f"{problem}; refusing to replace it: {REFUSAL_HINT}", target)


# --------------------------------------------------------------------------- the writers


class _Staged:
    """Context-manager protocol shared by the staged outputs: entering prepares the staging
    copy, a normal exit commits it, an exception aborts it."""

    def prepare(self) -> Path:
        raise NotImplementedError

    def commit(self) -> Path:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Path:
        return self.prepare()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


class StagedFolder(_Staged):
    """Write a folder output under the rule of this module.

    Use as a context manager; the value is the staging folder to fill with regular files::

        with StagedFolder(out / "Annotations" / "bear", "davis", inputs) as staging:
            ...write files into staging...

    A normal exit writes the manifest and swaps the staging folder into place; an exception
    removes it (and the parent folders this write created) and leaves ``target`` untouched.
    :meth:`prepare` / :meth:`commit` / :meth:`abort` do the same steps for callers that cannot
    use a ``with`` block. Every check happens in :meth:`prepare`, before anything is written.
    """

    def __init__(self, target: Path, kind: str, inputs: Inputs = ()) -> None:
        self.target = Path(target)
        self.kind = kind
        self._inputs = tuple(inputs)
        self._staging: Path | None = None
        self._created: list[Path] = []
        self._before: object = None

    @property
    def path(self) -> Path:
        """The staging folder (only between :meth:`prepare` and :meth:`commit`)."""
        if self._staging is None:
            raise RuntimeError("StagedFolder is not prepared")
        return self._staging

    def prepare(self) -> Path:
        """Check the target (raises ExportError), clean dead runs' leftovers, create staging."""
        target = self.target
        check_not_input(target, self._inputs)
        check_target_shape(target, folder=True)
        recover_interrupted_swap(target)
        problem = folder_problem(target)
        if problem is not None:
            raise _refuse(problem, target)
        if target.exists():
            _probe_writable(target)
        self._before = _listing(target)
        clean_stale(target)
        self._created = make_parents(target.parent)
        staging = target.with_name(f".{target.name}.{unique_suffix()}.partial")
        try:
            os.mkdir(staging)
        except OSError as exc:
            remove_created(self._created)
            raise ExportError(
                f"cannot create output folder ({reason(exc)})", target.parent
            ) from exc
        self._staging = staging
        return staging

    def commit(self) -> Path:
        """Write the manifest and swap the staging folder into place; return the target.
        On failure everything is rolled back (see :meth:`abort`) and ExportError raised."""
        staging = self.path
        try:
            try:
                write_manifest(staging, self.kind)
            except OSError as exc:
                raise ExportError(
                    f"cannot write {MANIFEST_NAME} ({reason(exc)})", self.target
                ) from exc
            if _listing(self.target) != self._before:  # changed while we wrote: check again
                problem = folder_problem(self.target)
                if problem is not None:
                    raise _refuse(problem, self.target)
            swap_into_place(staging, self.target)
        except BaseException:
            self.abort()
            raise
        self._staging = None
        return self.target

    def abort(self) -> None:
        """Remove the staging folder and the parent folders this write created."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
        remove_created(self._created)
        self._created = []


class StagedFile(_Staged):
    """Write a single-file output under the rule of this module.

    Use as a context manager; the value is the temporary path (beside the target, not yet
    existing) where the caller writes the complete file::

        with StagedFile(out / "bear.json", coco_problem, inputs) as tmp:
            tmp.write_bytes(...)

    ``proof(target)`` decides whether an existing target is Trackpaint's (None) or not (the
    reason, which becomes the refusal). A normal exit fsyncs the file and renames it over the
    target; an exception removes it and the parent folders this write created.
    """

    def __init__(self, target: Path, proof: Proof, inputs: Inputs = ()) -> None:
        self.target = Path(target)
        self._proof = proof
        self._inputs = tuple(inputs)
        self._tmp: Path | None = None
        self._created: list[Path] = []
        self._before: object = None

    @property
    def path(self) -> Path:
        """The temporary file (only between :meth:`prepare` and :meth:`commit`)."""
        if self._tmp is None:
            raise RuntimeError("StagedFile is not prepared")
        return self._tmp

    def _check_owner(self) -> None:
        if os.path.lexists(self.target):
            problem = self._proof(self.target)
            if problem is not None:
                raise _refuse(problem, self.target)

    def prepare(self) -> Path:
        """Check the target (raises ExportError), clean dead runs' leftovers, pick the temp."""
        target = self.target
        check_not_input(target, self._inputs)
        check_target_shape(target, folder=False)
        self._check_owner()
        self._before = _listing(target)
        clean_stale(target)
        self._created = make_parents(target.parent)
        self._tmp = target.with_name(f".{target.name}.{unique_suffix()}.tmp")
        return self._tmp

    def commit(self) -> Path:
        """fsync the written file and rename it over the target; return the target. On failure
        the temp file is removed and ExportError raised; the previous target is untouched."""
        tmp = self.path
        try:
            try:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            except OSError as exc:
                raise ExportError(f"cannot write ({reason(exc)})", self.target) from exc
            if _listing(self.target) != self._before:
                check_target_shape(self.target, folder=False)
                self._check_owner()
            try:
                os.replace(tmp, self.target)
            except OSError as exc:
                raise ExportError(f"cannot write ({reason(exc)})", self.target) from exc
        except BaseException:
            self.abort()
            raise
        self._tmp = None
        fsync_dir(self.target.parent)
        return self.target

    def abort(self) -> None:
        """Remove the temp file (and a SQLite journal beside it) and created parent folders."""
        if self._tmp is not None:
            for path in (self._tmp, self._tmp.with_name(self._tmp.name + "-journal")):
                with contextlib.suppress(OSError):
                    path.unlink()
            self._tmp = None
        remove_created(self._created)
        self._created = []


def write_error(exc: OSError | TrackpaintError, target: Path, name: str) -> ExportError:
    """The ExportError for a failed write of ``name`` into the output ``target``, naming the
    file as it will appear (not by its staging path)."""
    if isinstance(exc, OSError):
        return ExportError(f"cannot write ({reason(exc)})", target / name)
    return ExportError(reason(exc), target / name)
