"""The main window: canvas in the middle, objects dock, timeline dock, toolbar, menus from the
action table, status bar; opening/saving files, propagation jobs, autosave and recovery.

Labelling logic lives in :mod:`tracker_core.session`; this module only wires widgets to it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, QSize, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSlider,
    QSpinBox,
    QToolBar,
)

from app.actions import ACTIONS, MENUS, build_actions, shortcut_text
from app.canvas import Canvas
from app.dialogs import ExportDialog, ShortcutsDialog
from app.document import SAMPLE_CLIP, Document, OpenCancelledError, Recovery, open_document
from app.errors import guarded, show_error
from app.icons import icon
from app.jobs import AdaptProgress, Job, JobRunner, adapt_work, propagation_work
from app.navigation import Navigator
from app.objects_panel import ObjectsPanel
from app.recent import RecentFiles
from app.status import StatusPanel
from app.timeline import Timeline
from tracker_core.confidence import DEFAULT_UNCERTAIN_THRESHOLD
from tracker_core.encoder import Encoder, LabEncoder, LearnedEncoder, load_encoder
from tracker_core.errors import TrackpaintError
from tracker_core.export import describe_exports
from tracker_core.project import PROJECT_SUFFIX, FrameState
from tracker_core.propagate import WarmupProgress
from tracker_core.propagator import DEFAULT_PRESET, PRESETS
from tracker_core.recovery import Autosave, RecoveryStore
from tracker_core.session import ChangeEvent, Direction, PropagationProgress
from tracker_core.tools import TOOLS, tool_spec
from tracker_core.train.adapt import AdaptConfig
from tracker_core.video import IMAGE_EXTENSIONS

APP_NAME = "Trackpaint"
ICON_PATH = Path(__file__).resolve().parent.parent / "resources" / "icons" / "trackpaint.png"
MAX_RECENT = 10
PRESET_KEY = "propagation/preset"
# During propagation the view jumps to the newest frame, and the status bar shows the progress,
# at most this often (the first frame at once, the last when the run ends): each jump repaints
# the canvas and the timeline on the GUI thread, CPU taken from the run itself (issue 12).
FOLLOW_MS = 250
THRESHOLD_KEY = "confidence/uncertain_threshold"  # QSettings key of the user's threshold
VIDEO_FILTER = (
    "Videos, frame folders and projects (*.mp4 *.avi *.mkv *.mov *.webm *.m4v "
    f"*{PROJECT_SUFFIX} *.jpg *.jpeg *.png *.bmp);;"
    f"Trackpaint projects (*{PROJECT_SUFFIX});;"
    "Frame folder — pick any frame (*.jpg *.jpeg *.png *.bmp);;All files (*)"
)
SAMPLE_HINT = (
    "The bear is painted on frame 0: press F to propagate. Then scrub (←/→, N = next uncertain "
    "frame), paint over mistakes (the frame becomes a keyframe) and press F again."
)
WORKFLOW_HINT = "Paint a keyframe (B brush, P polygon, K keypoints), then F to propagate forward."
REVIEW_HINT = "Check frames (N = next uncertain); paint a correction and press F to resume."


def stored_preset(settings: QSettings) -> str:
    """The propagation preset remembered in the settings (the default when unset or unknown)."""
    value = settings.value(PRESET_KEY, DEFAULT_PRESET)
    return value if isinstance(value, str) and value in PRESETS else DEFAULT_PRESET


def default_scratch_dir() -> Path:
    """A disk-backed folder for project scratch databases (the user's cache folder)."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
    folder = Path(location or Path.home() / ".cache" / "trackpaint") / "scratch"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def media_path(path: Path) -> Path:
    """A picked image file stands for its frame folder."""
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        return path.parent
    return path


class MainWindow(QMainWindow):
    """The Trackpaint window. ``encoder`` is used for propagation (None: ``load_encoder()``);
    ``recovery`` is where autosaves go (None: the per-user recovery folder)."""

    def __init__(
        self,
        encoder: Encoder | None = None,
        *,
        scratch_dir: Path | None = None,
        autosave_ms: int = 60_000,
        settings: QSettings | None = None,
        recovery: RecoveryStore | None = None,
    ) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        if ICON_PATH.exists():
            self.setWindowIcon(QIcon(str(ICON_PATH)))
        self.setAcceptDrops(True)
        self.resize(1400, 900)
        self.encoder: Encoder = encoder if encoder is not None else load_encoder()
        self._scratch_dir = scratch_dir
        self.settings = settings if settings is not None else QSettings()
        self.recovery = recovery if recovery is not None else RecoveryStore()
        self.doc: Document | None = None
        self.runner = JobRunner(self)
        self._edits = 0  # change counter, for autosave
        self._autosaved_at = 0
        self._pending: PropagationProgress | None = None  # newest progress not shown yet
        self._progress_timer = QTimer(self)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.setInterval(FOLLOW_MS)
        self._progress_timer.timeout.connect(self._on_progress_timer)
        self._follow_paused = False  # the user looked around during this run
        self._latest_frame: int | None = None  # newest frame of the running propagation
        self.adapt_config = AdaptConfig()
        self.adapt_steps = 200

        self.recent = RecentFiles(self.settings, self, MAX_RECENT)
        self.recent.chosen.connect(self._guard(self.open_path))
        self.navigator = Navigator(
            lambda: self.doc, self._stop_following, self, threshold=lambda: self.uncertain_threshold
        )
        self.canvas = Canvas(runner=self.runner)
        self.setCentralWidget(self.canvas)
        self.objects_panel = ObjectsPanel()
        self.timeline = Timeline()
        self._add_docks()
        self.preset = stored_preset(self.settings)
        self.status = StatusPanel(self.statusBar())
        self.status.set_model(self.encoder.name, self.preset)
        self.commands = build_actions(self, self._handlers(), wrap=self._guard, icons=icon)
        self.commands[f"preset_{self.preset}"].setChecked(True)
        self._build_menus()
        self._build_toolbar()
        self.commands[f"tool_{self.canvas.tool}"].setChecked(True)
        self.commands["follow"].setChecked(True)
        self.timeline.set_threshold(self.uncertain_threshold)

        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(autosave_ms)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()

        self.timeline.frame_requested.connect(self._guard(self.navigator.go_to))
        self.navigator.message.connect(self._show_message)
        self.navigator.playing_changed.connect(self.commands["play"].setChecked)
        self.canvas.message.connect(self._show_message)
        self.objects_panel.message.connect(self._show_message)
        self.canvas.brush_changed.connect(self._on_brush_changed)
        self.runner.busy_changed.connect(self._on_busy_changed)
        self.status.cancel.clicked.connect(self.runner.cancel)
        self.status.resume_follow.clicked.connect(self.resume_following)
        self._update_enabled()

    # ---- layout ------------------------------------------------------------------------------

    def _add_docks(self) -> None:
        objects = QDockWidget("Objects", self)
        objects.setObjectName("dock_objects")
        objects.setWidget(self.objects_panel)
        objects.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, objects)
        timeline = QDockWidget("Timeline", self)
        timeline.setObjectName("dock_timeline")
        timeline.setWidget(self.timeline)
        timeline.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, timeline)
        self.resizeDocks([objects], [260], Qt.Orientation.Horizontal)

    def _build_menus(self) -> None:
        menus: dict[str, QMenu] = {name: self.menuBar().addMenu(f"&{name}") for name in MENUS}
        for spec in ACTIONS:
            menu = menus[spec.menu]
            if spec.separator_before:
                menu.addSeparator()
            menu.addAction(self.commands[spec.key])
            if spec.key == "open_sample":
                menu.addMenu(self.recent.menu)

    def _build_toolbar(self) -> None:
        """Icon-only buttons with fixed-size widgets, so nothing moves when labels change (the
        Undo/Redo step names show in their tooltips)."""
        bar = QToolBar("Tools", self)
        bar.setObjectName("toolbar_tools")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        bar.setIconSize(QSize(22, 22))
        self.addToolBar(bar)
        for spec in TOOLS:
            bar.addAction(self.commands[f"tool_{spec.name}"])
        self.brush_spin = QSpinBox()
        self.brush_spin.setRange(1, 200)
        self.brush_spin.setValue(round(self.canvas.brush_radius))
        self.brush_spin.setPrefix("radius ")
        self.brush_spin.setToolTip("Brush radius in pixels ([ and ])")
        self.brush_spin.setFixedWidth(self.brush_spin.sizeHint().width())
        self.brush_spin.valueChanged.connect(lambda v: self.canvas.set_brush_radius(float(v)))
        bar.addWidget(self.brush_spin)
        bar.addAction(self.commands["fill_holes"])
        bar.addSeparator()
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(self.canvas.opacity * 100))
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setToolTip("Overlay opacity (Ctrl+[ and Ctrl+])")
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.set_opacity(v / 100))
        bar.addWidget(self.opacity_slider)
        bar.addAction(self.commands["outline"])
        bar.addSeparator()
        for key in ("propagate_backward", "propagate_forward", "propagate_both", "cancel_job"):
            bar.addAction(self.commands[key])
        bar.addSeparator()
        bar.addAction(self.commands["next_uncertain"])
        bar.addAction(self.commands["undo"])
        bar.addAction(self.commands["redo"])
        self.toolbar = bar

    # ---- action handlers ---------------------------------------------------------------------

    def _guard(self, fn: Callable) -> Callable:
        return guarded(lambda: self, fn)

    def _handlers(self) -> dict[str, Callable[[], None]]:
        canvas, nav = self.canvas, self.navigator
        handlers: dict[str, Callable[[], None]] = {
            "open": self.ask_open,
            "open_folder": self.ask_open_folder,
            "open_sample": self.open_sample,
            "save": self.save,
            "save_as": self.save_as,
            "export": self.show_export,
            "quit": self.close,
            "undo": self.undo,
            "redo": self.redo,
            "fill_holes": self.fill_holes,
            "make_keyframe": lambda: self._frame_call(lambda s, f: s.make_keyframe(f)),
            "clear_frame": lambda: self._frame_call(lambda s, f: s.clear_frame(f)),
            "add_object": self.objects_panel.ask_add_mask,
            "add_keypoint_object": self.objects_panel.ask_add_keypoints,
            "brush_smaller": lambda: canvas.grow_brush(1 / 1.25),
            "brush_larger": lambda: canvas.grow_brush(1.25),
            "prev_frame": lambda: nav.step(-1),
            "next_frame": lambda: nav.step(1),
            "back_10": lambda: nav.step(-10),
            "forward_10": lambda: nav.step(10),
            "first_frame": lambda: nav.go_to(0),
            "last_frame": nav.last,
            "play": lambda: nav.set_playing(self.commands["play"].isChecked()),
            "next_uncertain": nav.next_uncertain,
            "next_keyframe": lambda: nav.keyframe(1),
            "prev_keyframe": lambda: nav.keyframe(-1),
            "propagate_forward": lambda: self.propagate("forward"),
            "propagate_backward": lambda: self.propagate("backward"),
            "propagate_both": lambda: self.propagate("both"),
            "cancel_job": self.cancel,
            "follow": self._on_follow_toggled,
            "uncertain_threshold": self.ask_uncertain_threshold,
            "zoom_in": lambda: canvas.zoom(1.25),
            "zoom_out": lambda: canvas.zoom(0.8),
            "zoom_fit": canvas.fit_to_window,
            "outline": lambda: canvas.set_outline(self.commands["outline"].isChecked()),
            "opacity_up": lambda: self.opacity_slider.setValue(self.opacity_slider.value() + 10),
            "opacity_down": lambda: self.opacity_slider.setValue(self.opacity_slider.value() - 10),
            "load_model": self.ask_load_model,
            "use_lab": lambda: self.set_encoder(LabEncoder()),
            "preset_fast": lambda: self.set_preset("fast"),
            "preset_accurate": lambda: self.set_preset("accurate"),
            "adapt": self.ask_adapt,
            "shortcuts": lambda: ShortcutsDialog(self).exec(),
            "about": self.about,
        }
        for i in range(1, 10):
            handlers[f"object_{i}"] = self._object_selector(i)
        for spec in TOOLS:
            handlers[f"tool_{spec.name}"] = self._tool_selector(spec.name)
        return handlers

    def _tool_selector(self, name: str) -> Callable[[], None]:
        return lambda: self.set_tool(name)

    def _object_selector(self, position: int) -> Callable[[], None]:
        def select() -> None:
            if self.doc is not None:
                self.doc.select_object_by_position(position)

        return select

    def _frame_call(self, fn: Callable) -> None:
        if self.doc is not None:
            fn(self.doc.session, self.doc.frame)

    def undo(self) -> None:
        doc = self.doc
        if doc is not None and not doc.session.undo():
            busy = " while a propagation runs" if self.runner.busy else ""
            self._show_message(f"Nothing to undo{busy}")

    def redo(self) -> None:
        doc = self.doc
        if doc is not None and not doc.session.redo():
            self._show_message("Nothing to redo")

    def set_tool(self, name: str) -> None:
        """Make the registered tool ``name`` active (canvas, menu and toolbar agree)."""
        self._show_message(tool_spec(name).hint)  # a refusal from the canvas replaces it
        self.canvas.set_tool(name)
        self.commands[f"tool_{name}"].setChecked(True)

    def fill_holes(self) -> None:
        doc = self.doc
        spec = doc.active_object if doc is not None else None
        if doc is None or spec is None or spec.kind != "mask":
            self._show_message("Select a mask object to fill its holes")
            return
        if not doc.session.fill_holes(doc.frame, spec.id):
            self._show_message(f"{spec.name} has no holes on this frame")

    # ---- navigation --------------------------------------------------------------------------

    def _stop_following(self) -> None:
        """The user navigates during a propagation: pause following for the rest of this run
        (the next run follows again) and say so where it stays visible."""
        if self.runner.busy and self.commands["follow"].isChecked() and not self._follow_paused:
            self._set_follow_paused(True)
            self._show_message(
                "Following paused while you look around; the run goes on "
                "(Resume following in the status bar)"
            )

    def _set_follow_paused(self, paused: bool) -> None:
        self._follow_paused = paused
        self.status.set_follow_paused(paused and self.runner.busy)

    @property
    def following(self) -> bool:
        """Whether propagated frames are shown as they arrive (Follow on, not paused)."""
        return self.commands["follow"].isChecked() and not self._follow_paused

    def resume_following(self) -> None:
        """Follow the running propagation again, from its newest frame."""
        self.commands["follow"].setChecked(True)
        self._set_follow_paused(False)
        if self.doc is not None and self.runner.busy and self._latest_frame is not None:
            self.doc.set_frame(self._latest_frame)

    def _on_follow_toggled(self) -> None:
        if self.commands["follow"].isChecked():
            self.resume_following()
        else:
            self._set_follow_paused(False)

    # ---- uncertainty threshold ---------------------------------------------------------------

    @property
    def uncertain_threshold(self) -> float:
        """The user's threshold below which a propagated frame is uncertain (QSettings)."""
        try:
            value = float(self.settings.value(THRESHOLD_KEY, DEFAULT_UNCERTAIN_THRESHOLD))
        except (TypeError, ValueError):
            return DEFAULT_UNCERTAIN_THRESHOLD
        return value if 0.0 <= value <= 1.0 else DEFAULT_UNCERTAIN_THRESHOLD

    def set_uncertain_threshold(self, value: float) -> None:
        """Persist a new threshold; the timeline marks and N follow it at once."""
        value = min(1.0, max(0.0, float(value)))
        self.settings.setValue(THRESHOLD_KEY, value)
        self.timeline.set_threshold(value)
        self._show_message(f"Frames with confidence below {value:.2f} are now uncertain")

    def ask_uncertain_threshold(self) -> None:
        value, ok = QInputDialog.getDouble(
            self,
            "Uncertainty threshold",
            "A propagated frame whose confidence is below this is uncertain: a dot on the "
            "timeline, and N stops there.\n"
            f"Default {DEFAULT_UNCERTAIN_THRESHOLD:.2f}: finds 82 % of the frames with J < 0.85 "
            "on the dev videos (lower = fewer stops, more misses).",
            self.uncertain_threshold,
            0.0,
            1.0,
            2,
        )
        if ok:
            self.set_uncertain_threshold(value)

    # ---- propagation -------------------------------------------------------------------------

    def propagate(self, direction: Direction) -> Job | None:
        """Start a propagation job from the current frame on a worker thread."""
        doc = self.doc
        if doc is None:
            return None
        if self.runner.busy:
            self._show_message("A job is running: wait for it or cancel it (Esc)")
            return None
        if doc.frame_state() == FrameState.EMPTY:
            self._show_message("Nothing to propagate: paint this frame first")
            return None
        job = doc.session.propagation_job(doc.frame, direction)
        if job.total == 0:
            job.close()
            self._show_message(
                "Nothing to propagate: every object here stops at its next keyframe or the end"
            )
            return None
        worker = Job(f"Propagate {direction}", propagation_work(job), on_cancel=job.cancel)
        worker.progressed.connect(self._on_propagation_progress)
        ranges = job.ranges
        worker.succeeded.connect(lambda done: self._on_propagation_done(worker, done, ranges))
        worker.failed.connect(self._on_job_failed)
        self.status.set_busy(True, job.total)
        self._latest_frame = None
        self.runner.start(worker)
        self._set_follow_paused(False)
        self._show_message(f"Propagating {direction} from frame {doc.frame}…")
        return worker

    def cancel(self) -> None:
        """Esc: the canvas tool drops what it is doing first (polygon, selection, stroke),
        else the running job is cancelled."""
        if self.canvas.escape():
            return
        if self.runner.busy:
            self.runner.cancel()
            self._show_message("Cancelling… frames done so far are kept")

    def _on_propagation_progress(self, progress: PropagationProgress | WarmupProgress) -> None:
        if isinstance(progress, WarmupProgress):
            self.status.set_warmup(progress.message)
            return
        self._latest_frame = progress.frame
        self._pending = progress
        if not self._progress_timer.isActive():  # nothing shown in the last FOLLOW_MS: now
            self._show_progress()
            self._progress_timer.start()

    def _on_progress_timer(self) -> None:
        if self._show_progress():  # progress came meanwhile: keep to one update per FOLLOW_MS
            self._progress_timer.start()

    def _show_progress(self) -> bool:
        """Show the newest propagation progress (status bar, and the frame when following);
        False when there was none to show."""
        progress, self._pending = self._pending, None
        if progress is None:
            return False
        self.status.set_progress(progress.done, progress.total)
        self.status.set_speed(progress.ms_per_frame)
        if self.doc is not None and self.following and not self.canvas.interacting:
            self.doc.set_frame(progress.frame)
        return True

    def _on_propagation_done(
        self, worker: Job, done: int, ranges: list[tuple[int, int]] | None = None
    ) -> None:
        self._show_progress()  # the last frames of the run
        doc = self.doc
        if doc is None:
            return
        self.status.set_speed(doc.session.last_ms_per_frame)
        verb = "Cancelled after" if worker.cancelled else "Propagated"
        skipped = [t for t in doc.damaged() for a, b in ranges or () if min(a, b) < t < max(a, b)]
        note = f"; skipped {len(skipped)} damaged (see the timeline)" if skipped else ""
        self._show_message(f"{verb} {done} frames{note} (kept; Ctrl+Z undoes the whole run)")
        self.status.set_hint(REVIEW_HINT)

    def _on_job_failed(self, message: str, details: str) -> None:
        if details:
            print(details)
        show_error(self, message, "Propagation failed")

    def _on_busy_changed(self, busy: bool) -> None:
        if not busy:
            self._show_progress()  # a run that failed or was cut short
            self.status.set_busy(False)
            self._set_follow_paused(False)
        self._update_enabled()

    # ---- model -------------------------------------------------------------------------------

    def set_preset(self, preset: str) -> None:
        """Propagate with this preset from now on (remembered in the settings)."""
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}")
        self.preset = preset
        self.settings.setValue(PRESET_KEY, preset)
        self.commands[f"preset_{preset}"].setChecked(True)
        if self.doc is not None:
            self.doc.session.preset = preset
        self.status.set_model(self.encoder.name, preset)
        self._show_message(f"Propagation now uses the {preset} preset")

    def set_encoder(self, encoder: Encoder) -> None:
        self.encoder = encoder
        if self.doc is not None:
            self.doc.session.encoder = encoder
        self.status.set_model(encoder.name, self.preset)
        self._update_enabled()
        self._show_message(f"Propagation now uses the model {encoder.name}")

    def ask_load_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load model checkpoint", "", "PyTorch checkpoints (*.pt *.pth);;All files (*)"
        )
        if path:
            self.set_encoder(load_encoder(path))

    def ask_adapt(self) -> None:
        if not isinstance(self.encoder, LearnedEncoder):
            self._show_message("Adaptation needs a learned model: Model → Load model checkpoint")
            return
        steps, ok = QInputDialog.getInt(
            self,
            "Adapt model to this video",
            "Self-supervised fine-tuning steps (more = slower, usually better):",
            self.adapt_steps,
            1,
            10_000,
        )
        if ok:
            self.adapt_steps = steps
            self.start_adaptation(steps)

    def start_adaptation(self, steps: int) -> Job | None:
        """Fine-tune the learned encoder on the open video in the background; when done,
        propagation uses the adapted copy (Cancel keeps the current model)."""
        doc, encoder = self.doc, self.encoder
        if doc is None or not isinstance(encoder, LearnedEncoder):
            return None
        if self.runner.busy:
            self._show_message("A job is running: wait for it or cancel it (Esc)")
            return None
        work = adapt_work(encoder, doc.project.video_path, steps, self.adapt_config)
        worker = Job("Adapt model", work)
        worker.progressed.connect(self._on_adapt_progress)
        worker.succeeded.connect(self._on_adapt_done)
        worker.failed.connect(lambda message, _d: show_error(self, message, "Adaptation failed"))
        self.status.set_busy(True, steps)
        self.runner.start(worker)
        self._show_message(f"Adapting {encoder.name} to this video ({steps} steps)…")
        return worker

    def _on_adapt_progress(self, progress: AdaptProgress) -> None:
        self.status.set_progress(progress.step, progress.steps)
        self._show_message(
            f"Adapting: step {progress.step} / {progress.steps}, loss {progress.loss:.3f}"
        )

    def _on_adapt_done(self, encoder: LearnedEncoder | None) -> None:
        if encoder is None:
            self._show_message("Adaptation cancelled; the model is unchanged")
            return
        self.set_encoder(encoder)

    # ---- files -------------------------------------------------------------------------------

    def ask_open(self) -> None:
        start = str(self.recent.paths()[0].parent) if self.recent.paths() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open", start, VIDEO_FILTER)
        if path:
            self.open_path(Path(path))

    def ask_open_folder(self) -> None:
        start = str(self.recent.paths()[0].parent) if self.recent.paths() else ""
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of frames", start)
        if folder:
            self.open_path(Path(folder))

    def open_sample(self, clip: Path = SAMPLE_CLIP) -> bool:
        """Open the bundled sample clip with its frame-0 mask as a keyframe of "bear"."""
        if not self.open_path(clip, remember=False):
            return False
        doc = self.doc
        if doc is not None and not doc.project.objects:
            doc.load_sample_keyframe()  # part of the sample: the document opens unmodified
            doc.set_frame(0)
            self._autosaved_at = self._edits  # the bundled keyframe is not work to recover
            self._update_title()
        self.status.set_hint(SAMPLE_HINT)
        return True

    def open_path(self, path: Path, remember: bool = True) -> bool:
        """Open a video, frame folder or project; errors become a dialog. False when not
        opened (error, or the user kept the current document)."""
        path = media_path(Path(path))
        if not self.close_document():
            return False
        try:
            scratch = self._scratch_dir or default_scratch_dir()
            opened = open_document(path, scratch, self._ask_recover, self.recovery)
        except OpenCancelledError:
            self._show_message(f"Not opened; the autosave of {path.name} is kept")
            return False
        except TrackpaintError as exc:
            show_error(self, str(exc), "Cannot open")
            return False
        doc = Document(opened, self.encoder, self, preset=self.preset)
        self._set_document(doc)
        if remember:
            self.recent.add(path)
        for note in opened.notes:
            self._show_message(note)
        return True

    def _ask_recover(self, autosave: Autosave, text: str) -> Recovery:
        """Ask whether to recover ``autosave`` (Yes), delete it (No) or open nothing (Cancel)."""
        if autosave.owner.kind == "video":
            no = f"No deletes it and opens {autosave.owner.name} with nothing painted"
        else:
            no = "No deletes the autosave and opens the saved project"
        answer = QMessageBox.question(
            self,
            "Recover unsaved work?",
            f"{text}\n\nOpen the autosaved work? {no}; Cancel opens nothing now and keeps "
            "the autosave.",
            QMessageBox.StandardButton.Yes
            | QMessageBox.StandardButton.No
            | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Yes,
        )
        if answer == QMessageBox.StandardButton.Yes:
            return Recovery.RECOVER
        if answer == QMessageBox.StandardButton.No:
            return Recovery.DISCARD
        return Recovery.CANCEL

    def _set_document(self, doc: Document | None) -> None:
        self.doc = doc
        self.canvas.set_document(doc)
        self.timeline.set_document(doc)
        self.objects_panel.set_document(doc)
        self._edits = self._autosaved_at = 0
        if doc is not None:
            doc.changed.connect(self._on_changed)
            doc.frame_changed.connect(lambda _f: self._update_frame_status())
            doc.active_object_changed.connect(lambda _id: self._update_frame_status())
            self.status.set_hint(WORKFLOW_HINT)
            self._update_frame_status()
        self._update_title()
        self._update_enabled()

    def close_document(self, ask: bool = True) -> bool:
        """Ask to save a modified document, stop its jobs and close it; False = user cancelled.
        With ``ask=False`` unsaved changes are discarded without a question."""
        doc = self.doc
        if doc is None:
            return True
        if doc.project.modified and not ask:
            doc.remove_autosave()
        elif doc.project.modified:
            answer = QMessageBox.question(
                self,
                "Save changes?",
                f"{doc.title.rstrip(' *')} has unsaved changes. Save them?",
                QMessageBox.StandardButton.Save
                | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Save,
            )
            if answer == QMessageBox.StandardButton.Cancel:
                return False
            if answer == QMessageBox.StandardButton.Save:
                if not self.save():
                    return False
            else:
                doc.remove_autosave()
        self.navigator.stop()
        self.runner.shutdown()
        self._set_document(None)
        doc.close()
        doc.deleteLater()
        return True

    def save(self) -> bool:
        doc = self.doc
        if doc is None:
            return False
        if doc.project.path is None:
            return self.save_as()
        try:
            doc.session.save()
        except TrackpaintError as exc:
            show_error(self, str(exc), "Cannot save")
            return False
        self._after_save()
        return True

    def save_as(self, path: Path | None = None) -> bool:
        doc = self.doc
        if doc is None:
            return False
        if path is None:
            video = doc.project.video_path
            suggestion = str(video.with_name(video.name + PROJECT_SUFFIX))
            chosen, _ = QFileDialog.getSaveFileName(
                self, "Save project", suggestion, f"Trackpaint projects (*{PROJECT_SUFFIX})"
            )
            if not chosen:
                return False
            path = Path(chosen)
            if path.suffix != PROJECT_SUFFIX:
                path = path.with_name(path.name + PROJECT_SUFFIX)
        try:
            doc.session.save(path)
        except TrackpaintError as exc:
            show_error(self, str(exc), "Cannot save")
            return False
        self._after_save()
        return True

    def _after_save(self) -> None:
        doc = self.doc
        if doc is None or doc.project.path is None:
            return
        self.recent.add(doc.project.path)
        self._show_message(f"Saved {doc.project.path}")
        self._update_title()

    def autosave(self) -> bool:
        """Write the recovery file when something changed since the last autosave."""
        doc = self.doc
        if doc is None or not doc.project.modified or self._edits == self._autosaved_at:
            return False
        try:
            path = doc.session.autosave()
        except TrackpaintError as exc:
            self._show_message(f"Autosave failed: {exc}")
            return False
        self._autosaved_at = self._edits
        self._show_message(f"Autosaved to {path or doc.project.autosave_path()}")
        return True

    def show_export(self) -> ExportDialog | None:
        doc = self.doc
        if doc is None:
            return None
        base = doc.project.path or doc.project.video_path
        dialog = ExportDialog(doc, self.runner, base.parent / f"{base.stem}_export", self)
        dialog.exported.connect(lambda results: self._show_message(describe_exports(results)))
        dialog.show()
        return dialog

    # ---- drag and drop -----------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            self.open_path(Path(urls[0].toLocalFile()))

    # ---- state sync --------------------------------------------------------------------------

    def _on_changed(self, event: ChangeEvent) -> None:
        if event.kind != "view" and event.kind != "stroke":
            self._edits += 1
        doc = self.doc
        if doc is None:
            return
        if doc.frame in event.frames or event.kind in ("undo", "redo"):
            self._update_frame_status()
        if event.history_changed or event.objects_changed:
            self._update_enabled()
        self._update_title()

    def _update_frame_status(self) -> None:
        doc = self.doc
        if doc is None:
            return
        active = doc.active_object
        if active is None:
            conf = float(doc.project.confidences()[doc.frame])
            self.status.set_frame(doc.frame, doc.num_frames, doc.frame_state(), conf)
            return
        prov = doc.project.provenance(doc.frame)[active.id]
        self.status.set_frame(doc.frame, doc.num_frames, prov.state, prov.confidence, active.name)

    def _update_title(self) -> None:
        doc = self.doc
        self.setWindowTitle(f"{doc.title} — {APP_NAME}" if doc is not None else APP_NAME)

    def _update_enabled(self) -> None:
        doc = self.doc
        has_doc = doc is not None
        busy = self.runner.busy
        session = doc.session if doc is not None else None
        undo, redo = self.commands["undo"], self.commands["redo"]
        undo.setEnabled(bool(session and session.can_undo))
        redo.setEnabled(bool(session and session.can_redo))
        undo.setText(f"&Undo {session.undo_label}" if session and session.undo_label else "&Undo")
        redo.setText(f"&Redo {session.redo_label}" if session and session.redo_label else "&Redo")
        for key, action in (("undo", undo), ("redo", redo)):
            spec = next(a for a in ACTIONS if a.key == key)
            action.setToolTip(f"{action.text().replace('&', '')} ({shortcut_text(spec)})")
        for key in ("propagate_forward", "propagate_backward", "propagate_both"):
            self.commands[key].setEnabled(has_doc and not busy)
        self.commands["cancel_job"].setEnabled(True)
        for key in ("save", "save_as", "export", "next_uncertain", "fill_holes"):
            self.commands[key].setEnabled(has_doc)
        learned = isinstance(self.encoder, LearnedEncoder)
        self.commands["adapt"].setEnabled(has_doc and learned and not busy)

    def _on_brush_changed(self, radius: float) -> None:
        self.brush_spin.blockSignals(True)
        self.brush_spin.setValue(round(radius))
        self.brush_spin.blockSignals(False)

    def _show_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 6000)

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About Trackpaint",
            "Trackpaint — paint a mask or keypoints once; a self-supervised affinity "
            f"propagator fills in the video.\nModel in use: {self.encoder.name}",
        )

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.close_document():
            event.ignore()
            return
        self.autosave_timer.stop()
        event.accept()
