"""Configuration as data: frozen dataclasses, loaded from TOML and validated on load.

A training config has three tables. Shape-setting values (dimension, width, depth, steps,
batch) are static; swept values (seeds, learning rates, training-set sizes) become the
vmapped ensemble axes of ONE compiled program (STYLE.md practice 1).

.. code-block:: toml

    [task]
    dim = 500            # ambient dimension d >= 2
    outer_radius = 1.3   # R > 1; the inner radius is 1

    [model]
    name = "relu-w1000-d2"   # a paper model, or "relu" / "quad" with width, depth, batch_norm

    [train]
    steps = 1000000
    batch_size = 50
    learning_rates = [1e-4]
    train_sizes = [0]        # 0 means online (a fresh batch every step); N > 0 a fixed set of N points
    seeds = [0]
    checkpoints = 20         # log-spaced checkpoint steps (plus the last step)
    chunk_steps = 10000      # steps per compiled call: progress and resume granularity

Every error is an :class:`~spheres.core.errors.InputError` naming the field (``train.steps``) and
the allowed values. Derived values are properties, never written back.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from spheres.core.config import check_dim, check_float, check_int, load_section, read_toml
from spheres.core.errors import InputError
from spheres.maths.geometry import OUTER_RADIUS

ARCHS = ("relu", "quad")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one network (static: sets shapes).

    Attributes:
      arch: "relu" (MLP, ReLU hidden layers, one logit) or "quad" (f(x) = w sum_j (W x)_j^2 + b).
      width: hidden width h (quad: rows of W).
      depth: number of hidden layers (quad: must be 1).
      batch_norm: batch norm after each hidden layer (relu only).
    """

    arch: str = "relu"
    width: int = 1000
    depth: int = 2
    batch_norm: bool = False

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise InputError("model.arch", f"unknown architecture {self.arch!r}; allowed: {', '.join(ARCHS)}")
        check_int("model.width", self.width, 1)
        check_int("model.depth", self.depth, 1)
        if not isinstance(self.batch_norm, bool):
            raise InputError("model.batch_norm", f"must be true or false, got {self.batch_norm!r}")
        if self.arch == "quad" and self.depth != 1:
            raise InputError("model.depth", f"the quadratic network has exactly 1 hidden layer, got {self.depth}")
        if self.arch == "quad" and self.batch_norm:
            raise InputError("model.batch_norm", "the quadratic network has no batch norm; set false")

    @property
    def name(self) -> str:
        """Canonical name: ``quad-w1000``, ``relu-w1000-d2`` (``-bn`` suffix if batch norm is not the paper's)."""
        for key, cfg in PAPER_MODELS.items():
            if cfg == self:
                return key
        if self.arch == "quad":
            return f"quad-w{self.width}"
        plain = f"relu-w{self.width}-d{self.depth}"
        if self.batch_norm:
            return plain + "-bn"
        return plain + "-nobn" if plain in PAPER_MODELS else plain


#: The paper's three architectures (PAPER.md section 4).
PAPER_MODELS: dict[str, ModelConfig] = {
    "quad-w1000": ModelConfig("quad", 1000, 1, False),
    "relu-w1000-d2": ModelConfig("relu", 1000, 2, True),
    "relu-w2000-d8": ModelConfig("relu", 2000, 8, False),
}


_NAME = re.compile(r"^(?:(quad)-w(\d+)|(relu)-w(\d+)-d(\d+)(-bn|-nobn)?)$")


def parse_model_name(name: str) -> ModelConfig:
    """``"quad-w1000"``, ``"relu-w256-d8"``, ``"relu-w256-d8-bn"`` -> ModelConfig (paper names included).

    A paper name means the paper's model; ``relu-w1000-d2-nobn`` is that width and depth without
    batch norm.

    >>> parse_model_name("relu-w64-d3-bn")
    ModelConfig(arch='relu', width=64, depth=3, batch_norm=True)
    """
    if name in PAPER_MODELS:
        return PAPER_MODELS[name]
    m = _NAME.match(str(name))
    if not m:
        raise InputError("model.name", f"unknown model {name!r}; allowed: {', '.join(PAPER_MODELS)}, "
                         "quad-w<width>, relu-w<width>-d<depth>[-bn]")
    if m.group(1):
        return ModelConfig("quad", int(m.group(2)), 1, False)
    return ModelConfig("relu", int(m.group(4)), int(m.group(5)), m.group(6) == "-bn")


@dataclass(frozen=True)
class TaskConfig:
    """The two-sphere task: inner radius 1 (label 0), outer radius ``outer_radius`` (label 1) in R^dim."""

    dim: int = 500
    outer_radius: float = OUTER_RADIUS

    def __post_init__(self):
        check_dim("task.dim", self.dim)
        check_float("task.outer_radius", self.outer_radius, lo=1.0, lo_open=True)


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe and the ensemble grid (seeds x learning rates x training-set sizes).

    Attributes:
      steps: Adam steps per model.
      batch_size: examples per step.
      learning_rates: swept (traced) learning rates, each > 0.
      train_sizes: swept training-set sizes; 0 = online, N > 0 = a fixed set of N points.
      seeds: model seeds; member keys are ``fold_in(key(0), seed)``.
      checkpoints: number of log-spaced checkpoint steps (the last step is always included).
      chunk_steps: steps per compiled call (progress bar and resume granularity).
    """

    steps: int = 1_000_000
    batch_size: int = 50
    learning_rates: tuple[float, ...] = (1e-4,)
    train_sizes: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0,)
    checkpoints: int = 20
    chunk_steps: int = 10_000

    def __post_init__(self):
        check_int("train.steps", self.steps, 1)
        check_int("train.batch_size", self.batch_size, 1)
        check_int("train.checkpoints", self.checkpoints, 1)
        check_int("train.chunk_steps", self.chunk_steps, 1)
        for name in ("learning_rates", "train_sizes", "seeds"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or len(value) == 0:
                raise InputError(f"train.{name}", "must be a non-empty list")
        for lr in self.learning_rates:
            check_float("train.learning_rates", lr, lo=0.0, lo_open=True)
        for n in self.train_sizes:
            check_int("train.train_sizes", n, 0, hint=" (0 means online)")
        for s in self.seeds:
            check_int("train.seeds", s, 0, hi=2**31 - 1)
        if len(set(self.seeds)) != len(self.seeds):
            raise InputError("train.seeds", "seeds must be distinct")

    @property
    def checkpoint_steps(self) -> tuple[int, ...]:
        """Sorted distinct log-spaced steps in [1, steps], always including ``steps``."""
        raw = np.unique(np.round(np.logspace(0, math.log10(self.steps), self.checkpoints)).astype(np.int64))
        return tuple(sorted(set(int(s) for s in raw if 1 <= s <= self.steps) | {self.steps}))

    @property
    def ensemble_size(self) -> int:
        return len(self.seeds) * len(self.learning_rates) * len(self.train_sizes)

    @property
    def members(self) -> list[dict[str, Any]]:
        """The ensemble grid, one dict per member (index order = vmapped axis order):
        ``{"member", "seed", "learning_rate", "train_size"}``."""
        grid = itertools.product(self.seeds, self.learning_rates, self.train_sizes)
        return [dict(member=i, seed=s, learning_rate=lr, train_size=n) for i, (s, lr, n) in enumerate(grid)]


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole training run: task, model and recipe."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = {"name": self.model.name, **d["model"]}
        return _lists(d)


# ---------------------------------------------------------------------------- loading


def _lists(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _lists(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [_lists(v) for v in obj]
    return obj


def model_from_table(table: Any) -> ModelConfig:
    """``{"name": "relu-w1000-d2"}`` or ``{"arch": ..., "width": ..., ...}`` -> ModelConfig."""
    if not isinstance(table, dict):
        raise InputError("model", "must be a table")
    table = dict(table)
    name = table.pop("name", None)
    if name is not None:
        if name in PAPER_MODELS:
            base = PAPER_MODELS[name]
            if table and any(getattr(base, k, object()) != v for k, v in table.items()):
                raise InputError("model.name", f"{name!r} fixes arch/width/depth/batch_norm; drop the other keys")
            return base
        if name in ARCHS:
            table.setdefault("arch", name)
        else:
            parsed = parse_model_name(name)
            if table and any(getattr(parsed, k, object()) != v for k, v in table.items()):
                raise InputError("model.name", f"{name!r} fixes arch/width/depth/batch_norm; drop the other keys")
            return parsed
    if table.get("arch") == "quad":
        table.setdefault("depth", 1)  # the quadratic net has one hidden layer; no need to say so
    allowed = {f.name for f in dataclasses.fields(ModelConfig)} | {"name"}
    unknown = sorted(set(table) - allowed)
    if unknown:  # listed here, not by load_section, so that the message names `name` too
        raise InputError(f"model.{unknown[0]}", f"unknown key; allowed keys: {', '.join(sorted(allowed))}")
    return load_section(ModelConfig, table, "model")


def config_from_dict(data: Any) -> ExperimentConfig:
    """Validate a parsed TOML document and build the config (raises InputError)."""
    if not isinstance(data, dict):
        raise InputError("config", "must be a TOML document with [task], [model] and [train] tables")
    unknown = sorted(set(data) - {"task", "model", "train"})
    if unknown:
        raise InputError(unknown[0], "unknown table; allowed tables: task, model, train")
    return ExperimentConfig(
        task=load_section(TaskConfig, data.get("task", {}), "task"),
        model=model_from_table(data.get("model", {})),
        train=load_section(TrainConfig, data.get("train", {}), "train"),
    )


def load_config(path: str | Path) -> ExperimentConfig:
    """Load and validate a TOML config file."""
    return config_from_dict(read_toml(path))


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as TOML text (round-trips through :func:`config_from_dict`)."""
    d = cfg.to_dict()
    d["model"].pop("name")  # arch/width/depth/batch_norm fully describe it
    return tomli_w.dumps(d)
