"""Durable file-system steps shared by every atomic save (temp file + fsync + rename)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries so a rename inside it survives a power loss.

    Best effort: a no-op where folders cannot be opened or synced (Windows, some filesystems).
    """
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (POSIX; a reused id counts as alive: keep data)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
