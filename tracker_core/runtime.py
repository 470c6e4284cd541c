"""Where and how the encoder network runs: device, CPU precision, and ONNX Runtime sessions.

Decisions come from what the machine reports, never from timing code paths on the user's
frames: a GPU (CUDA, then Apple MPS) when torch sees one; on a CPU, bfloat16 autocast only where
the CPU has native bf16 instructions (AVX-512 BF16 / AMX: 2x faster there, emulated and ~50x
slower elsewhere), else float32 through ONNX Runtime when it is installed (about 2x faster than
torch eager on CPUs), else torch float32 in channels-last layout.

ONNX graphs are exported once per set of weights and kept in the user's cache folder under the
weights' hash (``TRACKPAINT_CACHE`` overrides the folder); a graph shipped next to a checkpoint
(``<name>.onnx``) is used when its recorded hash matches. Weights that live only in memory (an
adapted model) are exported to memory.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import sys
import tempfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ONNX_OPSET = 17
GRAPH_VERSION = "1"  # bump when the exported graph (inputs, outputs, wrapper) changes
HASH_KEY = "trackpaint_weights_sha256"


@dataclass(frozen=True)
class Placement:
    """Where an encoder runs: ``runtime`` "onnx" or "torch", ``device`` ("cpu", "cuda", "mps"),
    ``precision`` "fp32" or "bf16" (bf16 = torch autocast on a CPU with native bf16)."""

    runtime: str
    device: str
    precision: str


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """CPU feature flags as the OS reports them (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX-512 BF16 or AMX-BF16)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def cpu_description() -> str:
    """``model name`` of the CPU and whether it has avx512_bf16, for benchmark headers."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    name = name or (os.environ.get("PROCESSOR_IDENTIFIER") or "unknown CPU")
    bf16 = "avx512_bf16" if "avx512_bf16" in cpu_flags() else "no avx512_bf16"
    return f"{name} | {bf16} | torch ISA {torch.backends.cpu.get_cpu_capability()}"


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime (and the exporter's ``onnx`` package) can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def auto_device() -> str:
    """ "cuda" or "mps" when torch sees such a GPU, else "cpu"."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def choose_placement(
    device: str = "auto", precision: str = "auto", runtime: str = "auto"
) -> Placement:
    """Resolve "auto" choices from the machine's capabilities (see the module docstring).

    ``precision="fp32"`` never uses bf16; ``runtime="torch"`` never uses ONNX Runtime.
    """
    if device not in ("auto", "cpu", "cuda", "mps"):
        raise ValueError(f"device must be auto, cpu, cuda or mps, got {device!r}")
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be auto, fp32 or bf16, got {precision!r}")
    if runtime not in ("auto", "onnx", "torch"):
        raise ValueError(f"runtime must be auto, onnx or torch, got {runtime!r}")
    dev = auto_device() if device == "auto" else device
    if dev != "cpu":
        return Placement("torch", dev, "fp32")
    if precision == "bf16" or (precision == "auto" and runtime != "onnx" and native_bf16()):
        return Placement("torch", "cpu", "bf16")
    if runtime != "torch" and onnxruntime_available():
        return Placement("onnx", "cpu", "fp32")
    return Placement("torch", "cpu", "fp32")


def cache_dir() -> Path:
    """The per-user cache folder for exported graphs (``TRACKPAINT_CACHE`` overrides)."""
    override = os.environ.get("TRACKPAINT_CACHE")
    if override:
        return Path(override)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
        return base / "trackpaint" / "cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "trackpaint"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trackpaint"


def weights_hash(net: nn.Module) -> str:
    """sha256 over the architecture, the weights and the graph version (hex)."""
    digest = hashlib.sha256(f"{GRAPH_VERSION}|{ONNX_OPSET}|{type(net).__name__}".encode())
    config = getattr(net, "config", None)
    to_dict = getattr(config, "to_dict", None)
    if to_dict is not None:
        digest.update(json.dumps(to_dict(), sort_keys=True).encode())
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def export_onnx(graph: nn.Module, example: torch.Tensor, key: str) -> bytes:
    """The ONNX bytes of ``graph`` (dynamic height/width), with ``key`` in its metadata."""
    import onnx

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and exporter deprecation chatter
        torch.onnx.export(
            graph,
            (example,),
            buf,
            input_names=["lab"],
            output_names=["features"],
            dynamic_axes={"lab": {1: "height", 2: "width"}, "features": {2: "rows", 3: "cols"}},
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    model = onnx.load_from_string(buf.getvalue())
    entry = model.metadata_props.add()
    entry.key, entry.value = HASH_KEY, key
    return model.SerializeToString()


def _recorded_hash(path: Path) -> str | None:
    """The weights hash stored in an ONNX file's metadata, or None if unreadable."""
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # a broken or foreign file is simply not used
        return None
    return next((p.value for p in model.metadata_props if p.key == HASH_KEY), None)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def onnx_model(
    graph: nn.Module, weights: nn.Module, example: torch.Tensor, source: Path | None
) -> str | bytes:
    """A path (or, for in-memory weights, the bytes) of the ONNX graph for these weights.

    ``source`` is the checkpoint file the weights came from: a matching ``source.onnx`` beside
    it is used as shipped; otherwise the graph is exported once into :func:`cache_dir` (a
    temporary folder when that is not writable).
    """
    key = weights_hash(weights)
    if source is None:
        return export_onnx(graph, example, key)
    shipped = source.with_suffix(".onnx")
    if shipped.is_file() and _recorded_hash(shipped) == key:
        return str(shipped)
    for folder in (cache_dir() / "onnx", Path(tempfile.gettempdir()) / "trackpaint-onnx"):
        cached = folder / f"{key}.onnx"
        if cached.is_file():
            return str(cached)
        try:
            _write_atomic(cached, export_onnx(graph, example, key))
        except OSError:
            continue
        return str(cached)
    return export_onnx(graph, example, key)


def ort_session(model: str | bytes, threads: int) -> Any:
    """An ONNX Runtime CPU session using ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def run_session(session: Any, lab: np.ndarray) -> np.ndarray:
    """Run an encoder session: (1, H, W, 3) float32 Lab -> (1, dim, h, w) float32."""
    return session.run(None, {"lab": lab})[0]
