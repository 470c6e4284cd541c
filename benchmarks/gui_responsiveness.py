"""GUI responsiveness during propagation: the longest the Qt event loop goes without running.

Opens the main window on a clip (default: the bundled bear sample with its frame-0 mask),
starts a 10 ms QTimer that records the gap between its ticks, propagates forward from frame 0
on the worker thread (the view follows the newest frame, as in normal use), cancels after
``--frames`` frames, and reports the
largest and 99th-percentile gaps, and the propagation speed. Optionally saves a screenshot of
the window afterwards (``--screenshot docs/screenshot.png``; use xvfb for real fonts).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/gui_responsiveness.py --frames 15
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=15, help="frames to propagate")
    parser.add_argument("--model", default=None, help="checkpoint path or 'lab' (default: bundled)")
    parser.add_argument("--precision", default="auto", help="encoder precision (fp32: no bf16)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    parser.add_argument("--preset", default=None, help="propagation preset (default: settings)")
    parser.add_argument("--screenshot", type=Path, help="save the window as PNG afterwards")
    parser.add_argument("--show-frame", type=int, default=None, help="frame shown in screenshot")
    parser.add_argument(
        "--no-stall-timer",
        action="store_true",
        help="no 10 ms timer during the run (throughput only: the timer costs GUI-thread CPU)",
    )
    parser.add_argument("--no-follow", action="store_true", help="View > Follow off during the run")
    parser.add_argument(
        "--gui-thread-team",
        action="store_true",
        help="run one parallel torch op on the GUI thread first, leaving an idle OpenMP team "
        "there (what loading a model did before load_net assigned its tensors)",
    )
    parser.add_argument("--profile", type=Path, help="cProfile the GUI thread into this file")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=3.0,
        help="first measure the idle event loop this long (the machine's own noise)",
    )
    return parser.parse_args()


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) used so far by each thread of this process, by thread id
    (Linux ``/proc/self/task``; the main thread's id is the process id)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def worst(gaps: list[float], k: int) -> list[int]:
    """Indices (into ``gaps``, offset by the skipped first tick) of the ``k`` longest gaps."""
    return [i + 1 for i in sorted(range(len(gaps)), key=gaps.__getitem__)[-k:]]


def save_png(image, path: Path) -> None:  # image: QImage
    """Save a screenshot as a 256-colour PNG (keeps docs/screenshot.png small)."""
    import io

    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    rgb = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
    small = rgb.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def getrusage() -> resource.struct_rusage:
    """This process's resource usage so far (all threads)."""
    return resource.getrusage(resource.RUSAGE_SELF)


def rusage_per_frame(
    start: resource.struct_rusage, end: resource.struct_rusage, frames: int
) -> dict[str, float]:
    """Per frame between two ``getrusage`` samples: system CPU (ms), minor page faults, voluntary
    (waiting) and involuntary (pre-empted) context switches."""
    n = max(1, frames)
    return {
        "steady_sys_ms_per_frame": round(1000 * (end.ru_stime - start.ru_stime) / n, 1),
        "steady_minflt_per_frame": round((end.ru_minflt - start.ru_minflt) / n, 1),
        "steady_vcsw_per_frame": round((end.ru_nvcsw - start.ru_nvcsw) / n, 1),
        "steady_ivcsw_per_frame": round((end.ru_nivcsw - start.ru_nivcsw) / n, 1),
    }


def main() -> int:
    args = parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    sys.path.insert(0, str(ROOT))
    # first, as in the app: importing tracker_core sets GOMP_SPINCOUNT before torch loads
    import tracker_core  # noqa: F401

    # isort: split
    import torch
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QMessageBox

    from app.__main__ import make_application
    from app.document import SAMPLE_CLIP
    from app.main_window import MainWindow
    from tracker_core.encoder import load_encoder
    from tracker_core.recovery import RecoveryStore
    from tracker_core.session import PropagationProgress

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if args.gui_thread_team:
        torch.empty(1 << 20).copy_(torch.ones(1 << 20))  # > torch's grain size: parallel
    app = make_application([])
    # never block on a question; a private recovery folder, so the user's autosaves are not seen
    QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.No)
    scratch = Path(tempfile.mkdtemp(prefix="trackpaint-bench-"))
    settings = QSettings(str(scratch / "settings.ini"), QSettings.Format.IniFormat)
    encoder = load_encoder(args.model, precision=args.precision)
    window = MainWindow(
        encoder,
        scratch_dir=scratch,
        autosave_ms=3_600_000,
        settings=settings,
        recovery=RecoveryStore(scratch / "recovery"),
    )
    if args.preset is not None:
        window.set_preset(args.preset)
    window.resize(1600, 1000)
    window.show()
    if not window.open_sample(SAMPLE_CLIP):
        return 1
    doc = window.doc
    assert doc is not None
    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    idle: list[float] = []
    idle_cpu = 0.0
    if args.idle_seconds > 0:  # baseline: the same timer with nothing else running
        idle_t0 = time.thread_time()
        timer.start()
        loop = QEventLoop()  # not app.exec()/quit(): Qt 6's quit() closes the windows
        QTimer.singleShot(round(1000 * args.idle_seconds), loop.quit)
        loop.exec()
        timer.stop()
        idle_cpu = time.thread_time() - idle_t0
        idle = gaps[1:]
        gaps.clear()
    counts = {"display_decodes": 0, "frame_refreshes": 0, "label_refreshes": 0}

    def counted(key: str, fn):  # count calls of a bound method (instance attribute override)
        def wrapper(*a, **k):
            counts[key] += 1
            return fn(*a, **k)

        return wrapper

    doc.display.frame = counted("display_decodes", doc.display.frame)
    window.canvas.refresh_frame = counted("frame_refreshes", window.canvas.refresh_frame)
    window.canvas.refresh_labels = counted("label_refreshes", window.canvas.refresh_labels)
    profiler = None
    if args.profile is not None:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)  # CPU time of the GUI thread
        profiler.enable()
    cpu0, threads0, main0 = time.process_time(), thread_cpu(), time.thread_time()
    load0 = os.getloadavg()
    started = time.perf_counter()
    last[0] = started
    if not args.no_stall_timer:
        timer.start()
    if args.no_follow:
        window.commands["follow"].setChecked(False)
    job = window.propagate("forward")
    assert job is not None
    # stop after --frames frames: Cancel keeps what is done, exactly as the button does
    first: list[float] = []
    first_cpu: list[tuple[int, float]] = []  # (frames done, process CPU s) at the first frame
    first_usage: list[resource.struct_rusage] = []

    def progressed(p: object) -> None:
        if not isinstance(p, PropagationProgress):
            return  # warm-up ("encoding keyframes 1/1")
        if not first:
            first.append(time.perf_counter() - started)
            first_cpu.append((p.done, time.process_time()))
            first_usage.append(getrusage())
        if p.done >= args.frames:
            window.runner.cancel()

    job.progressed.connect(progressed)
    result: dict[str, object] = {}

    def finish() -> None:
        if window.runner.busy:
            return
        poll.stop()
        timer.stop()
        cpu = time.process_time() - cpu0
        end_usage = getrusage()
        gui_cpu = time.thread_time() - main0
        threads = thread_cpu()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        # threads that ended (the propagation worker) are counted in the process total only
        others = cpu - gui_cpu
        frames = int((doc.project.states() == 2).sum())
        ms = sorted(1000 * g for g in gaps[1:])
        if first_usage:
            steady = frames - first_cpu[0][0]
            result.update(rusage_per_frame(first_usage[0], end_usage, steady))
        result.update(
            frames=frames,
            cpu_ms_per_frame=round(1000 * cpu / max(frames, 1), 1),
            # from the first propagated frame on (warm-up excluded, like gui_vs_cli's CLI arm)
            steady_cpu_ms_per_frame=round(
                1000 * (cpu0 + cpu - first_cpu[0][1]) / max(1, frames - first_cpu[0][0]), 1
            )
            if first_cpu
            else None,
            gui_thread_cpu_ms_per_frame=round(1000 * gui_cpu / max(frames, 1), 1),
            other_threads_cpu_ms_per_frame=round(1000 * others / max(frames, 1), 1),
            threads_alive=len(threads),
            threads_new=len(set(threads) - set(threads0)),
            load_avg_1min_start_end=[round(load0[0], 1), round(os.getloadavg()[0], 1)],
            **counts,
            wall_s=round(time.perf_counter() - started, 2),
            ms_per_frame=round(doc.session.last_ms_per_frame or float("nan"), 1),
            model=window.encoder.name,
            placement=str(getattr(window.encoder, "placement", "")),
            preset=window.preset,
            first_frame_s=round(first[0], 2) if first else None,
            timer_ticks=len(ms),
            max_stall_ms=round(ms[-1], 1) if ms else None,
            p99_stall_ms=round(ms[int(0.99 * (len(ms) - 1))], 1) if ms else None,
            frame_size=f"{doc.project.width}x{doc.project.height}",
            idle_max_stall_ms=round(1000 * max(idle), 1) if idle else None,
            idle_gui_cpu_ms_per_s=round(1000 * idle_cpu / args.idle_seconds, 1) if idle else None,
            gui_thread_cpu_ms_per_s=round(1000 * gui_cpu / (time.perf_counter() - started), 1),
            worst_ticks_s=[round(sum(gaps[: i + 1]), 2) for i in worst(gaps[1:], 3)],
        )
        if args.screenshot is not None:
            doc.set_frame(args.show_frame if args.show_frame is not None else args.frames)
            QTimer.singleShot(300, save_screenshot)
        else:
            QTimer.singleShot(0, quit_app)

    def save_screenshot() -> None:
        window.timeline.refresh()
        window.statusBar().clearMessage()
        app.processEvents()
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        save_png(window.grab().toImage(), args.screenshot)
        quit_app()

    def quit_app() -> None:
        window.close_document(ask=False)
        window.close()
        app.quit()

    poll = QTimer()
    poll.setInterval(100)
    poll.timeout.connect(finish)
    poll.start()
    app.exec()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
