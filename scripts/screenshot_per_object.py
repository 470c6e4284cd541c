"""Screenshot of the timeline with per-object states (issue 9): a keypoint object runs on past a
mask object's keyframe.

On the bundled bear sample: propagate the bear, make frame 20 a bear keyframe with a correction
(the bear's later frames go stale), place three keypoints on frame 0 and propagate from frame 0:
the bear stops at its keyframe 20, the keypoints run to the end. Saves the whole window and the
timeline alone as 256-colour PNGs.

    xvfb-run -a .venv/bin/python scripts/screenshot_per_object.py docs/per_object_window.png \\
        docs/per_object_timeline.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("window_png", type=Path)
    parser.add_argument("timeline_png", type=Path)
    parser.add_argument("--model", default=None, help="checkpoint or 'lab' (default: bundled)")
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QMessageBox

    from app.__main__ import make_application
    from app.document import SAMPLE_CLIP
    from app.main_window import MainWindow
    from benchmarks.gui_responsiveness import save_png
    from tracker_core.encoder import load_encoder
    from tracker_core.recovery import RecoveryStore

    app = make_application([])
    QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.No)
    scratch = Path(tempfile.mkdtemp(prefix="trackpaint-shot-"))
    settings = QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(
        load_encoder(args.model),
        scratch_dir=scratch,
        autosave_ms=3_600_000,
        settings=settings,
        recovery=RecoveryStore(scratch / "recovery"),
    )
    window.resize(1400, 900)
    window.show()
    if not window.open_sample(SAMPLE_CLIP):
        return 1
    doc = window.doc
    assert doc is not None
    session, project = doc.session, doc.project
    bear = project.objects[0]

    def wait(ms: int = 0) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def propagate_from(frame: int) -> None:
        doc.set_frame(frame)
        assert window.propagate("forward") is not None
        while window.runner.busy:
            wait(50)
        wait(100)

    propagate_from(0)  # the bear alone, 1..24
    session.make_keyframe(20, bear.id)  # accept frame 20 for the bear, then correct it
    ys, xs = np.nonzero(project.labels(20).mask == bear.id)
    edge = (float(xs.max()) + 4.0, float(ys.mean()))  # grow the bear a little at its right
    assert session.paint_stroke(20, bear.id, [edge, (edge[0], edge[1] + 30)], 8)
    ys, xs = np.nonzero(project.labels(0).mask == bear.id)
    animal = window.objects_panel.add_keypoint_object("bear joints", ("head", "back", "rump"))
    assert animal is not None
    inside = project.labels(0).mask == bear.id
    for i, fx in enumerate((0.1, 0.5, 0.85)):  # on the bear: 25 px below its top edge there
        x = int(xs.min() + fx * (xs.max() - xs.min()))
        y = int(np.flatnonzero(inside[:, x]).min()) + 25
        session.set_keypoint(0, animal.id, i, float(x), float(y))
    propagate_from(0)  # bear stops at its keyframe 20; the keypoints run on to 24
    doc.set_active_object(animal.id)
    doc.set_frame(22)
    window.timeline.refresh()
    window.statusBar().clearMessage()
    wait(300)
    for path in (args.window_png, args.timeline_png):
        path.parent.mkdir(parents=True, exist_ok=True)
    save_png(window.grab().toImage(), args.window_png)
    save_png(window.timeline.grab().toImage(), args.timeline_png)
    print(window.timeline.summary.text(), "|", window.timeline.all_summary.text())
    print("bear", project.object_states(bear.id).tolist())
    print("joints", project.object_states(animal.id).tolist())
    window.close_document(ask=False)
    window.close()
    app.quit()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
