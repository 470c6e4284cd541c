"""The propagator seam: one interface, named presets, one registry.

Every caller (the CLI, ``evaluate.py``, the benchmarks and the GUI's ``Session``) obtains a
:class:`Propagator` from :func:`load_propagator` and calls its ``propagate``; a new propagator is
one class added to :data:`PROPAGATORS`, a new preset one entry in :data:`PRESETS`.

Presets (protocol settings on top of :class:`~tracker_core.propagate.PropagationConfig`):

- ``fast`` (default): frame 0's neighbouring keyframes + the last 3 frames, radius 8 (keyframes
  12), top-10, windows of each mask object's tiles centred where the object came from
  (``region_localise``, slack 0.5: dev / dev-b J&F 83.4 / 73.0 vs 72.6 / 72.0 without, at
  +7-13 % CPU per frame); frames taller than 480 rows are matched at 480 rows
  (``max_work_height``) and decoded at full size; features projected on the start frame's 32
  principal directions (``feature_dims``: dev / dev-b 83.4 / 73.9 vs 83.25 / 73.0 with all 67);
  frame t+1 decoded and encoded on a worker thread while t is matched (``encode_ahead``).
- ``accurate``: the last 7 frames in memory (about 1.5x the CPU per frame of ``fast`` without
  the encoder), otherwise the same: dev / dev-b J&F 85.0 / 75.75 (84.9 / 75.3 with all
  channels).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tracker_core.encoder import Encoder, load_encoder
from tracker_core.labels import FrameLabels
from tracker_core.propagate import (
    FeatureCache,
    PropagatedFrame,
    PropagationConfig,
    WarmupProgress,
    propagate,
)

DEFAULT_PRESET = "fast"
PRESETS: Mapping[str, PropagationConfig] = MappingProxyType(
    {
        "fast": PropagationConfig(),
        "accurate": PropagationConfig(n_recent=7),
    }
)
FEATURE_CACHE_BYTES = 256 * 2**20  # ~150 frames at 480p, ~30 at 1080p


@runtime_checkable
class Propagator(Protocol):
    """Propagates labels through a video. ``name`` is the preset (or a caller's label)."""

    name: str
    encoder: Encoder
    config: PropagationConfig

    def new_cache(self) -> FeatureCache:
        """An empty feature cache for one video (pass it to every run on that video)."""
        ...

    def propagate(
        self,
        frames: Callable[[int], np.ndarray],
        start: int,
        stop: int,
        references: Mapping[int, FrameLabels],
        num_keypoints: Mapping[int, int],
        *,
        cache: FeatureCache | None = None,
        on_warmup: Callable[[WarmupProgress], None] | None = None,
    ) -> Iterator[PropagatedFrame]:
        """Labels of ``start`` (and the keyframes in ``references``) towards ``stop``
        (exclusive), one PropagatedFrame per frame; close the iterator to cancel."""
        ...


@dataclasses.dataclass(frozen=True)
class AffinityPropagator:
    """The local-affinity label propagator of :mod:`tracker_core.propagate`."""

    encoder: Encoder
    config: PropagationConfig
    name: str = DEFAULT_PRESET
    cache_bytes: int = FEATURE_CACHE_BYTES

    def new_cache(self) -> FeatureCache:
        return FeatureCache(self.cache_bytes)

    def propagate(
        self,
        frames: Callable[[int], np.ndarray],
        start: int,
        stop: int,
        references: Mapping[int, FrameLabels],
        num_keypoints: Mapping[int, int],
        *,
        cache: FeatureCache | None = None,
        on_warmup: Callable[[WarmupProgress], None] | None = None,
    ) -> Iterator[PropagatedFrame]:
        return propagate(
            frames,
            start,
            stop,
            references,
            num_keypoints,
            self.encoder,
            self.config,
            cache=cache,
            on_warmup=on_warmup,
        )


PropagatorFactory = Callable[[Encoder, PropagationConfig, str], Propagator]
PROPAGATORS: Mapping[str, PropagatorFactory] = MappingProxyType(
    {"affinity": lambda enc, cfg, name: AffinityPropagator(enc, cfg, name)}
)


def preset_config(preset: str, overrides: Mapping[str, Any] | None = None) -> PropagationConfig:
    """The preset's PropagationConfig with ``overrides`` (field name -> value) applied.

    ValueError for an unknown preset or field.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    fields = {f.name for f in dataclasses.fields(PropagationConfig)}
    unknown = set(overrides or {}) - fields
    if unknown:
        raise ValueError(f"unknown propagation settings {sorted(unknown)}")
    return dataclasses.replace(PRESETS[preset], **dict(overrides or {}))


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["field=value", ...]`` -> PropagationConfig overrides, each value parsed as its field's
    type (bool: true/false/1/0/yes/no). ValueError naming an unknown field or a bad value."""
    types = {f.name: f.type for f in dataclasses.fields(PropagationConfig)}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in types:
            raise ValueError(f"expected FIELD=VALUE with a propagation setting, got {item!r}")
        kind = str(types[name])
        try:
            if kind == "bool":
                low = text.strip().lower()
                if low not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                out[name] = low in ("true", "1", "yes")
            elif kind == "int":
                out[name] = int(text)
            elif kind == "float":
                out[name] = float(text)
            else:
                out[name] = text
        except ValueError:
            raise ValueError(f"{name}: {text!r} is not a valid {kind}") from None
    return out


def load_propagator(
    preset: str = DEFAULT_PRESET,
    *,
    encoder: Encoder | None = None,
    model: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    kind: str = "affinity",
) -> Propagator:
    """A propagator by preset name (``fast``, ``accurate``), optionally with protocol overrides.

    ``encoder`` is used as given; otherwise ``model`` is loaded with ``load_encoder`` (None =
    the bundled model). ``kind`` names the implementation in :data:`PROPAGATORS`.
    """
    config = preset_config(preset, overrides)
    if kind not in PROPAGATORS:
        raise ValueError(f"unknown propagator {kind!r} (known: {', '.join(PROPAGATORS)})")
    enc = encoder if encoder is not None else load_encoder(model)
    return PROPAGATORS[kind](enc, config, preset)
