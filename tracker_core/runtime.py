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
import importlib.util
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

PRECISIONS = ("auto", "fp32", "bf16", "int8")
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
    """Whether ONNX Runtime is installed (found without importing it: that takes ~0.3 s)."""
    return importlib.util.find_spec("onnxruntime") is not None


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

    ``precision="fp32"`` never uses bf16 or int8; ``runtime="torch"`` never uses ONNX Runtime;
    "int8" runs a shipped quantised graph (see :func:`int8_graph`).
    """
    if device not in ("auto", "cpu", "cuda", "mps"):
        raise ValueError(f"device must be auto, cpu, cuda or mps, got {device!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if runtime not in ("auto", "onnx", "torch"):
        raise ValueError(f"runtime must be auto, onnx or torch, got {runtime!r}")
    dev = auto_device() if device == "auto" else device
    if dev != "cpu":
        return Placement("torch", dev, "fp32")
    if precision == "int8":
        return Placement("onnx", "cpu", "int8")
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


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def ort_session(model: str | bytes, threads: int) -> Any:
    """An ONNX Runtime CPU session for a model path or bytes, ``threads`` intra-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle ONNX Runtime threads must not spin: they would steal the cores the affinity step
    # (torch) needs right after each encode (2.3 s instead of ~0.1 s per frame on 2 cores).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _matching_session(path: Path, key: str, threads: int) -> Any | None:
    """A session for ``path`` when the weights hash recorded in it is ``key``, else None."""
    if not path.is_file():
        return None
    try:
        session = ort_session(str(path), threads)
    except Exception:  # a truncated or foreign file is simply not used
        return None
    recorded = session.get_modelmeta().custom_metadata_map.get(HASH_KEY)
    return session if recorded == key else None


def int8_graph(source: Path | None) -> Path | None:
    """The shipped int8 graph of a checkpoint (``NAME.int8.onnx`` beside ``NAME.pt``), if any."""
    if source is None:
        return None
    path = source.with_suffix(".int8.onnx")
    return path if path.is_file() else None


def int8_session(weights: nn.Module, source: Path | None, threads: int) -> Any:
    """A session running the shipped int8 graph of these weights; LookupError when there is none
    or it was quantised from other weights."""
    path = int8_graph(source)
    key = weights_hash(weights)
    session = _matching_session(path, key, threads) if path is not None else None
    if session is None:
        raise LookupError(f"no int8 graph for these weights beside {source}")
    return session


def onnx_session(
    graph: nn.Module, weights: nn.Module, example: torch.Tensor, source: Path | None, threads: int
) -> Any:
    """An ONNX Runtime session running ``graph`` with these ``weights``.

    ``source`` is the checkpoint file the weights came from: a matching ``source.onnx`` beside
    it is used as shipped; otherwise the graph is exported once (needs the ``onnx`` package,
    ImportError without it) into :func:`cache_dir` (a temporary folder when that is not
    writable). In-memory weights (``source`` None) are exported to memory.
    """
    key = weights_hash(weights)
    if source is None:
        return ort_session(export_onnx(graph, example, key), threads)
    folders = (cache_dir() / "onnx", Path(tempfile.gettempdir()) / "trackpaint-onnx")
    for path in (source.with_suffix(".onnx"), *(f / f"{key}.onnx" for f in folders)):
        session = _matching_session(path, key, threads)
        if session is not None:
            return session
    data = export_onnx(graph, example, key)
    for folder in folders:
        try:
            _write_atomic(folder / f"{key}.onnx", data)
        except OSError:
            continue
        break
    return ort_session(data, threads)


def run_session(session: Any, lab: np.ndarray) -> np.ndarray:
    """Run an encoder session: (1, H, W, 3) float32 Lab -> (1, dim, h, w) float32."""
    return session.run(None, {"lab": lab})[0]
