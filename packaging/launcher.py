"""Entry point of the packaged app: one program, two names.

Run as ``trackpaint`` (the command line, ``tracker_core.cli``) or as ``trackpaint-gui`` (the
window, ``app.__main__``); the bundle holds one executable of each name built from this file.
Any other name starts the window. With ``TRACKPAINT_STARTUP_PROBE=1`` the window quits as soon
as its event loop runs and prints how long the cold start took (for packaging checks).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

STARTUP_PROBE = "TRACKPAINT_STARTUP_PROBE"  # set to 1: quit as soon as the window is up
_IMPORTED_AT = time.time()


def main() -> int:
    """Dispatch on the executable's name; returns the exit status."""
    name = Path(sys.executable if getattr(sys, "frozen", False) else sys.argv[0]).stem
    if name == "trackpaint":
        from tracker_core.cli import main as cli_main

        return cli_main(sys.argv[1:])
    from app.__main__ import main as gui_main

    if os.environ.get(STARTUP_PROBE):
        _quit_when_started()
    return gui_main(sys.argv[1:])


def _quit_when_started() -> None:
    """Startup probe for packaging checks: once the event loop runs (the window is shown and the
    sample or the given file is open), print the seconds since the process started and quit."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    original_exec = QApplication.exec

    def exec_and_quit(app: QApplication) -> int:
        def report() -> None:
            seconds = time.time() - _process_start_time()
            print(f"trackpaint-gui: event loop running {seconds:.2f} s after start", flush=True)
            QApplication.exit(0)  # quit() would ask to save the modified sample first

        QTimer.singleShot(0, report)
        return original_exec()  # static in Qt: QApplication.exec() runs the one application

    QApplication.exec = exec_and_quit  # type: ignore[method-assign]


def _process_start_time() -> float:
    """Wall-clock time the process started (Linux ``/proc``; else the launcher's import)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return _IMPORTED_AT


if __name__ == "__main__":
    sys.exit(main())
