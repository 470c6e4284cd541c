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
"""

from __future__ import annotations

import logging
import math
import operator
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

import cv2
import numpy as np

from .errors import VideoError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
DEFAULT_FPS = 30.0
_DIGITS = re.compile(r"([0-9]+)")


@dataclass(frozen=True)
class VideoInfo:
    """What a video is: where it lives, how many frames, the frame rate and the frame size."""

    path: Path
    num_frames: int
    fps: float
    height: int
    width: int


class _Decoder(Protocol):
    """A frame reader without caching; ``read`` may be slow for random indices."""

    info: VideoInfo

    def read(self, index: int) -> np.ndarray:
        """Decode frame ``index`` (0 <= index < num_frames) to ``(H, W, 3) uint8`` RGB."""

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


def _decode_image(path: Path, index: int) -> np.ndarray:
    """Decode one image file (non-ASCII paths included) to RGB.

    Args:
        path: image file.
        index: its frame index, for the error message.

    Returns:
        ``(H, W, 3) uint8`` RGB.

    Raises:
        VideoError: the file cannot be read or is not a decodable image.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise VideoError(f"cannot read frame {index}: {exc.strerror or exc}", path) from exc
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise VideoError(f"cannot decode frame {index}: corrupt or not an image", path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _check_size(frame: np.ndarray, index: int, info: VideoInfo, where: Path) -> np.ndarray:
    """Raise VideoError unless ``frame`` is ``(info.height, info.width, 3)``; return it."""
    if frame.shape != (info.height, info.width, 3):
        got = f"{frame.shape[0]}x{frame.shape[1]}"
        raise VideoError(
            f"frame {index} is {got}, expected {info.height}x{info.width} like frame 0", where
        )
    return frame


class _FolderDecoder:
    """Frames from a folder of image files; each ``read`` decodes one file."""

    def __init__(self, info: VideoInfo, files: list[Path]) -> None:
        self.info = info
        self._files = files

    @classmethod
    def open(cls, folder: Path) -> _FolderDecoder:
        """List and check a frame folder; decodes only the first frame.

        Raises:
            VideoError: no images, an empty (0-byte) image file, or an undecodable first frame.
        """
        files = list_frame_files(folder)
        if not files:
            exts = ", ".join(sorted(IMAGE_EXTENSIONS))
            raise VideoError(f"folder holds no image files ({exts})", folder)
        for index, file in enumerate(files):
            try:
                size = file.stat().st_size
            except OSError as exc:
                raise VideoError(f"cannot read frame {index}: {exc.strerror or exc}", file) from exc
            if size == 0:
                raise VideoError(f"frame {index} is an empty (0-byte) file", file)
        height, width = _decode_image(files[0], 0).shape[:2]
        info = VideoInfo(folder, len(files), DEFAULT_FPS, height, width)
        return cls(info, files)

    def read(self, index: int) -> np.ndarray:
        """Decode frame ``index``: ``(H, W, 3) uint8`` RGB; VideoError names the bad file."""
        file = self._files[index]
        return _check_size(_decode_image(file, index), index, self.info, file)

    def close(self) -> None:
        """Nothing to release: files are opened per read."""


def _open_capture(path: Path) -> cv2.VideoCapture:
    """Open ``path`` with the FFmpeg backend (no image-sequence guessing).

    Raises:
        VideoError: FFmpeg cannot open it.
    """
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise VideoError("cannot open as a video (not a video, unsupported, or corrupt)", path)
    return cap


class _FileDecoder:
    """Frames from a video file with one positioned FFmpeg decoder; exact random access."""

    def __init__(
        self,
        info: VideoInfo,
        timestamps: np.ndarray,
        *,
        seek_ok: bool,
        forward_limit: int,
    ) -> None:
        self.info = info
        self._timestamps = timestamps  # (N,) float64 ms of frame i from sequential decode, or nan
        self._seek_ok = seek_ok
        self._forward_limit = forward_limit
        self._cap: cv2.VideoCapture | None = None
        self._next = 0  # index of the frame the next grab() returns
        self._exact = True  # whether _next comes from decoding forward from frame 0
        self.n_seeks = 0
        self.n_reopens = 0

    @classmethod
    def open(cls, path: Path, *, forward_limit: int = 48, seek: bool = True) -> _FileDecoder:
        """Open a video file, decode frame 0 and establish the true frame count.

        The claimed count (``CAP_PROP_FRAME_COUNT``) is trusted when its last frame decodes, no
        frame follows, and that frame's timestamp fits the frame rate; otherwise every frame is
        decoded once to count them (slow, only for broken or variable-rate files).

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
            ok, bgr = cap.read()
            if not ok or bgr is None:
                raise VideoError("video has no decodable frames", path)
            height, width = bgr.shape[:2]
            first_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
            claimed = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            claimed = int(claimed) if math.isfinite(claimed) else 0
            count = _verify_claimed_count(cap, claimed, first_ms, fps) if fps_known else None
        finally:
            cap.release()
        if count is not None:
            timestamps = np.full(count, np.nan)
            timestamps[0] = first_ms
            seek_ok = True
        else:
            logging.getLogger(__name__).info("%s: counting frames by decoding", path)
            timestamps = _scan_timestamps(path)
            seek_ok = fps_known and _fits_frame_rate(timestamps, fps)
        info = VideoInfo(path, len(timestamps), float(fps), height, width)
        return cls(info, timestamps, seek_ok=seek_ok and seek, forward_limit=forward_limit)

    def read(self, index: int) -> np.ndarray:
        """Decode frame ``index`` exactly as sequential decoding would.

        Returns:
            ``(H, W, 3) uint8`` RGB.

        Raises:
            VideoError: the frame cannot be decoded (truncated or corrupt file).
        """
        try:
            bgr = self._decode(index)
        except VideoError:
            self._release()
            raise
        return _check_size(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, self.info, self.info.path)

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
        """Decode the next frame (on the way to ``target``) without colour conversion, and
        record its timestamp when the position is exact."""
        index = self._next
        if not self._cap.grab():
            needed = "" if index == target else f" (needed to reach frame {target})"
            raise VideoError(
                f"cannot decode frame {index} of {self.info.num_frames}{needed}: "
                "file truncated or corrupt",
                self.info.path,
            )
        self._next += 1
        if self._exact and math.isnan(self._timestamps[index]):
            stamp = self._cap.get(cv2.CAP_PROP_POS_MSEC)
            self._timestamps[index] = stamp
            if not _on_frame_grid(stamp - self._timestamps[0], index, self.info.fps):
                self._seek_ok = False

    def _retrieve(self, index: int) -> np.ndarray:
        """Colour-convert the frame just grabbed (frame ``index``) to BGR ``(H, W, 3) uint8``."""
        ok, bgr = self._cap.retrieve()
        if not ok or bgr is None:
            raise VideoError(f"cannot decode frame {index}", self.info.path)
        return bgr

    def _seek_onto(self, index: int) -> bool:
        """Seek and grab frame ``index``, verified by its timestamp.

        The landed frame's timestamp must match the one recorded for ``index`` during sequential
        decoding or, if none was recorded yet, the constant-frame-rate model.

        Returns:
            True when frame ``index`` is grabbed (``_next == index + 1``); False when the seek
            failed or landed elsewhere, in which case seeking is disabled for this file and the
            caller must reopen.
        """
        if self._cap is None:
            self._cap = _open_capture(self.info.path)
        self.n_seeks += 1
        if not self._cap.set(cv2.CAP_PROP_POS_FRAMES, index) or not self._cap.grab():
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
        ``claimed`` when frame ``claimed - 1`` decodes at the expected time and nothing follows
        it; None when the count must be established by decoding every frame.
    """
    if claimed < 1:
        return None
    if claimed > 1:
        if not cap.set(cv2.CAP_PROP_POS_FRAMES, claimed - 1) or not cap.grab():
            return None
        if not _on_frame_grid(cap.get(cv2.CAP_PROP_POS_MSEC) - first_ms, claimed - 1, fps):
            return None
    return None if cap.grab() else claimed


def _scan_timestamps(path: Path) -> np.ndarray:
    """Decode every frame once (no colour conversion) and record its timestamp.

    Returns:
        ``(N,) float64`` timestamps in ms, N = number of decodable frames (>= 1).

    Raises:
        VideoError: no decodable frame.
    """
    cap = _open_capture(path)
    stamps: list[float] = []
    try:
        while cap.grab():
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
    finally:
        cap.release()
    if not stamps:
        raise VideoError("video has no decodable frames", path)
    return np.asarray(stamps, dtype=np.float64)


class VideoSource:
    """Random and sequential access to the frames of a video file or a frame folder.

    Frames are ``(H, W, 3) uint8`` RGB read-only arrays; the last ``cache_size`` distinct frames
    asked for are kept decoded. Safe to use from several threads (access is serialised).
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
            VideoError: the source is closed, or the frame cannot be decoded.
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
            frame = self._decoder.read(index)
            frame.flags.writeable = False
            if self._cache_size:
                self._cache[index] = frame
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            return frame

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
