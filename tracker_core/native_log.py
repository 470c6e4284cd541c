"""What native decoders print: capture it per call, and keep it off the user's terminal.

libjpeg ("Corrupt JPEG data: ..."), libpng ("libpng warning: ..."), FFmpeg ("[mjpeg @ 0x...]
overread 8") and OpenCV's own logger write straight to file descriptor 2, bypassing Python.
:func:`capture_native_stderr` points descriptor 2 at a temporary file for the duration of one
decoder call and hands back the lines those libraries wrote, so the caller can turn them into a
per-frame verdict (see :mod:`tracker_core.video`) instead of letting them scroll past unnamed.
Text that is not recognisably a decoder's (another thread printing at the same moment) is written
back to the real stderr, so nothing is lost.

Descriptor 2 is process-wide, so captures are serialised by one module-level redirector (a
re-entrant lock, so a capture inside a capture nests correctly, and one reusable temporary file
per nesting depth, so a capture costs a few system calls rather than a file creation). This
works where the C libraries share the process's descriptor table (Linux, macOS); elsewhere
decoder messages are not seen and go to the console.

:func:`quiet_native_logging` is for entry points only (the CLI's and the GUI's ``main``): it turns
OpenCV's own logger down to errors, which silences its warnings outside any capture ("backend is
generally available but can't be used to capture by name"). Library code never calls it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from typing import IO


class _Fd2Redirect:
    """The process's one redirector of descriptor 2: a re-entrant lock and, per nesting depth,
    a temporary file that is emptied and reused by every capture at that depth (a forked child
    makes its own: it would share the parent's file offsets)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._sinks: list[IO[bytes]] = []
        self._depth = 0
        self._pid = os.getpid()

    @contextlib.contextmanager
    def sink(self) -> Iterator[IO[bytes]]:
        """An empty temporary file for one capture (call with ``lock`` held)."""
        if self._pid != os.getpid():
            self._sinks, self._depth, self._pid = [], 0, os.getpid()
        if self._depth == len(self._sinks):
            self._sinks.append(tempfile.TemporaryFile())
        sink = self._sinks[self._depth]
        sink.seek(0)
        sink.truncate()
        self._depth += 1
        try:
            yield sink
        finally:
            self._depth -= 1


# Descriptor 2 belongs to the whole process: one redirector orders every capture of it.
_FD2 = _Fd2Redirect()

FFMPEG_LINE = re.compile(r"^\[(?P<source>[^\]@]+?) @ (?:0x)?[0-9a-fA-F]+\] ?(?P<text>.*)$")
OPENCV_LINE = re.compile(
    r"^\[ ?(?P<level>WARN|ERROR|INFO|DEBUG|FATAL|VERBOSE):\d+(?:@[\d.]+)?\] ?(?P<text>.*)$"
)
LIBPNG_LINE = re.compile(r"^libpng (?P<level>warning|error): ?(?P<text>.*)$")
# Every warning and error text of libjpeg(-turbo)'s jerror.h that a decode can print.
LIBJPEG_PREFIXES = (
    "Corrupt JPEG data",
    "Premature end of JPEG file",
    "Inconsistent progression sequence",
    "Invalid SOS parameters",
    "Warning: unknown JFIF revision",
    "Unknown Adobe color transform",
    "Application transferred too many scanlines",
    "Not a JPEG file",
    "Bogus ",
    "Unsupported JPEG",
    "Invalid JPEG file structure",
    "Huffman table",
    "Quantization table",
    "Corrupt ",
)


def is_native_line(line: str) -> bool:
    """Whether ``line`` (no newline) was written by FFmpeg, OpenCV, libpng or libjpeg."""
    return bool(
        FFMPEG_LINE.match(line)
        or OPENCV_LINE.match(line)
        or LIBPNG_LINE.match(line)
        or line.startswith(LIBJPEG_PREFIXES)
    )


def split_native(text: str) -> tuple[list[str], str]:
    """Split captured stderr text into decoder lines and everything else.

    Args:
        text: what was written to descriptor 2 during a capture.

    Returns:
        ``(native, other)``: the decoder lines (stripped, non-empty) in order, and the rest of
        the text, newline-terminated lines, to be passed on to the real stderr.
    """
    native: list[str] = []
    other: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        (native if is_native_line(stripped) else other).append(line)
    return native, "".join(f"{line}\n" for line in other)


def fold_messages(lines: Sequence[str], limit: int = 240) -> str:
    """Decoder lines as one short clause: ``"mjpeg: overread 8; mjpeg: app: invalid len 8825"``.

    FFmpeg's ``[codec @ 0x55...]`` prefix becomes ``codec:``, OpenCV's ``[ WARN:0@0.05] global
    file.cpp:12 func`` location is dropped, repeats are removed, and the result is cut to
    ``limit`` characters.
    """
    parts: list[str] = []
    for line in lines:
        ffmpeg = FFMPEG_LINE.match(line)
        opencv = OPENCV_LINE.match(line)
        if ffmpeg:
            text = f"{ffmpeg['source'].split(',')[0].strip()}: {ffmpeg['text'].strip()}"
        elif opencv:
            text = re.sub(r"^global \S+:\d+ \S+ ", "", opencv["text"].strip())
        else:
            text = line.strip()
        if text and text not in parts:
            parts.append(text)
    folded = "; ".join(parts)
    return folded if len(folded) <= limit else folded[: limit - 3].rstrip() + "..."


@contextlib.contextmanager
def capture_native_stderr() -> Iterator[list[str]]:
    """Capture what native code writes to descriptor 2 inside the ``with`` block.

    Yields:
        A list that, once the block exits, holds the decoder lines written meanwhile (see
        :func:`split_native`); other text is re-written to the real stderr.
    """
    lines: list[str] = []
    with _FD2.lock, _FD2.sink() as sink:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            native, other = split_native(sink.read().decode("utf-8", "replace"))
            lines.extend(native)
            if other:
                os.write(2, other.encode("utf-8", "replace"))


def quiet_native_logging() -> None:
    """Entry points only: OpenCV's logger reports errors, not warnings (process-wide)."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
