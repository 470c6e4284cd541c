"""Synthetic clips with exact ground truth, and helpers to write them as files.

``make_moving_square_frames`` draws a textured coloured square sliding across a textured static
background; the square's texture moves with it, so appearance-based trackers can follow it, and
its mask is known exactly.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np


def _texture(rng: np.random.Generator, h: int, w: int, tint: np.ndarray, cell: int) -> np.ndarray:
    """Blocky random texture with a colour tint.

    Args:
        rng: random generator.
        h, w: output size.
        tint: ``(3,)`` float RGB weights in [0, 1].
        cell: block size in pixels.

    Returns:
        ``(h, w, 3) uint8`` RGB.
    """
    coarse = rng.uniform(0.35, 1.0, size=(-(-h // cell), -(-w // cell), 1))
    fine = rng.uniform(0.85, 1.0, size=(h, w, 1))
    blocks = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)[:h, :w]
    return np.clip(blocks * fine * tint * 255.0, 0, 255).astype(np.uint8)


def make_moving_square_frames(
    n: int = 12, h: int = 64, w: int = 96, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A textured red square moving left to right (with a small vertical bob) over a green-blue
    textured background.

    Args:
        n: number of frames (>= 1).
        h, w: frame size (>= 8 each).
        seed: texture seed; the same arguments always give the same clip.

    Returns:
        ``(frames, masks)``: ``n`` frames ``(h, w, 3) uint8`` RGB and ``n`` masks ``(h, w) uint8``
        with 1 on the square and 0 elsewhere.
    """
    if n < 1 or h < 8 or w < 8:
        raise ValueError(f"need n >= 1 and h, w >= 8, got n={n}, h={h}, w={w}")
    rng = np.random.default_rng(seed)
    side = max(4, min(h, w) // 3)
    background = _texture(rng, h, w, np.array([0.25, 0.8, 0.7]), cell=4)
    square = _texture(rng, side, side, np.array([1.0, 0.3, 0.2]), cell=3)
    frames: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    for t in range(n):
        progress = t / (n - 1) if n > 1 else 0.0
        x = round(progress * (w - side))
        y = round((h - side) / 2 + (h - side) / 4 * np.sin(2 * np.pi * progress))
        frame = background.copy()
        frame[y : y + side, x : x + side] = square
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[y : y + side, x : x + side] = 1
        frames.append(frame)
        masks.append(mask)
    return frames, masks


def make_square_path_frames(
    paths: list[list[tuple[int, int]]], h: int, w: int, side: int = 16, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Textured squares (object ids 1, 2, ...) at given top-left corners over a textured static
    background: ``paths[k][t]`` = (x, y) of square k in frame t; later squares are drawn on top.

    Returns ``(frames, masks)``: ``(h, w, 3) uint8`` RGB frames and ``(h, w) uint8`` id masks.
    """
    rng = np.random.default_rng(seed)
    background = _texture(rng, h, w, np.array([0.25, 0.8, 0.7]), cell=4)
    tints = [np.array([1.0, 0.3, 0.2]), np.array([0.9, 0.9, 0.2]), np.array([0.6, 0.2, 1.0])]
    squares = [_texture(rng, side, side, tints[k % 3], cell=3) for k in range(len(paths))]
    frames, masks = [], []
    for t in range(len(paths[0])):
        frame, mask = background.copy(), np.zeros((h, w), np.uint8)
        for k, path in enumerate(paths):
            x, y = path[t]
            frame[y : y + side, x : x + side] = squares[k]
            mask[y : y + side, x : x + side] = k + 1
        frames.append(frame)
        masks.append(mask)
    return frames, masks


def write_frame_folder(folder: Path, frames: list[np.ndarray], ext: str = ".png") -> list[Path]:
    """Write RGB frames as ``00000<ext>``, ``00001<ext>``, ... (works with non-ASCII paths).

    Args:
        folder: destination (created if missing).
        frames: ``(H, W, 3) uint8`` RGB frames.
        ext: image extension, e.g. ``.png`` (lossless) or ``.jpg``.

    Returns:
        The written paths in order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        ok, data = cv2.imencode(ext, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        assert ok, f"cannot encode {ext}"
        path = folder / f"{i:05d}{ext}"
        data.tofile(path)
        paths.append(path)
    return paths


def write_davis_sequence(
    root: Path, name: str, frames: list[np.ndarray], masks: list[np.ndarray]
) -> None:
    """A DAVIS-layout sequence: JPEG frames under ``JPEGImages/480p/<name>`` and the ``(H, W)``
    uint8 masks as PNGs under ``Annotations/480p/<name>``, both numbered ``00000`` ..."""
    from tracker_core.masks import write_indexed_png

    write_frame_folder(root / "JPEGImages" / "480p" / name, frames, ext=".jpg")
    folder = root / "Annotations" / "480p" / name
    folder.mkdir(parents=True, exist_ok=True)
    for i, mask in enumerate(masks):
        write_indexed_png(folder / f"{i:05d}.png", mask)


def write_video(
    path: Path, frames: list[np.ndarray], fourcc: str = "MJPG", fps: float = 25.0
) -> Path:
    """Encode RGB frames into a video file with OpenCV's FFmpeg writer.

    Args:
        path: destination; the container follows the extension (.avi, .mp4, .mkv, .mov).
        frames: ``(H, W, 3) uint8`` RGB frames, all the same size.
        fourcc: codec, e.g. ``MJPG`` or ``mp4v``.
        fps: frame rate stored in the file.

    Returns:
        ``path``.
    """
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(
        str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), fps, (width, height)
    )
    assert writer.isOpened(), f"cannot write {path} with {fourcc}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def decode_sequentially(path: Path) -> list[np.ndarray]:
    """Reference decode: every frame of a video file in order, as RGB, with plain OpenCV reads.

    Returns:
        ``(H, W, 3) uint8`` RGB frames.
    """
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


# --------------------------------------------------------------------------- damaged files


def corrupt_jpeg(path: Path, seed: int = 0) -> Path:
    """Overwrite 24 bytes in the middle of a JPEG's entropy-coded data in place, as a bad
    sector or a flipped transfer would: libjpeg still returns an image (partly garbage) and
    prints "Corrupt JPEG data: ..." on stderr.

    Returns:
        ``path``.
    """
    data = bytearray(path.read_bytes())
    start = data.index(b"\xff\xda")  # start of scan; the entropy-coded data follows its header
    scan_len = int.from_bytes(data[start + 2 : start + 4], "big")
    lo, hi = start + 2 + scan_len, len(data) - 2  # up to the EOI marker
    mid = (lo + hi) // 2
    noise = np.random.default_rng(seed).integers(0, 255, 24, dtype=np.uint8)  # no 0xff: no marker
    data[mid : mid + 24] = noise.tobytes()
    path.write_bytes(bytes(data))
    return path


def truncate_file(path: Path, fraction: float, dest: Path | None = None) -> Path:
    """Keep the first ``fraction`` of a file's bytes (an interrupted copy or download).

    Args:
        path: the file.
        fraction: in (0, 1).
        dest: where to write the cut file (default: in place).

    Returns:
        The cut file.
    """
    data = path.read_bytes()
    target = dest or path
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def add_bad_iccp_chunk(path: Path) -> Path:
    """Insert a malformed iCCP (colour profile) chunk after a PNG's IHDR, in place: libpng
    prints "libpng warning: iCCP: ..." but the pixels are intact.

    Returns:
        ``path``.
    """
    data = path.read_bytes()
    body = b"iCCP" + b"bad profile\x00\x00" + zlib.compress(b"\x00" * 200)
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, length, type, IHDR data, CRC
    path.write_bytes(data[:ihdr_end] + chunk + data[ihdr_end:])
    return path
