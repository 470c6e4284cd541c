"""Write the ONNX graphs of a checkpoint next to it, to ship: ``NAME.onnx`` (float32) and, with
``--int8 FOLDER``, ``NAME.int8.onnx`` quantised with calibration frames from FOLDER.

    .venv/bin/python scripts/export_onnx.py resources/models/trackpaint_default.pt \\
        --int8 ../shared/data/unlabeled/frames

The encoder uses a shipped graph only when the weights hash recorded in it matches the
checkpoint (``tracker_core.runtime``); otherwise it exports a float32 graph into the user's
cache. Quantisation (ONNX Runtime static QDQ, per-channel int8 weights with 7-bit range so that
CPUs without VNNI compute the same values, uint8 activations) is calibrated on every 97th frame
of FOLDER (16 frames; train only on unlabeled data).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

# first: importing tracker_core sets GOMP_SPINCOUNT before torch loads, as in the app and CLI
import tracker_core  # noqa: F401

# isort: split
import torch

from tracker_core.encoder import EncoderGraph, lab_image
from tracker_core.nets import load_net
from tracker_core.runtime import HASH_KEY, export_onnx, weights_hash


def calibration_frames(folder: Path, count: int = 16, every: int = 97) -> list[np.ndarray]:
    """(1, H, W, 3) float32 Lab inputs from every ``every``-th JPEG under ``folder``."""
    files = sorted(folder.rglob("*.jpg"))[::every][:count]
    if not files:
        raise SystemExit(f"{folder}: no .jpg frames for calibration")
    return [lab_image(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB))[None] for f in files]


def quantise(fp32: Path, out: Path, frames: list[np.ndarray], key: str) -> None:
    """Static int8 quantisation of an exported encoder graph; ``key`` goes into its metadata."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(frames)

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self._items, None)
            return None if item is None else {"lab": item}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre))
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
        )
    model = onnx.load(str(out))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = HASH_KEY, key
    onnx.save(model, str(out))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--int8", type=Path, default=None, help="calibration frame folder")
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        net, _ = load_net(path)
        key = weights_hash(net)
        out = path.with_suffix(".onnx")
        out.write_bytes(export_onnx(EncoderGraph(net).eval(), torch.zeros(1, 64, 64, 3), key))
        print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)")
        if args.int8 is not None:
            q8 = path.with_suffix(".int8.onnx")
            quantise(out, q8, calibration_frames(args.int8), key)
            print(f"wrote {q8} ({q8.stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
