"""``python -m app [VIDEO_OR_PROJECT]`` / ``trackpaint-gui``: start the Trackpaint window.

Without an argument the bundled sample clip opens with its first-frame mask as a keyframe.
Before Qt starts, the X11 platform plugin's system libraries are checked
(:mod:`app.platform_check`): a missing one is named with its package and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QApplication

from app.errors import install_excepthook, show_error
from app.main_window import APP_NAME, ICON_PATH, MainWindow
from app.platform_check import check_platform_libraries
from tracker_core.encoder import Encoder, LabEncoder, load_encoder
from tracker_core.errors import TrackpaintError
from tracker_core.native_log import quiet_native_logging


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="trackpaint-gui", description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", help="video file, frame folder or .trackpaint project")
    parser.add_argument("--model", help="model checkpoint (.pt) or 'lab' (default: bundled)")
    return parser.parse_args(list(argv))


def make_application(argv: Sequence[str]) -> QApplication:
    """The QApplication with the names QSettings uses (created once per process)."""
    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    if ICON_PATH.exists():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(ICON_PATH)))
    return app  # type: ignore[return-value]


def choose_encoder(model: str | None) -> tuple[Encoder, str | None]:
    """The encoder to start with and, when the requested one failed to load, why."""
    try:
        return load_encoder(model), None
    except TrackpaintError as exc:
        return LabEncoder(), f"{exc}\nUsing the colour (Lab) encoder instead."


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    problem = check_platform_libraries()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    quiet_native_logging()
    app = make_application([])
    encoder, model_problem = choose_encoder(args.model)
    window = MainWindow(encoder)
    install_excepthook(lambda: window)
    window.show()
    if model_problem:
        show_error(window, model_problem, "Cannot load model")
    if args.path:
        window.open_path(Path(args.path))
    else:
        window.open_sample()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
