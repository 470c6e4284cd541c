"""Unlabeled training clips: a downscaled uint8 cache and a random clip sampler.

Sources are frame folders (a directory of JPEG/PNG frames is one clip) and video files
(mp4/avi/mkv/mov/webm, decoded once). Each clip is cached as ``<cache_dir>/<name>.npy``, an array
(T, H, W, 3) uint8 RGB resized so that the short side is ``CacheConfig.short_side``; long videos
are temporally subsampled to at most ``CacheConfig.max_frames`` frames. The sampler reads the
cache through memory maps, so many clips cost little RAM.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from tracker_core.errors import VideoError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v")


@dataclass(frozen=True)
class CacheConfig:
    """How clips are downscaled into the cache."""

    short_side: int = 256
    max_frames: int = 240


@dataclass(frozen=True)
class SamplerConfig:
    """Random clip sampling.

    A clip is ``num_frames`` frames ``gap`` apart (gap uniform in [1, max_gap]), possibly reversed,
    cropped with one random box (area fraction in ``scale``, aspect ratio in ``ratio``), resized
    to ``crop_size`` squared and possibly flipped. With probability ``synthetic_prob`` the clip
    is instead made from one still frame by a chain of random affine warps (synthetic motion).
    """

    num_frames: int = 4
    crop_size: int = 160
    max_gap: int = 4
    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (0.75, 1.333)
    flip_prob: float = 0.5
    reverse_prob: float = 0.5
    synthetic_prob: float = 0.1


def find_clip_sources(roots: Sequence[str | Path]) -> list[Path]:
    """Every frame folder and video file under ``roots`` (recursively), sorted.

    A directory counts as a frame folder when it directly holds at least 2 image files.
    Raises VideoError when a root does not exist or nothing usable is found.
    """
    found: set[Path] = set()
    for root in map(Path, roots):
        if not root.exists():
            raise VideoError("training data path does not exist", root)
        if root.is_file():
            if root.suffix.lower() in VIDEO_SUFFIXES:
                found.add(root)
            continue
        for directory in [root, *sorted(p for p in root.rglob("*") if p.is_dir())]:
            images = [p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
            if len(images) >= 2:
                found.add(directory)
            found.update(p for p in directory.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not found:
        raise VideoError("no frame folders or video files found", ", ".join(map(str, roots)))
    return sorted(found)


def _resize_short(frame: np.ndarray, short_side: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (h, w, 3) uint8 with min(h, w) == short_side (area interpolation)."""
    h, w = frame.shape[:2]
    scale = short_side / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def _read_frame_folder(folder: Path) -> list[np.ndarray]:
    """All images of a folder in name order, as RGB arrays."""
    frames = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise VideoError("cannot decode image", path)
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return frames


def _read_video(path: Path) -> list[np.ndarray]:
    """All decodable frames of a video file, as RGB arrays."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError("cannot open video", path)
    frames = []
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if len(frames) < 2:
        raise VideoError("video has fewer than 2 decodable frames", path)
    return frames


def cache_name(source: Path, config: CacheConfig) -> str:
    """Stable cache file name for a source: readable stem + hash of its path and the config."""
    key = f"{source.resolve()}|{config.short_side}|{config.max_frames}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return f"{source.stem}-{digest}.npy"


def build_cache(
    roots: Sequence[str | Path], cache_dir: str | Path, config: CacheConfig = CacheConfig()
) -> list[Path]:
    """Decode and downscale every clip under ``roots`` into ``cache_dir`` (skips cached ones).

    Returns the cache files, one (T, H, W, 3) uint8 .npy per clip, in source order.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    outputs = []
    for source in find_clip_sources(roots):
        target = cache_dir / cache_name(source, config)
        outputs.append(target)
        if target.exists():
            continue
        frames = _read_video(source) if source.is_file() else _read_frame_folder(source)
        step = max(1, math.ceil(len(frames) / config.max_frames))
        clip = np.stack([_resize_short(f, config.short_side) for f in frames[::step]])
        tmp = target.with_name(target.stem + ".tmp.npy")
        np.save(tmp, clip)
        tmp.replace(target)
    return outputs


class ClipBank:
    """Memory-mapped cached clips, each (T, H, W, 3) uint8 RGB."""

    def __init__(self, clips: Sequence[np.ndarray]) -> None:
        usable = [c for c in clips if c.ndim == 4 and c.shape[0] >= 2 and c.shape[-1] == 3]
        if not usable:
            raise VideoError("no usable clips (need (T>=2, H, W, 3) uint8 arrays)")
        self.clips = list(usable)
        lengths = np.array([len(c) for c in self.clips], dtype=np.float64)
        # Sample clips proportionally to sqrt(length): long videos count more, not overwhelmingly.
        self.weights = np.sqrt(lengths) / np.sqrt(lengths).sum()

    @classmethod
    def from_files(cls, files: Sequence[str | Path]) -> ClipBank:
        """Open cache files as read-only memory maps."""
        return cls([np.load(f, mmap_mode="r") for f in files])

    def __len__(self) -> int:
        return len(self.clips)


def _random_box(
    rng: np.random.Generator, height: int, width: int, config: SamplerConfig
) -> tuple[int, int, int, int]:
    """A random crop (top, left, h, w) inside (height, width), RandomResizedCrop style."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*config.scale)
        ratio = math.exp(rng.uniform(math.log(config.ratio[0]), math.log(config.ratio[1])))
        w = round(math.sqrt(target * ratio))
        h = round(math.sqrt(target / ratio))
        if 0 < w <= width and 0 < h <= height:
            return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def _synthetic_clip(
    rng: np.random.Generator, frame: np.ndarray, config: SamplerConfig
) -> np.ndarray:
    """(num_frames, S, S, 3) uint8 from one still (H, W, 3) by accumulated random affine warps."""
    size = config.crop_size
    top, left, h, w = _random_box(rng, frame.shape[0], frame.shape[1], config)
    base = cv2.resize(frame[top : top + h, left : left + w], (size, size), cv2.INTER_AREA)
    out = [base]
    matrix = np.eye(3)
    for _ in range(config.num_frames - 1):
        angle = rng.uniform(-8, 8)
        scale = math.exp(rng.uniform(-0.08, 0.08))
        step = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
        step[:, 2] += rng.uniform(-0.06, 0.06, size=2) * size
        matrix = np.vstack([step, [0, 0, 1]]) @ matrix
        warped = cv2.warpAffine(base, matrix[:2], (size, size), borderMode=cv2.BORDER_REFLECT)
        out.append(warped)
    return np.stack(out)


def sample_clip(rng: np.random.Generator, bank: ClipBank, config: SamplerConfig) -> np.ndarray:
    """One random training clip: (num_frames, crop_size, crop_size, 3) uint8 RGB."""
    clip = bank.clips[int(rng.choice(len(bank), p=bank.weights))]
    if rng.random() < config.synthetic_prob:
        frames = _synthetic_clip(rng, np.asarray(clip[int(rng.integers(len(clip)))]), config)
    else:
        span_gap = min(config.max_gap, max(1, (len(clip) - 1) // max(1, config.num_frames - 1)))
        gap = int(rng.integers(1, span_gap + 1))
        span = gap * (config.num_frames - 1)
        start = int(rng.integers(0, max(1, len(clip) - span)))
        index = np.minimum(start + gap * np.arange(config.num_frames), len(clip) - 1)
        top, left, h, w = _random_box(rng, clip.shape[1], clip.shape[2], config)
        size = (config.crop_size, config.crop_size)
        frames = np.stack(
            [
                cv2.resize(
                    np.asarray(clip[i, top : top + h, left : left + w]), size, cv2.INTER_AREA
                )
                for i in index
            ]
        )
    if rng.random() < config.reverse_prob:
        frames = frames[::-1]
    if rng.random() < config.flip_prob:
        frames = frames[:, :, ::-1]
    return np.ascontiguousarray(frames)


def sample_batch(
    rng: np.random.Generator, bank: ClipBank, config: SamplerConfig, batch_size: int
) -> np.ndarray:
    """(batch_size, num_frames, crop_size, crop_size, 3) uint8 RGB clips."""
    return np.stack([sample_clip(rng, bank, config) for _ in range(batch_size)])


def iter_pixels(bank: ClipBank, rng: np.random.Generator, count: int) -> Iterator[np.ndarray]:
    """``count`` random (H, W, 3) uint8 frames of the bank (for fitting colour clusters)."""
    for _ in range(count):
        clip = bank.clips[int(rng.integers(len(bank)))]
        yield np.asarray(clip[int(rng.integers(len(clip)))])
