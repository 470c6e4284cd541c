"""The export dialog goes through the one entry point: it writes exactly what ``trackpaint export``
writes (every frame, empty ones too), says how many frames, and shows a refusal as an error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.dialogs import ExportRequest, export_work
from app.main_window import MainWindow
from tracker_core.cli import main
from tracker_core.labels import FrameLabels
from tracker_core.project import FrameState


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.png")}


def _without_info(path: Path) -> dict:
    document = json.loads(path.read_text())
    document.pop("info")
    return document


def test_dialog_and_cli_write_the_same_export(qtbot, window: MainWindow, frame_folder, tmp_path):
    folder, _frames, masks = frame_folder
    assert window.open_path(folder)
    doc = window.doc
    spec = window.objects_panel.add_mask_object("square")
    doc.session.set_mask(0, masks[0] * spec.id)
    doc.project.set_frame(
        4, FrameLabels(masks[4] * spec.id), FrameState.PROPAGATED, confidence=0.5, source=0
    )
    saved = doc.project.save(tmp_path / "p.trackpaint")

    results = export_work(doc.project, ExportRequest(tmp_path / "gui"))(
        lambda p: None, lambda: False
    )
    for fmt, out in (("davis", tmp_path / "cli"), ("coco", tmp_path / "cli" / "frames.json")):
        assert main(["-q", "export", str(saved), "--format", fmt, "--out", str(out)]) == 0

    assert [(r.format, r.frames, r.labelled) for r in results] == [
        ("davis", 12, 2),
        ("coco", 12, 2),
    ]
    gui, cli = _files(tmp_path / "gui"), _files(tmp_path / "cli")
    assert len(gui) == 12 and gui == cli  # every frame, byte for byte the same PNGs
    gui_coco = _without_info(tmp_path / "gui" / "frames.json")
    assert gui_coco == _without_info(tmp_path / "cli" / "frames.json")
    assert len(gui_coco["images"]) == 12


def test_dialog_shows_a_refused_target_and_deletes_nothing(
    qtbot, window: MainWindow, frame_folder, tmp_path, dialogs
):
    folder, _frames, masks = frame_folder
    assert window.open_path(folder)
    window.objects_panel.add_mask_object("square")
    window.doc.session.set_mask(0, masks[0])
    theirs = tmp_path / "out" / "Annotations" / "frames"
    theirs.mkdir(parents=True)
    (theirs / "README.txt").write_text("my dataset")

    dialog = window.show_export()
    dialog.folder_edit.setText(str(tmp_path / "out"))
    dialog.coco_box.setChecked(False)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=30_000)

    assert dialog.status.text() == "Export failed."
    assert len(dialogs.critical) == 1
    assert str(theirs) in dialogs.critical[0][1] and "refusing to replace" in dialogs.critical[0][1]
    assert [p.name for p in theirs.iterdir()] == ["README.txt"]
    assert np.array_equal(window.doc.project.labels(0).mask, masks[0])
    dialog.close()
