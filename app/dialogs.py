"""Dialogs: Help → Shortcuts (generated from the action table) and Export (DAVIS / COCO).

The export runs on a worker thread (:class:`~app.jobs.Job`) reading the project, which is
thread-safe; the dialog shows its progress and any error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.actions import MOUSE_HELP, shortcut_rows
from app.document import Document
from app.errors import show_error
from app.jobs import Cancelled, Job, JobRunner, Report
from tracker_core.export import FORMATS, ExportResult, describe_exports, export_project
from tracker_core.project import Project


class ShortcutsDialog(QDialog):
    """A table of every shortcut in the action table plus the mouse gestures."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = [*shortcut_rows(), *(("Mouse", what, how) for how, what in MOUSE_HELP)]
        self.table = QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Menu", "Command", "Shortcut"])
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(620, 640)


@dataclass(frozen=True)
class ExportRequest:
    """What to export where: DAVIS PNGs under ``out_dir/Annotations/<video>/`` and/or COCO
    JSON at ``out_dir/<video>.json`` (the naming of :func:`tracker_core.export.export_project`)."""

    out_dir: Path
    davis: bool = True
    coco: bool = True
    polygons: bool = False

    @property
    def formats(self) -> list[str]:
        """The chosen registry format names, in export order."""
        return [f for f, on in (("davis", self.davis), ("coco", self.coco)) if on]


@dataclass(frozen=True)
class ExportProgress:
    stage: str
    done: int
    total: int


def export_work(project: Project, request: ExportRequest):
    """A work function that runs the requested exports on the worker thread through the one
    entry point :func:`~tracker_core.export.export_project` (every frame of the video is
    exported, exactly as ``trackpaint export`` does); returns the :class:`ExportResult` list."""

    def work(report: Report, cancelled: Cancelled) -> list[ExportResult]:
        results: list[ExportResult] = []
        for fmt in request.formats:
            if cancelled():
                break
            label = FORMATS[fmt].label

            def progress(done: int, total: int, label: str = label) -> None:
                report(ExportProgress(label, done, total))

            results.append(
                export_project(
                    project, fmt, request.out_dir, polygons=request.polygons, progress=progress
                )
            )
        return results

    return work


class ExportDialog(QDialog):
    """Pick formats and a folder, export in the background with a progress bar."""

    exported = Signal(list)  # the ExportResult list of a finished export

    def __init__(
        self, doc: Document, runner: JobRunner, default_dir: Path, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export annotations")
        self._doc = doc
        self._runner = runner
        self.job: Job | None = None
        self.results: list[ExportResult] = []
        self.written: list[Path] = []
        self.davis_box = QCheckBox("DAVIS indexed PNGs (Annotations/<video>/00000.png …)")
        self.davis_box.setChecked(True)
        self.coco_box = QCheckBox("COCO JSON (<video>.json: masks as RLE, keypoints)")
        self.coco_box.setChecked(True)
        self.polygons_box = QCheckBox("COCO masks as polygons instead of RLE")
        self.folder_edit = QLineEdit(str(default_dir))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        self.progress = QProgressBar()
        self.progress.setRange(0, max(1, doc.num_frames))
        self.progress.setValue(0)
        self.status = QLabel("")
        form = QFormLayout()
        form.addRow("Output folder:", folder_row)
        self.buttons = QDialogButtonBox()
        self.export_button = self.buttons.addButton(
            "Export", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.close_button = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.export_button.clicked.connect(self.start)
        self.close_button.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.davis_box)
        layout.addWidget(self.coco_box)
        layout.addWidget(self.polygons_box)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.resize(560, 230)

    def request(self) -> ExportRequest:
        return ExportRequest(
            Path(self.folder_edit.text()).expanduser(),
            davis=self.davis_box.isChecked(),
            coco=self.coco_box.isChecked(),
            polygons=self.polygons_box.isChecked(),
        )

    def start(self) -> None:
        """Start exporting (no-op while an export runs)."""
        if self.job is not None:
            return
        request = self.request()
        if not (request.davis or request.coco):
            self.status.setText("Choose at least one format.")
            return
        if not self.folder_edit.text().strip():
            self.status.setText("Choose an output folder.")
            return
        job = Job("Export", export_work(self._doc.project, request))
        job.progressed.connect(self._on_progress)
        job.succeeded.connect(self._on_done)
        job.failed.connect(self._on_failed)
        job.finished.connect(self._on_finished)
        self.job = job
        self.export_button.setEnabled(False)
        self.status.setText("Exporting…")
        self._runner.start(job, exclusive=False)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export to folder", self.folder_edit.text())
        if folder:
            self.folder_edit.setText(folder)

    def _on_progress(self, progress: ExportProgress) -> None:
        self.progress.setRange(0, max(1, progress.total))
        self.progress.setValue(progress.done)
        self.status.setText(f"{progress.stage}: {progress.done} / {progress.total}")

    def _on_done(self, results: list[ExportResult]) -> None:
        self.results = list(results)
        self.written = [r.path for r in results]
        self.status.setText(describe_exports(self.results))
        self.exported.emit(self.results)

    def _on_failed(self, message: str, _details: str) -> None:
        self.status.setText("Export failed.")
        show_error(self, message, "Export failed")

    def _on_finished(self) -> None:
        self.job = None
        self.export_button.setEnabled(True)

    def reject(self) -> None:
        if self.job is not None:  # let it finish; the runner joins it at shutdown
            self.job.cancel()
        super().reject()
