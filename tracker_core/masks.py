"""Object-id masks on disk: the DAVIS palette, loading user masks, and indexed PNG read/write.

A mask is an ``(H, W) uint8`` array of object ids (0 = background, 1..255 = object id). On disk a
mask is an indexed ('P' mode) PNG whose pixel values are the ids and whose palette is the DAVIS
palette, so the file is both exact and viewable.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from tracker_core.durable import fsync_dir

from .errors import ExportError, MaskError


def davis_palette() -> np.ndarray:
    """The standard DAVIS (PASCAL VOC) colour map.

    Entry ``i`` spreads the bits of ``i`` over the three channels, most significant bit first:
    bit 0 -> red, bit 1 -> green, bit 2 -> blue, then the next three bits one place lower, and so
    on. Index 1 = (128, 0, 0), 2 = (0, 128, 0), 3 = (128, 128, 0), 255 = (224, 224, 192).

    Returns:
        ``(256, 3) uint8`` RGB colours; a fresh array on every call.
    """
    ids = np.arange(256, dtype=np.int64)
    palette = np.zeros((256, 3), dtype=np.int64)
    for j in range(8):
        for channel in range(3):
            bit = (ids >> (3 * j + channel)) & 1
            palette[:, channel] |= bit << (7 - j)
    return palette.astype(np.uint8)


def validate_mask(mask: np.ndarray, expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Check an id mask and convert it to ``(H, W) uint8``.

    Accepted: ``bool`` (-> 0/1), any integer dtype with values in 0..255, floats whose values are
    all integral and in 0..255, and ``(H, W, 1)`` arrays (squeezed).

    Args:
        mask: ``(H, W)`` or ``(H, W, 1)`` array-like of object ids.
        expected_hw: ``(H, W)`` the mask must have, or None to accept any size.

    Returns:
        ``(H, W) uint8`` ids; the input itself when it is already a C-contiguous 2-D uint8 array.

    Raises:
        MaskError: wrong shape or size, unsupported dtype, non-integral or out-of-range ids.
    """
    try:
        arr = np.asarray(mask)
    except (TypeError, ValueError) as exc:
        raise MaskError(f"mask is not an array: {exc}") from exc
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise MaskError(f"mask must be a 2-D (H, W) array of ids, got shape {arr.shape}")
    if arr.size == 0:
        raise MaskError(f"mask is empty (shape {arr.shape})")
    if expected_hw is not None and tuple(arr.shape) != tuple(expected_hw):
        got_h, got_w = arr.shape
        exp_h, exp_w = expected_hw
        raise MaskError(f"mask size mismatch: got {got_h}x{got_w}, expected {exp_h}x{exp_w}")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise MaskError("mask contains NaN or infinite values")
        if not (arr == np.round(arr)).all():
            raise MaskError(f"mask of dtype {arr.dtype} has non-integer values; ids must be whole")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise MaskError(f"unsupported mask dtype {arr.dtype}; expected integer ids")
    low, high = arr.min(), arr.max()
    if low < 0 or high > 255:
        raise MaskError(f"object ids must be in 0..255, got values from {low} to {high}")
    return arr.astype(np.uint8)


def _colours_to_ids(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map DAVIS palette colours to their indices.

    Args:
        rgb: ``(H, W, 3) uint8`` colours.

    Returns:
        ``(ids, known)``: ``(H, W) uint8`` palette indices (0 where unknown) and ``(H, W) bool``,
        True where the colour is a DAVIS palette colour.
    """
    palette = davis_palette().astype(np.int64)
    palette_keys = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    order = np.argsort(palette_keys)
    sorted_keys = palette_keys[order]
    pixels = rgb.astype(np.int64)
    keys = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    pos = np.clip(np.searchsorted(sorted_keys, keys), 0, sorted_keys.size - 1)
    known = sorted_keys[pos] == keys
    ids = np.where(known, order[pos], 0).astype(np.uint8)
    return ids, known


def _grey_to_ids(grey: np.ndarray, white: int = 255) -> np.ndarray:
    """Grey values are ids, except a binary black/white mask, which becomes {0, 1}.

    Black/white means the only values are 0 and ``white`` (255 for 8-bit images, 65535 for
    16-bit ones), with white present. A 16-bit mask holding 0 and 255 keeps id 255.

    Args:
        grey: ``(H, W)`` integer grey values.

    Returns:
        ``(H, W)`` ids (range checked later by :func:`validate_mask`).
    """
    if white in grey and np.isin(grey, (0, white)).all():
        return (grey == white).astype(np.uint8)
    return grey


def _image_to_ids(image: Image.Image) -> np.ndarray:
    """Convert a decoded PIL image to an id array (not yet validated).

    Args:
        image: a loaded PIL image.

    Returns:
        ``(H, W)`` ids of any integer or float dtype.

    Raises:
        MaskError: the pixel format cannot be read as ids (message without the path).
    """
    mode = image.mode
    if mode == "P":
        return np.asarray(image)
    if mode == "1":
        return np.asarray(image).astype(np.uint8)
    if mode in ("L", "LA"):
        return _grey_to_ids(np.asarray(image.getchannel("L")))
    if mode == "I" or mode.startswith("I;16"):
        return _grey_to_ids(np.asarray(image).astype(np.int64), white=65535)
    if mode == "F":
        return np.asarray(image)
    if mode in ("RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"))
        ids, known = _colours_to_ids(rgb)
        if known.all():
            return ids
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return _grey_to_ids(rgb[..., 0])
        row, col = np.argwhere(~known)[0]
        colour = tuple(int(c) for c in rgb[row, col])
        raise MaskError(
            f"RGB mask colour {colour} at row {row}, column {col} is not a DAVIS palette "
            "colour; save masks as indexed or greyscale PNGs"
        )
    raise MaskError(f"unsupported image mode {mode!r} for a mask")


def _open_image(path: Path) -> Image.Image:
    """Open and fully decode an image file.

    Raises:
        MaskError: missing, unreadable, or corrupt file (message names the path).
    """
    if not path.exists():
        raise MaskError("mask file does not exist", path)
    if not path.is_file():
        raise MaskError("mask path is not a file", path)
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, SyntaxError) as exc:
        raise MaskError("not an image file, or the image is corrupt", path) from exc
    except OSError as exc:
        raise MaskError(f"cannot read mask image: {exc.strerror or exc}", path) from exc
    except (ValueError, Image.DecompressionBombError) as exc:
        raise MaskError(f"cannot decode mask image: {exc}", path) from exc
    return image


def load_mask(path: str | Path, expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """Load a user-supplied mask image as object ids.

    Indexed (palette) PNG -> its indices; greyscale -> its values; a binary black/white mask
    (0/255) -> {0, 1}; RGB whose colours are all DAVIS palette colours -> the palette indices;
    RGB with only grey colours -> as greyscale. JPEG is refused (lossy compression changes ids).

    Args:
        path: image file (PNG, BMP, TIFF, ...).
        expected_hw: ``(H, W)`` the mask must have (the video frame size), or None.

    Returns:
        ``(H, W) uint8`` object ids.

    Raises:
        MaskError: missing/corrupt file, unsupported colours or mode, wrong size, ids > 255.
    """
    path = Path(path)
    image = _open_image(path)
    if image.format in ("JPEG", "MPO"):
        raise MaskError("JPEG masks are lossy and change object ids; use PNG", path)
    try:
        return validate_mask(_image_to_ids(image), expected_hw)
    except MaskError as exc:
        raise MaskError(str(exc), path) from exc


def read_indexed_png(path: str | Path) -> np.ndarray:
    """Read an indexed ('P' mode) PNG's palette indices, ignoring its palette colours.

    Args:
        path: a palette PNG such as one written by :func:`write_indexed_png` or a DAVIS
            multi-object annotation.

    Returns:
        ``(H, W) uint8`` indices.

    Raises:
        MaskError: missing/corrupt file, or not an indexed PNG (use :func:`load_mask` for others).
    """
    path = Path(path)
    image = _open_image(path)
    if image.format != "PNG" or image.mode != "P":
        raise MaskError(
            f"not an indexed PNG (format {image.format}, mode {image.mode}); use load_mask", path
        )
    return np.array(image, dtype=np.uint8)


def _remove_quietly(path: Path) -> None:
    """Delete ``path`` if it exists, ignoring errors (cleanup after a failed write)."""
    try:
        path.unlink()
    except OSError:
        pass


def write_indexed_png(path: str | Path, mask: np.ndarray) -> None:
    """Write ids as an indexed ('P' mode) PNG with the DAVIS palette, atomically.

    The PNG is written to a temporary file in the same folder, flushed and fsync'ed, then renamed
    over ``path``; a failure leaves any existing ``path`` untouched and no temporary file behind.
    The folder must exist.

    Args:
        path: destination ``.png`` file.
        mask: ``(H, W)`` ids (see :func:`validate_mask` for accepted dtypes).

    Raises:
        MaskError: the mask is invalid.
        ExportError: the file cannot be written (missing or unwritable folder, disk full, ...).
    """
    path = Path(path)
    ids = validate_mask(mask)
    height, width = ids.shape
    image = Image.frombytes("P", (width, height), ids.tobytes())
    image.putpalette(davis_palette().tobytes(), rawmode="RGB")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as exc:
        raise ExportError(f"cannot create file: {exc.strerror or exc}", path) from exc
    try:
        with os.fdopen(fd, "wb") as stream:
            image.save(stream, format="PNG")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        _remove_quietly(tmp)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ExportError(f"cannot write mask PNG: {reason}", path) from exc
    fsync_dir(path.parent)
