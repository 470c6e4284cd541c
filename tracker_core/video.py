"""Frame access for video files and frame folders: lazy decode, exact random access, LRU cache.

``VideoSource.open(path)`` accepts a video file (anything FFmpeg reads: mp4, avi, mkv, mov, ...)
or a folder of ``.jpg/.jpeg/.png/.bmp`` frames sorted numerically by the digits in their names.
``frame(i)`` returns exactly the frame that decoding the video from the start would give as its
``i``-th frame, as an ``(H, W, 3) uint8`` RGB read-only array.

Exactness for video files: one decoder is kept positioned at its next frame. Short forward steps
decode forward; longer or backward jumps seek with OpenCV and then check the landed frame's
timestamp against the timestamp seen for that index during sequential decoding (or, before one
was seen, against the constant-frame-rate model). If the file's timestamps ever disagree with the
model (variable frame rate, gaps), seeking is switched off for that file and frames are reached by
reopening and decoding forward, which is slower but exact.

Damaged input is named, never decoded to garbage. Each decode runs with the decoders' stderr
captured (:mod:`tracker_core.native_log`): a frame whose decode makes libjpeg, libpng or FFmpeg
report corrupt data ("Corrupt JPEG data: 12 extraneous bytes", "overread 8") is *damaged*, and
so is one that does not decode, has the wrong size, or is an empty file. A video file whose
container lists more frames than decode, and whose decoder complained at the end, is truncated:
it keeps the listed frame count and its missing frames are damaged too. ``frame(i)`` of a damaged
frame raises :class:`~tracker_core.errors.FrameDamaged` (``<file>: frame N: <problem>``), and
``VideoSource.damaged`` lists the damaged frames found so far (at open: empty files, the
truncation; later: each frame as it is decoded; :meth:`VideoSource.check` decodes them all).
"""

from __future__ import annotations

import contextlib
import logging
import math
import operator
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import cv2
import numpy as np

from .errors import FrameDamaged, VideoError
from .native_log import FFMPEG_LINE, LIBPNG_LINE, OPENCV_LINE, capture_native_stderr, fold_messages

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
DEFAULT_FPS = 30.0
_DIGITS = re.compile(r"([0-9]+)")
# A truncated file keeps its listed frame count (missing frames named damaged) only while the
# gap is plausible; a header claiming more is not believed (the decodable frames are the video).
MAX_MISSING_FRAMES = 100_000
# libjpeg messages that mean the pixels are wrong (the others, e.g. "unknown JFIF revision", are
# about metadata); libpng warnings about a critical chunk (the others concern iCCP, tEXt, ...).
_JPEG_DAMAGE = (
    "Corrupt JPEG data",
    "Premature end of JPEG file",
    "Inconsistent progression sequence",
    "Bogus ",
    "Invalid JPEG file structure",
    "Huffman table",
    "Quantization table",
    "Corrupt ",
)
_PNG_CRITICAL = re.compile(r"\b(IHDR|PLTE|IDAT|IEND)\b|image data|CRC error")
# FFmpeg lines that do not say anything about the pixels of the frame being decoded.
_FFMPEG_BENIGN = re.compile(r"deprecated pixel format|No accelerated colorspace conversion")


@dataclass(frozen=True)
class VideoInfo:
    """What a video is: where it lives, how many frames, the frame rate and the frame size."""

    path: Path
    num_frames: int
    fps: float
    height: int
    width: int


@dataclass(frozen=True)
class DamagedFrame:
    """A frame that cannot be used: its index, the file holding it, and what is wrong (one line,
    e.g. ``"corrupt image data (Corrupt JPEG data: 473 extraneous bytes before marker 0xd9)"``)."""

    index: int
    file: Path
    problem: str

    def error(self) -> FrameDamaged:
        """The error naming it: ``<file>: frame N: <problem>``."""
        return FrameDamaged(self.index, self.file, self.problem)

    def __str__(self) -> str:
        return str(self.error())


def summarize_damaged(damaged: Sequence[DamagedFrame]) -> list[str]:
    """One line per run of consecutive damaged frames with the same file and problem.

    Args:
        damaged: damaged frames sorted by index (e.g. :attr:`VideoSource.damaged`).

    Returns:
        Lines ``<file>: frame N: <problem>`` or ``<file>: frames N-M: <problem>`` (a truncated
        file's thousands of missing frames make one line).
    """
    lines: list[str] = []
    run: list[DamagedFrame] = []
    for item in [*damaged, None]:
        if run and (
            item is None
            or item.index != run[-1].index + 1
            or (item.file, item.problem) != (run[0].file, run[0].problem)
        ):
            first, last = run[0], run[-1]
            span = f" {first.index}" if first is last else f"s {first.index}-{last.index}"
            lines.append(f"{first.file}: frame{span}: {first.problem}")
            run = []
        if item is not None:
            run.append(item)
    return lines


class _Decoder(Protocol):
    """A frame reader without caching; ``read`` may be slow for random indices.

    ``damaged`` maps the index of every damaged frame found so far to its description; ``read``
    adds to it (and raises FrameDamaged) when it meets one.
    """

    info: VideoInfo
    damaged: dict[int, DamagedFrame]

    def read(self, index: int) -> np.ndarray:
        """Decode frame ``index`` (0 <= index < num_frames) to ``(H, W, 3) uint8`` RGB.

        Raises:
            FrameDamaged: the frame is damaged (also recorded in ``damaged``).
        """

    def close(self) -> None:
        """Release the file handles."""


def natural_sort_key(name: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that orders digit runs by value: ``2.jpg`` < ``10.jpg``, ``f9`` < ``f10``.

    Args:
        name: a file name.

    Returns:
        A tuple to compare; ties between e.g. ``1.jpg`` and ``01.jpg`` break on the name itself.
    """
    parts = _DIGITS.split(name)
    key = tuple(
        (0, int(part), "") if i % 2 else (1, 0, part.casefold()) for i, part in enumerate(parts)
    )
    return (*key, (2, 0, name))


def list_frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder in frame order.

    Non-image extensions, sub-folders and hidden files (names starting with '.', such as macOS
    ``._00001.jpg`` resource forks) are ignored.

    Args:
        folder: an existing directory.

    Returns:
        Paths sorted with :func:`natural_sort_key`.

    Raises:
        VideoError: the folder cannot be listed.
    """
    try:
        entries = [
            entry
            for entry in folder.iterdir()
            if entry.suffix.lower() in IMAGE_EXTENSIONS
            and not entry.name.startswith(".")
            and entry.is_file()
        ]
    except OSError as exc:
        raise VideoError(f"cannot list frame folder: {exc.strerror or exc}", folder) from exc
    return sorted(entries, key=lambda entry: natural_sort_key(entry.name))


def image_damage(lines: list[str]) -> str | None:
    """What libjpeg / libpng reported about the pixels of one image, or None when nothing.

    Args:
        lines: the decoder lines captured while decoding it (see :mod:`tracker_core.native_log`).

    Returns:
        The damage reports folded into one clause; metadata warnings (a bad iCCP profile, an
        unknown JFIF revision) and OpenCV's own notes do not count.
    """
    bad = []
    for line in lines:
        png = LIBPNG_LINE.match(line)
        if png:
            if png["level"] == "error" or _PNG_CRITICAL.search(png["text"]):
                bad.append(line)
        elif line.startswith(_JPEG_DAMAGE):
            bad.append(line)
    return fold_messages(bad) if bad else None


def _decode_image(path: Path, index: int) -> tuple[np.ndarray, str | None]:
    """Decode one image file (non-ASCII paths included) to RGB, capturing decoder reports.

    Args:
        path: image file.
        index: its frame index, for the error message.

    Returns:
        ``((H, W, 3) uint8 RGB, damage)``: ``damage`` is what the decoder reported about corrupt
        data (the pixels are then partly garbage), or None.

    Raises:
        FrameDamaged: the file cannot be read or is not a decodable image.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise FrameDamaged(index, path, f"cannot read ({exc.strerror or exc})") from exc
    if not data.size:
        raise FrameDamaged(index, path, "empty (0-byte) file")
    with capture_native_stderr() as lines:
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        detail = fold_messages(lines)
        raise FrameDamaged(
            index, path, f"cannot decode (corrupt or not an image{': ' + detail if detail else ''})"
        )
    damage = image_damage(lines)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (
        None if damage is None else f"corrupt image data ({damage})"
    )


def _check_size(frame: np.ndarray, index: int, info: VideoInfo, where: Path) -> np.ndarray:
    """Raise FrameDamaged unless ``frame`` is ``(info.height, info.width, 3)``; return it."""
    if frame.shape != (info.height, info.width, 3):
        got = f"{frame.shape[0]}x{frame.shape[1]}"
        raise FrameDamaged(
            index, where, f"wrong size {got}, expected {info.height}x{info.width} like frame 0"
        )
    return frame


class _FolderDecoder:
    """Frames from a folder of image files; each ``read`` decodes one file."""

    def __init__(
        self, info: VideoInfo, files: list[Path], damaged: dict[int, DamagedFrame] | None = None
    ) -> None:
        self.info = info
        self._files = files
        self.damaged: dict[int, DamagedFrame] = dict(damaged or {})

    @classmethod
    def open(cls, folder: Path) -> _FolderDecoder:
        """List and check a frame folder; decodes only the first frame.

        Empty (0-byte) and unreadable files are recorded as damaged frames.

        Raises:
            VideoError: no images.
            FrameDamaged: the first frame cannot be decoded (its size sets the video's).
        """
        files = list_frame_files(folder)
        if not files:
            exts = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise VideoError(f"folder holds no image files ({exts})", folder)
        damaged: dict[int, DamagedFrame] = {}
        for index, file in enumerate(files):
            try:
                size = file.stat().st_size
            except OSError as exc:
                damaged[index] = DamagedFrame(index, file, f"cannot read ({exc.strerror or exc})")
            else:
                if size == 0:
                    damaged[index] = DamagedFrame(index, file, "empty (0-byte) file")
        if 0 in damaged:
            raise damaged[0].error()
        first, damage = _decode_image(files[0], 0)
        if damage is not None:
            damaged[0] = DamagedFrame(0, files[0], damage)
        height, width = first.shape[:2]
        info = VideoInfo(folder, len(files), DEFAULT_FPS, height, width)
        return cls(info, files, damaged)

    def read(self, index: int) -> np.ndarray:
        """Decode frame ``index``: ``(H, W, 3) uint8`` RGB; FrameDamaged names the bad file."""
        file = self._files[index]
        try:
            frame, damage = _decode_image(file, index)
            if damage is not None:
                raise FrameDamaged(index, file, damage)
            return _check_size(frame, index, self.info, file)
        except FrameDamaged as exc:
            self.damaged[index] = DamagedFrame(index, file, exc.problem)
            raise

    def close(self) -> None:
        """Nothing to release: files are opened per read."""


def ffmpeg_damage(lines: list[str]) -> str | None:
    """What FFmpeg (or OpenCV's FFmpeg wrapper, at error level) reported while decoding one
    frame, folded into one clause; None when it said nothing about the pixels."""
    bad = []
    for line in lines:
        opencv = OPENCV_LINE.match(line)
        if opencv:
            if opencv["level"] in ("ERROR", "FATAL"):
                bad.append(line)
        elif FFMPEG_LINE.match(line) and not _FFMPEG_BENIGN.search(line):
            bad.append(line)
    return fold_messages(bad) if bad else None


def _open_capture(path: Path) -> cv2.VideoCapture:
    """Open ``path`` with the FFmpeg backend (no image-sequence guessing).

    Raises:
        VideoError: FFmpeg cannot open it (with what FFmpeg said, when it said something).
    """
    with capture_native_stderr() as lines:
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        said = ffmpeg_damage(lines)
        raise VideoError(
            "cannot open as a video (not a video, unsupported, or corrupt"
            + (f": {said})" if said else ")"),
            path,
        )
    return cap


def _grab_reported(cap: cv2.VideoCapture) -> tuple[bool, str | None]:
    """Decode the next frame (no colour conversion) with FFmpeg's reports captured.

    Returns:
        ``(grabbed, damage)``: whether a frame came, and what the decoder reported (or None).
    """
    with capture_native_stderr() as lines:
        grabbed = cap.grab()
    return grabbed, ffmpeg_damage(lines)


@dataclass(frozen=True)
class _Scan:
    """Every frame of a file decoded once: ``(N,) float64`` ms timestamps, the decoder's reports
    per frame index, and what it reported when decoding stopped (None: a clean end)."""

    timestamps: np.ndarray
    reports: dict[int, str]
    at_end: str | None


class _FileDecoder:
    """Frames from a video file with one positioned FFmpeg decoder; exact random access."""

    def __init__(
        self,
        info: VideoInfo,
        timestamps: np.ndarray,
        *,
        seek_ok: bool,
        forward_limit: int,
        damaged: dict[int, DamagedFrame] | None = None,
    ) -> None:
        self.info = info
        self._timestamps = timestamps  # (N,) float64 ms of frame i from sequential decode, or nan
        self._seek_ok = seek_ok
        self._forward_limit = forward_limit
        self.damaged: dict[int, DamagedFrame] = dict(damaged or {})
        self._cap: cv2.VideoCapture | None = None
        self._next = 0  # index of the frame the next grab() returns
        self._exact = True  # whether _next comes from decoding forward from frame 0
        self.n_seeks = 0
        self.n_reopens = 0

    @classmethod
    def open(cls, path: Path, *, forward_limit: int = 48, seek: bool = True) -> _FileDecoder:
        """Open a video file, decode frame 0 and establish the true frame count.

        The claimed count (``CAP_PROP_FRAME_COUNT``) is trusted when its last frame decodes
        cleanly, no frame follows, and that frame's timestamp fits the frame rate; otherwise
        every frame is decoded once to count them (slow, only for broken or variable-rate files).
        That scan also finds a truncated file: fewer frames decode than the container lists and
        the decoder complains at the end. Such a file keeps the listed count; its missing
        frames, and a last frame the decoder reported as cut short, are damaged.

        Args:
            path: the video file.
            forward_limit: decode forward instead of seeking for jumps up to this many frames.
            seek: allow seeking at all (False = always decode forward; for tests).

        Raises:
            VideoError: cannot open, or no decodable frame.
        """
        cap = _open_capture(path)
        try:
            fps = cap.get(cv2.CAP_PROP_FPS)
            fps_known = math.isfinite(fps) and fps > 0
            fps = fps if fps_known else DEFAULT_FPS
            grabbed, damage0 = _grab_reported(cap)
            with capture_native_stderr():
                ok, bgr = cap.retrieve() if grabbed else (False, None)
            if not ok or bgr is None:
                raise VideoError("video has no decodable frames", path)
            height, width = bgr.shape[:2]
            first_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            claimed = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            claimed = int(claimed) if math.isfinite(claimed) else 0
            count = _verify_claimed_count(cap, claimed, first_ms, fps) if fps_known else None
        finally:
            cap.release()
        damaged: dict[int, DamagedFrame] = {}
        if count is not None:
            timestamps = np.full(count, np.nan)
            timestamps[0] = first_ms
            seek_ok = True
            if damage0 is not None:
                damaged[0] = DamagedFrame(0, path, f"corrupt data ({damage0})")
        else:
            logging.getLogger(__name__).info("%s: counting frames by decoding", path)
            scan = _scan(path)
            decodable = len(scan.timestamps)
            seek_ok = fps_known and _fits_frame_rate(scan.timestamps, fps)
            damaged = _scan_damage(path, scan, claimed)
            timestamps = scan.timestamps
            if claimed > decodable and decodable in damaged:  # truncated: keep the listed count
                timestamps = np.concatenate([timestamps, np.full(claimed - decodable, np.nan)])
        info = VideoInfo(path, len(timestamps), float(fps), height, width)
        return cls(
            info,
            timestamps,
            seek_ok=seek_ok and seek,
            forward_limit=forward_limit,
            damaged=damaged,
        )

    def read(self, index: int) -> np.ndarray:
        """Decode frame ``index`` exactly as sequential decoding would.

        Returns:
            ``(H, W, 3) uint8`` RGB.

        Raises:
            FrameDamaged: the frame cannot be decoded, or the decoder reported corrupt data in
                it (truncated or corrupt file), or it has the wrong size.
        """
        known = self.damaged.get(index)
        if known is not None:
            raise known.error()
        try:
            bgr = self._decode(index)
        except VideoError:
            self._release()
            raise
        known = self.damaged.get(index)
        if known is not None:
            raise known.error()
        try:
            frame = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            return _check_size(frame, index, self.info, self.info.path)
        except FrameDamaged as exc:
            self.damaged[index] = DamagedFrame(index, self.info.path, exc.problem)
            raise

    def close(self) -> None:
        """Release the decoder."""
        self._release()

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _decode(self, index: int) -> np.ndarray:
        """Position the decoder on ``index`` and return that frame (BGR)."""
        ahead = index - self._next
        if self._cap is None or ahead < 0 or (ahead > self._forward_limit and self._seek_ok):
            if index > self._forward_limit and self._seek_ok and self._seek_onto(index):
                return self._retrieve(index)
            self._reopen()
        while self._next <= index:
            self._grab(index)
        return self._retrieve(index)

    def _reopen(self) -> None:
        """Start a fresh decoder at frame 0."""
        self._release()
        self._cap = _open_capture(self.info.path)
        self._next = 0
        self._exact = True
        self.n_reopens += 1

    def _grab(self, target: int) -> None:
        """Decode the next frame (on the way to ``target``) without colour conversion, record
        its timestamp when the position is exact, and record it damaged when the decoder
        reported corrupt data."""
        index = self._next
        grabbed, damage = _grab_reported(self._cap)
        path = self.info.path
        if not grabbed:
            said = f": {damage}" if damage else ""
            self.damaged.setdefault(
                index, DamagedFrame(index, path, f"cannot decode (file truncated or corrupt{said})")
            )
            if index == target:
                raise self.damaged[index].error()
            raise FrameDamaged(
                target, path, f"cannot decode: frame {index} before it does not decode{said}"
            )
        if damage is not None:
            self.damaged.setdefault(index, DamagedFrame(index, path, f"corrupt data ({damage})"))
        self._next += 1
        if self._exact and math.isnan(self._timestamps[index]):
            stamp = self._cap.get(cv2.CAP_PROP_POS_MSEC)
            self._timestamps[index] = stamp
            if not _on_frame_grid(stamp - self._timestamps[0], index, self.info.fps):
                self._seek_ok = False

    def _retrieve(self, index: int) -> np.ndarray:
        """Colour-convert the frame just grabbed (frame ``index``) to BGR ``(H, W, 3) uint8``."""
        with capture_native_stderr():  # swscale's notes say nothing about this frame's data
            ok, bgr = self._cap.retrieve()
        if not ok or bgr is None:
            raise FrameDamaged(index, self.info.path, "cannot decode (no picture)")
        return bgr

    def _seek_onto(self, index: int) -> bool:
        """Seek and grab frame ``index``, verified by its timestamp.

        The landed frame's timestamp must match the one recorded for ``index`` during sequential
        decoding or, if none was recorded yet, the constant-frame-rate model.

        Returns:
            True when frame ``index`` is grabbed (``_next == index + 1``); False when the seek
            failed or landed elsewhere, in which case seeking is disabled for this file and the
            caller must reopen; also False (seeking stays on) when the decoder complained on
            landing: right after a seek that can be the seek's doing, so that frame is decoded
            forward from the start, where a complaint is the file's.
        """
        if self._cap is None:
            self._cap = _open_capture(self.info.path)
        self.n_seeks += 1
        with capture_native_stderr():
            moved = self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        grabbed, damage = _grab_reported(self._cap) if moved else (False, None)
        if not grabbed:
            self._seek_ok = False
            return False
        landed_ms = self._cap.get(cv2.CAP_PROP_POS_MSEC)
        known_ms = self._timestamps[index]
        if math.isnan(known_ms):
            landed = _on_frame_grid(landed_ms - self._timestamps[0], index, self.info.fps)
        else:
            landed = abs(landed_ms - known_ms) <= 0.5  # same frame, same timestamp
        if not landed:
            self._seek_ok = False
            return False
        if damage is not None:
            return False
        self._next = index + 1
        self._exact = not math.isnan(known_ms)
        return True


def _on_frame_grid(offset_ms: float, index: int, fps: float) -> bool:
    """Whether a frame ``offset_ms`` after frame 0 sits within half a frame of ``index / fps``."""
    return abs(offset_ms - index * 1000.0 / fps) <= 500.0 / fps


def _fits_frame_rate(timestamps_ms: np.ndarray, fps: float) -> bool:
    """Whether every timestamp is within half a frame of ``t0 + i / fps``.

    Args:
        timestamps_ms: ``(N,)`` float64 ms of frames 0..N-1.
        fps: frames per second.
    """
    offsets = timestamps_ms - timestamps_ms[0]
    model = np.arange(len(timestamps_ms)) * (1000.0 / fps)
    return bool((np.abs(offsets - model) <= 500.0 / fps).all())


def _verify_claimed_count(
    cap: cv2.VideoCapture, claimed: int, first_ms: float, fps: float
) -> int | None:
    """Check the container's frame count on a capture that has just read frame 0.

    Returns:
        ``claimed`` when frame ``claimed - 1`` decodes cleanly at the expected time and nothing
        follows it; None when the count must be established by decoding every frame.
    """
    if claimed < 1:
        return None
    if claimed > 1:
        with capture_native_stderr():
            moved = cap.set(cv2.CAP_PROP_POS_FRAMES, claimed - 1)
        grabbed, damage = _grab_reported(cap) if moved else (False, None)
        if not grabbed or damage is not None:
            return None
        if not _on_frame_grid(cap.get(cv2.CAP_PROP_POS_MSEC) - first_ms, claimed - 1, fps):
            return None
    grabbed, damage = _grab_reported(cap)
    return None if grabbed or damage is not None else claimed


def _scan(path: Path) -> _Scan:
    """Decode every frame once (no colour conversion), recording timestamps and reports.

    Raises:
        VideoError: no decodable frame.
    """
    cap = _open_capture(path)
    stamps: list[float] = []
    reports: dict[int, str] = {}
    try:
        while True:
            grabbed, damage = _grab_reported(cap)
            if not grabbed:
                break
            if damage is not None:
                reports[len(stamps)] = damage
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
    finally:
        cap.release()
    if not stamps:
        raise VideoError("video has no decodable frames", path)
    return _Scan(np.asarray(stamps, dtype=np.float64), reports, damage)


def _scan_damage(path: Path, scan: _Scan, claimed: int) -> dict[int, DamagedFrame]:
    """The damaged frames a full decode found, truncation included.

    The file is truncated (or corrupt beyond what the decoder can pass) when the container lists
    more frames than decode (``claimed``, at most MAX_MISSING_FRAMES more) and the decoder
    complained on the last frame or where it stopped; then the frames from the first one that
    did not decode up to ``claimed - 1`` are damaged ("missing"), and a last frame it
    complained about is named as incomplete.

    Returns:
        ``{index: DamagedFrame}``.
    """
    n = len(scan.timestamps)
    damaged = {
        i: DamagedFrame(i, path, f"corrupt data ({report})") for i, report in scan.reports.items()
    }
    truncated = n < claimed <= n + MAX_MISSING_FRAMES and (
        scan.at_end is not None or n - 1 in scan.reports
    )
    if not truncated:
        return damaged
    if n - 1 in scan.reports:
        damaged[n - 1] = DamagedFrame(
            n - 1,
            path,
            f"incomplete: decoding stops inside this frame ({scan.reports[n - 1]})",
        )
    said = f"; {scan.at_end}" if scan.at_end else ""
    missing = (
        f"missing: decoding stops at frame {n} (truncated or corrupt file: {n} of the {claimed} "
        f"frames it lists decode{said})"
    )
    damaged.update((i, DamagedFrame(i, path, missing)) for i in range(n, claimed))
    return damaged


class VideoSource:
    """Random and sequential access to the frames of a video file or a frame folder.

    Frames are ``(H, W, 3) uint8`` RGB read-only arrays; the last ``cache_size`` distinct frames
    asked for are kept decoded. Safe to use from several threads (access is serialised).
    A damaged frame raises :class:`~tracker_core.errors.FrameDamaged` and is listed in
    :attr:`damaged`.
    """

    def __init__(self, decoder: _Decoder, cache_size: int = 32) -> None:
        """Wrap a decoder; use :meth:`open` instead."""
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self._decoder = decoder
        self._cache_size = cache_size
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(cls, path: str | Path, cache_size: int = 32) -> VideoSource:
        """Open a video file or a folder of frames.

        Args:
            path: video file (mp4, avi, mkv, mov, ...) or folder of jpg/jpeg/png/bmp frames.
            cache_size: how many decoded frames to keep (0 = none).

        Raises:
            VideoError: missing path, not a video, corrupt, empty, or folder without images.
        """
        path = Path(path)
        if not path.exists():
            raise VideoError("no such video file or frame folder", path)
        if path.is_dir():
            decoder: _Decoder = _FolderDecoder.open(path)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            raise VideoError("is a single image; open the folder holding the frames", path)
        elif path.is_file():
            decoder = _FileDecoder.open(path)
        else:
            raise VideoError("is neither a video file nor a folder", path)
        return cls(decoder, cache_size)

    @property
    def info(self) -> VideoInfo:
        """Path, frame count, fps (30.0 for folders) and frame size."""
        return self._decoder.info

    @property
    def num_frames(self) -> int:
        """Number of frames."""
        return self._decoder.info.num_frames

    @property
    def fps(self) -> float:
        """Frames per second."""
        return self._decoder.info.fps

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return self._decoder.info.height

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return self._decoder.info.width

    @property
    def damaged(self) -> tuple[DamagedFrame, ...]:
        """The damaged frames found so far, by index: at open (empty files, a truncated file's
        missing frames) and by every decode since. :meth:`check` finds them all."""
        with self._lock:
            return tuple(sorted(self._decoder.damaged.values(), key=lambda d: d.index))

    def is_damaged(self, index: int) -> DamagedFrame | None:
        """The damage of frame ``index`` if it is known to be damaged, else None (no decode)."""
        with self._lock:
            return self._decoder.damaged.get(index)

    def check(self) -> tuple[DamagedFrame, ...]:
        """Decode every frame not yet known damaged, in order, to find all damaged frames.

        Costs one sequential decode of the whole video (frames are not cached).

        Returns:
            :attr:`damaged` afterwards.

        Raises:
            VideoError: the source is closed.
        """
        for index in range(len(self)):
            with self._lock:
                if self._closed:
                    raise VideoError("video source is closed", self._decoder.info.path)
                if index in self._cache or index in self._decoder.damaged:
                    continue
                with contextlib.suppress(FrameDamaged):
                    self._decoder.read(index)
        return self.damaged

    def __len__(self) -> int:
        return self._decoder.info.num_frames

    def __repr__(self) -> str:
        info = self._decoder.info
        return (
            f"VideoSource({str(info.path)!r}, {info.num_frames} frames, "
            f"{info.width}x{info.height} @ {info.fps:g} fps)"
        )

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index``, identical to the ``index``-th frame of sequential decoding.

        Args:
            index: 0 <= index < len(self) (negative indices are refused).

        Returns:
            ``(H, W, 3) uint8`` RGB, read-only (shared with the cache).

        Raises:
            IndexError: index out of range.
            FrameDamaged: the frame is damaged (corrupt, truncated, missing, wrong size,
                undecodable); it is then listed in :attr:`damaged`.
            VideoError: the source is closed.
        """
        index = operator.index(index)
        count = self._decoder.info.num_frames
        if not 0 <= index < count:
            raise IndexError(f"frame index {index} out of range 0..{count - 1}")
        with self._lock:
            if self._closed:
                raise VideoError("video source is closed", self._decoder.info.path)
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return cached
            known = self._decoder.damaged.get(index)
            if known is not None:
                raise known.error()
            frame = self._decoder.read(index)
            frame.flags.writeable = False
            if self._cache_size:
                self._cache[index] = frame
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            return frame

    def cached(self, index: int) -> np.ndarray | None:
        """Frame ``index`` when it is already decoded in the cache, else None: never decodes and
        leaves the cache's order alone (a viewer can show what another thread's source just
        decoded without decoding it again). ``(H, W, 3) uint8`` RGB, read-only."""
        with self._lock:
            return None if self._closed else self._cache.get(operator.index(index))

    def __iter__(self) -> Iterator[np.ndarray]:
        """Frames 0, 1, ... in order, decoded sequentially (no seeking between frames)."""
        for index in range(len(self)):
            yield self.frame(index)

    def close(self) -> None:
        """Release the decoder and the cache; later ``frame`` calls raise VideoError."""
        with self._lock:
            self._closed = True
            self._cache.clear()
            self._decoder.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
