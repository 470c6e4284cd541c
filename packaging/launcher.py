"""Entry point of the packaged app: one program, two names.

Run as ``trackpaint`` (the command line, ``tracker_core.cli``) or as ``trackpaint-gui`` (the
window, ``app.__main__``); the bundle holds one executable of each name built from this file.
Any other name starts the window.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    """Dispatch on the executable's name; returns the exit status."""
    name = Path(sys.executable if getattr(sys, "frozen", False) else sys.argv[0]).stem
    if name == "trackpaint":
        from tracker_core.cli import main as cli_main

        return cli_main(sys.argv[1:])
    from app.__main__ import main as gui_main

    return gui_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
