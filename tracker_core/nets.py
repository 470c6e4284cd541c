"""Embedding networks for label propagation, their input normalisation and checkpoints.

The network maps a frame to a dense embedding map at a fixed output stride; the propagator
L2-normalises the features and copies labels through a softmax affinity (see
``tracker_core/propagate.py``). Everything here is pure torch (no torchvision) and CPU-friendly.

Checkpoint format (``save_net`` / ``load_net``): ``torch.save`` of a plain dict
``{"arch": str, "arch_config": dict, "state_dict": dict, "meta": dict}``; the network is rebuilt
from ``arch`` + ``arch_config``, never unpickled.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tracker_core.errors import ModelError

CHECKPOINT_KEYS = ("arch", "arch_config", "state_dict", "meta")

# sRGB (D65) -> XYZ, and the D65 white point, as used by skimage/OpenCV.
_RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
_WHITE_D65 = (0.950456, 1.0, 1.088754)
_AB_SCALE = 110.0  # |a|, |b| of real sRGB colours stay below ~110


def _srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Undo the sRGB transfer curve; any shape, values in [0, 1]."""
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)


def _linear_to_lab(linear: torch.Tensor) -> torch.Tensor:
    """Linear RGB (B, H, W, 3) -> Lab (B, 3, H, W): L in [0, 100], a and b roughly in ±110."""
    matrix = torch.tensor(_RGB_TO_XYZ, dtype=linear.dtype, device=linear.device)
    white = torch.tensor(_WHITE_D65, dtype=linear.dtype, device=linear.device)
    xyz = linear @ (matrix / white[:, None]).T
    eps = 216.0 / 24389.0
    kappa = 24389.0 / 27.0
    f = torch.where(xyz > eps, xyz.clamp_min(1e-8) ** (1.0 / 3.0), (kappa * xyz + 16.0) / 116.0)
    lightness = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return torch.stack([lightness, a, b], dim=1)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """Convert sRGB in [0, 1] to CIE Lab (D65).

    Args:
        rgb: (B, 3, H, W) float tensor in [0, 1].
    Returns:
        (B, 3, H, W) float tensor: L in [0, 100], a and b roughly in [-110, 110].
    """
    if rgb.ndim != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb_to_lab expects (B, 3, H, W), got {tuple(rgb.shape)}")
    return _linear_to_lab(_srgb_to_linear(rgb).permute(0, 2, 3, 1))


def lab_to_input(lab: torch.Tensor) -> torch.Tensor:
    """Scale Lab to the network's input range.

    Args:
        lab: (B, 3, H, W) Lab as returned by :func:`rgb_to_lab`.
    Returns:
        (B, 3, H, W): L mapped to [-1, 1], a and b divided by 110 (~[-1, 1]).
    """
    scale = torch.tensor([50.0, _AB_SCALE, _AB_SCALE], dtype=lab.dtype, device=lab.device)
    shift = torch.tensor([50.0, 0.0, 0.0], dtype=lab.dtype, device=lab.device)
    return (lab - shift.view(1, 3, 1, 1)) / scale.view(1, 3, 1, 1)


def frames_to_input(frames: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Turn RGB frames into the network input used in training and at test time.

    Args:
        frames: (B, H, W, 3) uint8 RGB (numpy array or tensor, any device).
    Returns:
        (B, 3, H, W) float32 scaled Lab (see :func:`lab_to_input`) on the input's device.
    """
    tensor = torch.from_numpy(np.array(frames)) if isinstance(frames, np.ndarray) else frames
    if tensor.ndim != 4 or tensor.shape[-1] != 3:
        raise ValueError(f"frames_to_input expects (B, H, W, 3), got {tuple(tensor.shape)}")
    if tensor.dtype != torch.uint8:
        raise ValueError(f"frames_to_input expects uint8 frames, got {tensor.dtype}")
    # A 256-entry table replaces the per-pixel sRGB curve (exact for uint8; ~30% faster).
    levels = torch.arange(256, dtype=torch.float32, device=tensor.device) / 255.0
    linear = _srgb_to_linear(levels)[tensor.int()]  # (B, H, W, 3)
    return lab_to_input(_linear_to_lab(linear))


@dataclass(frozen=True)
class NetConfig:
    """Architecture of :class:`TrackNet`.

    Each stage starts with a stride-2 3x3 conv to ``widths[i]`` followed by ``blocks[i]``
    residual blocks, so the output stride is ``2 ** len(widths)``.
    ``block`` is ``"basic"`` (ResNet basic block) or ``"mb"`` (inverted residual with a
    ``kernel``x``kernel`` depthwise conv and ``expand``x expansion). ``dim`` is the output
    channel count (a final 1x1 projection).
    """

    widths: tuple[int, ...] = (24, 48, 96)
    blocks: tuple[int, ...] = (0, 0, 3)
    block: str = "basic"
    expand: int = 2
    kernel: int = 3
    dim: int = 64

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.blocks) or not self.widths:
            raise ValueError("NetConfig: widths and blocks must be non-empty and equal length")
        if self.block not in ("basic", "mb"):
            raise ValueError(f"NetConfig: unknown block {self.block!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetConfig:
        """Rebuild from :meth:`to_dict` output (lists become tuples)."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"NetConfig: unknown keys {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm; (B, cin, H, W) -> (B, cout, ceil(H/stride), ceil(W/stride))."""
    conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """ResNet basic block at constant width: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = _conv_bn(channels, channels, 3)
        self.conv2 = _conv_bn(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class InvertedResidual(nn.Module):
    """MobileNetV2 block at constant width: 1x1 expand, depthwise kxk, 1x1 project, residual."""

    def __init__(self, channels: int, expand: int, kernel: int) -> None:
        super().__init__()
        hidden = channels * expand
        self.expand = _conv_bn(channels, hidden, 1)
        self.depthwise = _conv_bn(hidden, hidden, kernel, groups=hidden)
        self.project = _conv_bn(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        h = F.relu(self.expand(x))
        h = F.relu(self.depthwise(h))
        return x + self.project(h)


class TrackNet(nn.Module):
    """Light CPU encoder: stride-2 conv stages with residual blocks, then a 1x1 projection.

    forward: (B, 3, H, W) scaled Lab -> (B, dim, ceil(H/stride), ceil(W/stride)), unnormalised.
    """

    arch = "tracknet"

    def __init__(self, config: NetConfig = NetConfig()) -> None:
        super().__init__()
        self.config = config
        self.stride = 2 ** len(config.widths)
        self.dim = config.dim
        layers: list[nn.Module] = []
        cin = 3
        for width, count in zip(config.widths, config.blocks):
            layers += [_conv_bn(cin, width, 3, stride=2), nn.ReLU(inplace=True)]
            for _ in range(count):
                if config.block == "basic":
                    layers.append(BasicBlock(width))
                else:
                    layers.append(InvertedResidual(width, config.expand, config.kernel))
            cin = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, config.dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, dim, ceil(H/stride), ceil(W/stride))."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"TrackNet expects (B, 3, H, W), got {tuple(x.shape)}")
        return self.head(self.body(x))


ARCHITECTURES: dict[str, type[TrackNet]] = {TrackNet.arch: TrackNet}


def build_net(arch: str, arch_config: dict[str, Any]) -> TrackNet:
    """Instantiate a registered architecture from its JSON config."""
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown architecture {arch!r} (known: {sorted(ARCHITECTURES)})")
    return ARCHITECTURES[arch](NetConfig.from_dict(arch_config))


def output_size(height: int, width: int, stride: int) -> tuple[int, int]:
    """Feature-grid size for an input of (height, width): (ceil(H/stride), ceil(W/stride))."""
    return math.ceil(height / stride), math.ceil(width / stride)


def save_net(path: str | Path, net: TrackNet, meta: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temp file + rename); tensors are saved on the CPU."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    payload = {
        "arch": net.arch,
        "arch_config": net.config.to_dict(),
        "state_dict": state,
        "meta": dict(meta),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_net(path: str | Path, map_location: str = "cpu") -> tuple[TrackNet, dict[str, Any]]:
    """Rebuild a network from a :func:`save_net` checkpoint; returns (net in eval mode, meta).

    Raises ModelError when the file is missing, unreadable or not a Trackpaint checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError("checkpoint not found", path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise ModelError(f"cannot read checkpoint ({type(exc).__name__})", path) from exc
    if not isinstance(payload, dict) or any(k not in payload for k in CHECKPOINT_KEYS):
        raise ModelError(f"not a Trackpaint checkpoint (needs keys {CHECKPOINT_KEYS})", path)
    try:
        net = build_net(payload["arch"], payload["arch_config"])
        # assign: the loaded tensors become the parameters instead of being copied into them.
        # Copying large tensors runs an OpenMP parallel region on the calling thread, and in the
        # GUI that is the GUI thread: its idle OpenMP team then makes libgomp throttle the
        # propagation worker's spin-waiting (more OpenMP threads than CPUs), ~1.3x per frame.
        net.load_state_dict(payload["state_dict"], assign=True)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise ModelError(f"checkpoint does not match its architecture: {exc}", path) from exc
    net.to(map_location)
    net.eval()
    return net, dict(payload["meta"])
