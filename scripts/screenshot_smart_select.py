"""Screenshot of the smart-selection tool in use on the bundled sample clip.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_smart_select.py \
        docs/smart_selection.png [--frame 10] [--box 98,210,428,420] [--click x,y,+|-]

Drags the box with real mouse events on the canvas, waits for the worker's result, adds the
clicks (``+`` adds, ``-`` removes) and saves the window. Run it under xvfb for real fonts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from app.__main__ import make_application
from app.main_window import MainWindow
from tracker_core.encoder import load_encoder


def wait(app, condition, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise SystemExit("screenshot: error: the selection did not finish in time")
        app.processEvents()
        time.sleep(0.01)
    for _ in range(20):
        app.processEvents()


def settle(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--frame", type=int, default=10)
    parser.add_argument("--box", default="98,210,428,420")
    parser.add_argument("--click", action="append", default=[], help="x,y,+ or x,y,-")
    args = parser.parse_args(argv)
    app = make_application([])
    window = MainWindow(load_encoder())
    window.resize(1400, 900)
    window.show()
    window.open_sample()
    doc = window.doc
    assert doc is not None
    doc.set_frame(args.frame)
    window.set_tool("smart")
    canvas = window.canvas
    viewport = canvas.viewport()
    tool = canvas.active_tool
    x0, y0, x1, y1 = (float(v) for v in args.box.split(","))
    for _ in range(10):
        app.processEvents()
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=canvas.view_pos(x0, y0).toPoint())
    QTest.mouseMove(viewport, canvas.view_pos((x0 + x1) / 2, (y0 + y1) / 2).toPoint())
    QTest.mouseMove(viewport, canvas.view_pos(x1, y1).toPoint())
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=canvas.view_pos(x1, y1).toPoint())
    wait(app, lambda: tool.runs == 1)  # type: ignore[attr-defined]
    for n, item in enumerate(args.click, start=2):
        x, y, sign = item.split(",")
        button = Qt.MouseButton.LeftButton if sign == "+" else Qt.MouseButton.RightButton
        pos = canvas.view_pos(float(x), float(y)).toPoint()
        QTest.mouseClick(viewport, button, pos=pos)
        wait(app, lambda n=n: tool.runs == n)  # type: ignore[attr-defined]
    QTest.mouseMove(viewport, canvas.view_pos(x1 - 20, y0 + 20).toPoint())
    window.status.set_hint(
        "Smart select (S): drag a box around the object, then left-click adds, right-click removes"
    )
    settle(app, 0.6)  # the timeline refreshes on a short timer
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(args.out)):
        raise SystemExit(f"screenshot: error: {args.out}: cannot write")
    print(f"saved {args.out}; undo step: {window.commands['undo'].text().replace('&', '')}")
    window.close_document(ask=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
