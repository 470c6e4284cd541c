"""Frame encoders: map an RGB frame to a feature grid the propagator compares.

The propagator scores a reference cell ``i`` against a query cell ``j`` by the negative squared
distance ``-|f_i - f_j|^2 / 2`` (identical to the cosine similarity for unit-norm features, up to a
constant). Learned features are L2-normalised per cell; the weight-free Lab encoder returns scaled
Lab colours, and a fused encoder concatenates both (distance = learned + weight^2 * colour).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tracker_core.errors import ModelError

DEFAULT_MODEL = (
    Path(__file__).resolve().parent.parent / "resources" / "models" / "trackpaint_default.pt"
)


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns a frame into a feature grid."""

    name: str
    stride: int
    dim: int

    def encode(self, frame: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (dim, ceil(H/stride), ceil(W/stride)) float32."""
        ...


def grid_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """Feature-grid size for a frame: ``(ceil(H/stride), ceil(W/stride))``."""
    return math.ceil(height / stride), math.ceil(width / stride)


def _check_frame(frame: np.ndarray) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.shape} {frame.dtype}")


def lab_image(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) float32 CIE Lab (D65): L in [0, 100], a/b ~ ±110."""
    _check_frame(frame)
    return cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def pool_lab(lab: np.ndarray, stride: int) -> np.ndarray:
    """(H, W, 3) Lab -> (3, ceil(H/stride), ceil(W/stride)) area-averaged, scaled by 1/100."""
    h, w = grid_size(lab.shape[0], lab.shape[1], stride)
    small = cv2.resize(lab, (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small.transpose(2, 0, 1) / 100.0, dtype=np.float32)


def lab_grid(frame: np.ndarray, stride: int) -> np.ndarray:
    """Area-averaged CIE Lab colour per grid cell, scaled to roughly unit range.

    (H, W, 3) uint8 RGB -> (3, ceil(H/stride), ceil(W/stride)) float32 with L/100, a/100, b/100.
    """
    return pool_lab(lab_image(frame), stride)


@dataclass(frozen=True)
class LabEncoder:
    """Weight-free encoder: CIE Lab colour pooled to the grid, scaled by ``weight``.

    ``weight`` sets the affinity's sharpness together with the propagator's temperature.
    """

    stride: int = 8
    weight: float = 8.0
    name: str = "lab"
    dim: int = 3

    def encode(self, frame: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (3, h, w) float32 scaled Lab."""
        return torch.from_numpy(lab_grid(frame, self.stride) * self.weight)


class EncoderGraph(nn.Module):
    """The network with its input scaling and output normalisation, as one exportable graph.

    forward: (1, H, W, 3) float32 CIE Lab (``lab_image``) -> (1, dim, ceil(H/s), ceil(W/s))
    per-cell L2-normalised features.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("shift", torch.tensor([50.0, 0.0, 0.0]), persistent=False)
        self.register_buffer("scale", torch.tensor([50.0, 110.0, 110.0]), persistent=False)

    def forward(self, lab: torch.Tensor) -> torch.Tensor:
        """(1, H, W, 3) Lab -> (1, dim, h, w) unit features (``nets.lab_to_input`` scaling)."""
        x = ((lab - self.shift) / self.scale).permute(0, 3, 1, 2)
        return F.normalize(self.net(x), dim=1)


class LearnedEncoder:
    """A self-supervised network from ``tracker_core.nets`` (optionally fused with Lab colour).

    Output: (dim, h, w) with the learned part L2-normalised per cell; when ``lab_weight > 0`` the
    scaled Lab colour at the same grid is appended (``dim = net.dim + 3``).

    ``device``, ``precision`` and ``runtime`` default to "auto": chosen from the machine's
    capabilities by :func:`tracker_core.runtime.choose_placement` (GPU when present; on a CPU
    bf16 only with native bf16, else ONNX Runtime: the shipped int8 graph when the checkpoint
    has one, else fp32; else torch fp32). ``source`` is the checkpoint the weights came from
    (for a shipped or cached ONNX graph). The ONNX session is made on the first ``encode``.
    """

    def __init__(
        self,
        net: nn.Module,
        name: str = "learned",
        lab_weight: float = 0.0,
        device: str = "auto",
        precision: str = "auto",
        runtime: str = "auto",
        source: Path | None = None,
    ) -> None:
        from tracker_core.runtime import Placement, choose_placement, int8_graph

        self.placement = choose_placement(device, precision, runtime)
        if precision == "auto" and self.placement.runtime == "onnx" and int8_graph(source):
            self.placement = Placement("onnx", "cpu", "int8")  # 2x faster than fp32 on CPUs
        self.device = self.placement.device
        self.precision = self.placement.precision
        self.runtime = self.placement.runtime
        self.net = net.eval().to(self.device)
        self.source = source
        self.stride = int(net.stride)
        self.lab_weight = float(lab_weight)
        self.dim = int(net.dim) + (3 if self.lab_weight > 0 else 0)
        self.name = name
        self._graph = EncoderGraph(self.net).eval().to(self.device)
        if self.device == "cpu" and self.runtime == "torch" and self.precision == "fp32":
            self._graph.to(memory_format=torch.channels_last)  # 26 vs 35 ms eager at 480p
        self._sessions: dict[int, Any] = {}  # ONNX Runtime sessions by intra-op thread count

    def _onnx_session(self, lab: np.ndarray) -> Any:
        """The ONNX Runtime session for torch's current thread count (made on first use, so a
        propagation that encodes ahead on half the threads gets a session of its own); None,
        and torch from then on, when a graph is needed but the ``onnx`` exporter is missing."""
        from tracker_core.runtime import int8_session, onnx_session

        threads = torch.get_num_threads()
        session = self._sessions.get(threads)
        if session is None and self.precision == "int8":
            try:
                session = int8_session(self.net, self.source, threads)
            except LookupError:
                self.precision = "fp32"  # e.g. adapted weights: no quantised graph for them
        if session is None:
            example = torch.from_numpy(lab[:, :64, :64].copy())
            try:
                session = onnx_session(self._graph, self.net, example, self.source, threads)
            except ImportError:
                self.runtime = "torch"
                self._graph.to(memory_format=torch.channels_last)
                return None
        self._sessions[threads] = session
        return session

    @torch.inference_mode()
    def features(self, lab: np.ndarray) -> torch.Tensor:
        """(H, W, 3) float32 Lab -> (net.dim, ceil(H/stride), ceil(W/stride)) unit features."""
        x = np.ascontiguousarray(lab[None])
        session = self._onnx_session(x) if self.runtime == "onnx" else None
        if session is not None:
            from tracker_core.runtime import run_session

            return torch.from_numpy(run_session(session, x)[0])
        t = torch.from_numpy(x).to(self.device)
        with torch.autocast(t.device.type, torch.bfloat16, enabled=self.precision == "bf16"):
            return self._graph(t)[0].float().cpu()

    @torch.inference_mode()
    def encode(self, frame: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 RGB -> (dim, ceil(H/stride), ceil(W/stride)) float32.

        Lab is computed once with OpenCV (4 ms vs ~95 ms for the torch conversion used in
        training; they agree to 0.004 in input units) and serves both the network input
        (scaled as ``nets.lab_to_input`` does in training) and the colour-fusion grid.
        """
        lab = lab_image(frame)
        h, w = grid_size(frame.shape[0], frame.shape[1], self.stride)
        feats = self.features(lab)
        if feats.shape[1:] != (h, w):
            feats = F.interpolate(feats[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            feats = F.normalize(feats, dim=0)
        if self.lab_weight > 0:
            colour = torch.from_numpy(pool_lab(lab, self.stride) * self.lab_weight)
            feats = torch.cat([feats, colour], dim=0)
        return feats


def load_encoder(
    path: str | Path | None = None,
    lab_weight: float | None = None,
    *,
    device: str = "auto",
    precision: str = "auto",
    runtime: str = "auto",
) -> Encoder:
    """Load an encoder by checkpoint path, the name ``"lab"``, or ``None`` for the default.

    ``None`` means the bundled model in ``resources/models`` when present, else the Lab encoder.
    ``lab_weight`` overrides the checkpoint's recommended colour-fusion weight; ``device``,
    ``precision`` and ``runtime`` are passed to :class:`LearnedEncoder`.
    """
    if path is not None and str(path) == "lab":
        return LabEncoder()
    if path is None:
        if not DEFAULT_MODEL.exists():
            return LabEncoder()
        path = DEFAULT_MODEL
    path = Path(path)
    if not path.is_file():
        raise ModelError("model file not found", path)
    try:
        from tracker_core.nets import load_net

        net, meta = load_net(path, map_location="cpu")
    except ModelError:
        raise
    except Exception as exc:  # a broken checkpoint surfaces as many exception types
        raise ModelError(f"cannot load model ({type(exc).__name__}: {exc})", path) from exc
    weight = float(meta.get("lab_weight", 0.0)) if lab_weight is None else lab_weight
    return LearnedEncoder(
        net,
        name=path.stem,
        lab_weight=weight,
        device=device,
        precision=precision,
        runtime=runtime,
        source=path,
    )
