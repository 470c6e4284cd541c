"""The ``trackpaint-gui`` command (and ``python -m app.launch``): prepare the process before
torch and Qt load (:func:`tracker_core.launch.prepare_process`), then open the window."""

from __future__ import annotations

import sys

from tracker_core.launch import prepare_process


def main() -> int:
    prepare_process()
    from app.__main__ import main as gui_main

    return gui_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
