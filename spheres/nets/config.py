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
    schedule = "constant"    # or "warmup", "cosine", "linear" (with warmup_steps, final_lr_fraction)

Defences (all off by default; every list is a swept, traced ensemble axis, see :class:`TrainConfig`
and :class:`ModelConfig`):

.. code-block:: toml

    [model]
    name = "relu-w1000-d2"
    squeeze_bits = 4         # feature-squeezing front end (0 = off); squeeze_range = 3.0
    random_masks = true      # fixed random masks on the hidden features

    [train]
    adversarial = "pgd"      # or "exact" (quad nets), "none"; adv_steps = 10, adv_step_factor = 2.5
    adv_epsilons = [0.02, 0.05, 0.1]
    adv_weights = [0.5]
    grad_penalties = [0.0]
    rs_weights = [0.0]       # ReLU stability; rs_epsilons = [0.1], rs_norm = "l2"
    l1_weights = [0.0]
    mask_keep_rates = [0.5]

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
      squeeze_bits: feature-squeezing front end (relu only): ``b`` in [1, 16] quantises each
        coordinate of the input direction to ``2^b`` levels and renormalises onto the input's
        sphere (:func:`spheres.nets.defences.squeeze`); 0 (default) = no front end.
      squeeze_range: half-width of the quantisation range, in units of the coordinate scale
        ``r / sqrt(d)`` of a point of radius ``r`` (> 0; default 3: three standard deviations).
      random_masks: a fixed random binary mask on each hidden layer's output (relu only), drawn
        from the member's key with keep rate ``train.mask_keep_rates``; stored in the variables
        as ``{"masks": {"mask<l>": (h,)}}``.
    """

    arch: str = "relu"
    width: int = 1000
    depth: int = 2
    batch_norm: bool = False
    squeeze_bits: int = 0
    squeeze_range: float = 3.0
    random_masks: bool = False

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
        check_int("model.squeeze_bits", self.squeeze_bits, 0, hi=16, hint=" (0 means no squeezing)")
        check_float("model.squeeze_range", self.squeeze_range, lo=0.0, lo_open=True)
        if not isinstance(self.random_masks, bool):
            raise InputError("model.random_masks", f"must be true or false, got {self.random_masks!r}")
        for name in ("squeeze_bits", "random_masks"):
            if self.arch == "quad" and getattr(self, name):
                raise InputError(f"model.{name}", "defences of the quadratic network are training-side only "
                                 "(its exact analysis assumes the bare quadratic form); use a relu model")

    @property
    def architecture(self) -> "ModelConfig":
        """The same network without its front end and masks (arch, width, depth, batch_norm only)."""
        return ModelConfig(self.arch, self.width, self.depth, self.batch_norm)

    @property
    def defended(self) -> bool:
        """Whether the model has a squeezing front end or random masks."""
        return self != self.architecture

    @property
    def name(self) -> str:
        """Canonical name: ``quad-w1000``, ``relu-w1000-d2`` (``-bn`` suffix if batch norm is not the
        paper's), then ``-sq<b>`` (``-sq<b>r<range>`` off the default range) and ``-masked``."""
        suffix = ""
        if self.squeeze_bits:
            suffix += f"-sq{self.squeeze_bits}"
            if self.squeeze_range != ModelConfig.squeeze_range:
                suffix += f"r{self.squeeze_range:g}"
        if self.random_masks:
            suffix += "-masked"
        base = self.architecture
        for key, cfg in PAPER_MODELS.items():
            if cfg == base:
                return key + suffix
        if self.arch == "quad":
            return f"quad-w{self.width}" + suffix
        plain = f"relu-w{self.width}-d{self.depth}"
        if self.batch_norm:
            return plain + "-bn" + suffix
        return (plain + "-nobn" if plain in PAPER_MODELS else plain) + suffix


#: The paper's three architectures (docs/science.md section 4).
PAPER_MODELS: dict[str, ModelConfig] = {
    "quad-w1000": ModelConfig("quad", 1000, 1, False),
    "relu-w1000-d2": ModelConfig("relu", 1000, 2, True),
    "relu-w2000-d8": ModelConfig("relu", 2000, 8, False),
}


_NAME = re.compile(r"^(?:(quad)-w(\d+)|(relu)-w(\d+)-d(\d+)(-bn|-nobn)?)$")
_DEFENCE_SUFFIX = re.compile(r"^(.*?)(?:-sq(\d+)(?:r([0-9.eE+-]+?))?)?(-masked)?$")


def parse_model_name(name: str) -> ModelConfig:
    """``"quad-w1000"``, ``"relu-w256-d8"``, ``"relu-w256-d8-bn"`` -> ModelConfig (paper names included).

    A paper name means the paper's model; ``relu-w1000-d2-nobn`` is that width and depth without
    batch norm. The suffixes ``-sq<b>`` (``-sq<b>r<range>``) and ``-masked`` add a squeezing front
    end and random masks (:class:`ModelConfig`).

    >>> parse_model_name("relu-w64-d3-bn")
    ModelConfig(arch='relu', width=64, depth=3, batch_norm=True, squeeze_bits=0, squeeze_range=3.0, random_masks=False)
    >>> parse_model_name("relu-w1000-d2-sq4-masked").name
    'relu-w1000-d2-sq4-masked'
    """
    name = str(name)
    d = _DEFENCE_SUFFIX.match(name)
    base_name, bits, rng, masked = d.group(1), d.group(2), d.group(3), d.group(4)
    defences: dict[str, Any] = {}
    if bits is not None:
        defences["squeeze_bits"] = int(bits)
        if rng is not None:
            try:
                defences["squeeze_range"] = float(rng)
            except ValueError:
                raise InputError("model.name", f"bad squeeze range in {name!r}") from None
    if masked:
        defences["random_masks"] = True
    if base_name in PAPER_MODELS:
        base = PAPER_MODELS[base_name]
    else:
        m = _NAME.match(base_name)
        if not m:
            raise InputError("model.name", f"unknown model {name!r}; allowed: {', '.join(PAPER_MODELS)}, "
                             "quad-w<width>, relu-w<width>-d<depth>[-bn][-sq<bits>][-masked]")
        if m.group(1):
            base = ModelConfig("quad", int(m.group(2)), 1, False)
        else:
            base = ModelConfig("relu", int(m.group(4)), int(m.group(5)), m.group(6) == "-bn")
    return dataclasses.replace(base, **defences) if defences else base


@dataclass(frozen=True)
class TaskConfig:
    """The two-sphere task: inner radius 1 (label 0), outer radius ``outer_radius`` (label 1) in R^dim."""

    dim: int = 500
    outer_radius: float = OUTER_RADIUS

    def __post_init__(self):
        check_dim("task.dim", self.dim)
        check_float("task.outer_radius", self.outer_radius, lo=1.0, lo_open=True)


SCHEDULES = ("constant", "warmup", "cosine", "linear")
ADVERSARIAL = ("none", "pgd", "exact")
RS_NORMS = ("l2", "linf")

#: swept defence lists of [train] -> their key in a member dict and in :class:`~spheres.nets.train.Hyper`
SWEPT_DEFENCES = {"adv_epsilons": "adv_eps", "adv_weights": "adv_weight", "grad_penalties": "grad_penalty",
                  "rs_weights": "rs_weight", "rs_epsilons": "rs_eps", "l1_weights": "l1_weight",
                  "mask_keep_rates": "mask_keep"}


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe, the defences and the ensemble grid.

    The grid is the product seeds x learning_rates x train_sizes x (the swept defence lists, in
    the order of :data:`SWEPT_DEFENCES`); each list defaults to one value, so a config that sets
    none of them has the grid (and the numbers) it always had.

    Attributes:
      steps: Adam steps per model.
      batch_size: examples per step.
      learning_rates: swept (traced) PEAK learning rates, each > 0.
      train_sizes: swept training-set sizes; 0 = online, N > 0 = a fixed set of N points.
      seeds: model seeds; member keys are ``fold_in(key(0), seed)``.
      checkpoints: number of log-spaced checkpoint steps from step 1 (the last step is always
        included; 0 = none, only ``extra_checkpoints`` and the last step).
      extra_checkpoints: further steps in [1, steps] saved besides the log-spaced ones (e.g. a
        denser tail, where the error rate falls and matched-rate interpolation needs neighbours).
      chunk_steps: steps per compiled call (progress bar and resume granularity).
      schedule: learning-rate schedule (static), the factor multiplying the peak rate at update
        ``k = 1..steps`` (``W = warmup_steps``, ``S = steps``, ``a = final_lr_fraction``):
        ``"constant"`` 1 (default; the paper's recipe); ``"warmup"`` ``min(k / W, 1)``;
        ``"cosine"`` the warm-up, then ``a + (1 - a)(1 + cos(pi (k - W) / (S - W))) / 2``;
        ``"linear"`` the warm-up, then ``1 - (1 - a)(k - W) / (S - W)`` (optax schedules).
      warmup_steps: ``W`` in [0, steps] (< steps for cosine and linear; 0 with "constant").
      final_lr_fraction: ``a`` in [0, 1], the end of the cosine or linear decay (0 otherwise).
      adversarial: ``"none"`` (default), ``"pgd"`` (projected gradient ascent on the sphere within
        chord distance eps, :func:`spheres.nets.defences.pgd_attack`) or ``"exact"`` (the quad
        net's exact worst case, :func:`spheres.nets.defences.quad_worst_case`); static.
      adv_steps: PGD iterations (static, >= 1; default 10).
      adv_step_factor: PGD arc step ``adv_step_factor * eps / adv_steps`` (> 0; default 2.5).
      adv_epsilons: swept chord-distance budgets eps >= 0 (need ``adversarial``; default [0]).
      adv_weights: swept weights ``lambda`` in [0, 1] of the adversarial loss in
        ``(1 - lambda) L(x) + lambda L(x_adv)`` (need ``adversarial``; default [0.5]).
      grad_penalties: swept weights >= 0 of the input-gradient penalty (default [0] = off).
      rs_weights: swept weights >= 0 of the ReLU-stability loss (default [0] = off; relu only).
      rs_epsilons: swept radii > 0 of the ball the RS loss bounds over (need rs_weights; default [0.1]).
      rs_norm: ``"l2"`` (default) or ``"linf"``, the norm of that ball (static).
      l1_weights: swept weights >= 0 of the L1 penalty on the dense kernels (default [0] = off).
      mask_keep_rates: swept keep rates in (0, 1] of the random masks (need ``model.random_masks``;
        default [1]).
    """

    steps: int = 1_000_000
    batch_size: int = 50
    learning_rates: tuple[float, ...] = (1e-4,)
    train_sizes: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0,)
    checkpoints: int = 20
    extra_checkpoints: tuple[int, ...] = ()
    chunk_steps: int = 10_000
    schedule: str = "constant"
    warmup_steps: int = 0
    final_lr_fraction: float = 0.0
    adversarial: str = "none"
    adv_steps: int = 10
    adv_step_factor: float = 2.5
    adv_epsilons: tuple[float, ...] = (0.0,)
    adv_weights: tuple[float, ...] = (0.5,)
    grad_penalties: tuple[float, ...] = (0.0,)
    rs_weights: tuple[float, ...] = (0.0,)
    rs_epsilons: tuple[float, ...] = (0.1,)
    rs_norm: str = "l2"
    l1_weights: tuple[float, ...] = (0.0,)
    mask_keep_rates: tuple[float, ...] = (1.0,)

    def __post_init__(self):
        check_int("train.steps", self.steps, 1)
        check_int("train.batch_size", self.batch_size, 1)
        check_int("train.checkpoints", self.checkpoints, 0, hint=" (0: only extra_checkpoints and the last step)")
        check_int("train.chunk_steps", self.chunk_steps, 1)
        if not isinstance(self.extra_checkpoints, tuple):
            raise InputError("train.extra_checkpoints", f"must be a list of steps, got {self.extra_checkpoints!r}")
        for s in self.extra_checkpoints:
            check_int("train.extra_checkpoints", s, 1, hi=self.steps, hint=" (a step of training)")
        if list(self.extra_checkpoints) != sorted(set(self.extra_checkpoints)):
            raise InputError("train.extra_checkpoints", f"must be increasing steps without repeats (one spelling per "
                             f"schedule, so a resumed run compares equal), got {list(self.extra_checkpoints)}")
        for name in ("learning_rates", "train_sizes", "seeds", *SWEPT_DEFENCES):
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
        self._check_schedule()
        self._check_defences()

    def _check_schedule(self):
        if self.schedule not in SCHEDULES:
            raise InputError("train.schedule", f"unknown schedule {self.schedule!r}; allowed: {', '.join(SCHEDULES)}")
        decays = self.schedule in ("cosine", "linear")
        check_int("train.warmup_steps", self.warmup_steps, 0, hi=self.steps - 1 if decays else self.steps,
                  hint=" (below train.steps for a decay)" if decays else "")
        if self.schedule == "constant" and self.warmup_steps:
            raise InputError("train.warmup_steps", "a constant schedule has no warm-up; use schedule = \"warmup\"")
        check_float("train.final_lr_fraction", self.final_lr_fraction, lo=0.0)
        if self.final_lr_fraction > 1:
            raise InputError("train.final_lr_fraction", f"must be in [0, 1], got {self.final_lr_fraction}")
        if not decays and self.final_lr_fraction:
            raise InputError("train.final_lr_fraction", "only a cosine or linear decay has an end value")

    def _check_defences(self):
        if self.adversarial not in ADVERSARIAL:
            raise InputError("train.adversarial", f"unknown choice {self.adversarial!r}; allowed: "
                             f"{', '.join(ADVERSARIAL)}")
        check_int("train.adv_steps", self.adv_steps, 1)
        check_float("train.adv_step_factor", self.adv_step_factor, lo=0.0, lo_open=True)
        if self.rs_norm not in RS_NORMS:
            raise InputError("train.rs_norm", f"unknown norm {self.rs_norm!r}; allowed: {', '.join(RS_NORMS)}")
        for name in ("adv_epsilons", "adv_weights", "grad_penalties", "rs_weights", "l1_weights"):
            for v in getattr(self, name):
                check_float(f"train.{name}", v, lo=0.0)
        for v in self.rs_epsilons:
            check_float("train.rs_epsilons", v, lo=0.0, lo_open=True)
        for v in self.adv_weights:
            if v > 1:
                raise InputError("train.adv_weights", f"must be in [0, 1], got {v}")
        for v in self.mask_keep_rates:
            check_float("train.mask_keep_rates", v, lo=0.0, lo_open=True)
            if v > 1:
                raise InputError("train.mask_keep_rates", f"must be in (0, 1], got {v}")
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        needs = {"adv_epsilons": (self.uses_adversarial, "train.adversarial = \"pgd\" or \"exact\""),
                 "adv_weights": (self.uses_adversarial, "train.adversarial = \"pgd\" or \"exact\""),
                 "rs_epsilons": (self.uses_rs, "some train.rs_weights > 0")}
        for name, (active, what) in needs.items():
            if not active and getattr(self, name) != defaults[name]:
                raise InputError(f"train.{name}", f"has no effect without {what}")

    @property
    def uses_adversarial(self) -> bool:
        return self.adversarial != "none"

    @property
    def uses_grad_penalty(self) -> bool:
        return any(v > 0 for v in self.grad_penalties)

    @property
    def uses_rs(self) -> bool:
        return any(v > 0 for v in self.rs_weights)

    @property
    def uses_l1(self) -> bool:
        return any(v > 0 for v in self.l1_weights)

    @property
    def active_defences(self) -> tuple[str, ...]:
        """The swept defence lists that are switched on (their values appear in member dicts)."""
        on = {"adv_epsilons": self.uses_adversarial, "adv_weights": self.uses_adversarial,
              "grad_penalties": self.uses_grad_penalty, "rs_weights": self.uses_rs, "rs_epsilons": self.uses_rs,
              "l1_weights": self.uses_l1, "mask_keep_rates": self.mask_keep_rates != (1.0,)}
        return tuple(name for name in SWEPT_DEFENCES if on[name])

    @property
    def checkpoint_steps(self) -> tuple[int, ...]:
        """Sorted distinct log-spaced steps in [1, steps], always including ``steps``, and the
        ``extra_checkpoints``."""
        raw = np.round(np.logspace(0, math.log10(self.steps), self.checkpoints)).astype(np.int64)
        return tuple(sorted(set(int(s) for s in raw if 1 <= s <= self.steps) | {self.steps}
                            | set(self.extra_checkpoints)))

    @property
    def ensemble_size(self) -> int:
        return math.prod(len(v) for v in (self.seeds, self.learning_rates, self.train_sizes,
                                          *(getattr(self, n) for n in SWEPT_DEFENCES)))

    @property
    def grid(self) -> list[dict[str, Any]]:
        """Every member's full set of swept values (index order = vmapped axis order):
        ``{"member", "seed", "learning_rate", "train_size", <every SWEPT_DEFENCES value>}``."""
        lists = [self.seeds, self.learning_rates, self.train_sizes, *(getattr(self, n) for n in SWEPT_DEFENCES)]
        keys = ["seed", "learning_rate", "train_size", *SWEPT_DEFENCES.values()]
        return [dict(member=i, **dict(zip(keys, values))) for i, values in enumerate(itertools.product(*lists))]

    @property
    def members(self) -> list[dict[str, Any]]:
        """The ensemble grid, one dict per member (index order = vmapped axis order):
        ``{"member", "seed", "learning_rate", "train_size"}`` plus the value of every active
        defence (:attr:`active_defences`, keyed as in :data:`SWEPT_DEFENCES`)."""
        keep = {"member", "seed", "learning_rate", "train_size", *(SWEPT_DEFENCES[n] for n in self.active_defences)}
        return [{k: v for k, v in m.items() if k in keep} for m in self.grid]


@dataclass(frozen=True)
class ExperimentConfig:
    """A whole training run: task, model and recipe."""

    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        if self.train.adversarial == "exact" and self.model.arch != "quad":
            raise InputError("train.adversarial", "the exact worst case is the quadratic network's; use \"pgd\"")
        if self.train.uses_rs and self.model.arch != "relu":
            raise InputError("train.rs_weights", "the ReLU-stability loss needs a relu model")
        if self.train.mask_keep_rates != (1.0,) and not self.model.random_masks:
            raise InputError("train.mask_keep_rates", "has no effect without model.random_masks = true")

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


#: model keys that are not part of the architecture a name fixes
_MODEL_DEFENCE_KEYS = ("squeeze_bits", "squeeze_range", "random_masks")


def model_from_table(table: Any) -> ModelConfig:
    """``{"name": "relu-w1000-d2"}`` or ``{"arch": ..., "width": ..., ...}`` -> ModelConfig.

    A name fixes arch/width/depth/batch_norm (and any ``-sq``/``-masked`` suffix); the defence keys
    ``squeeze_bits``, ``squeeze_range`` and ``random_masks`` may be given beside it.
    """
    if not isinstance(table, dict):
        raise InputError("model", "must be a table")
    table = dict(table)
    name = table.pop("name", None)
    if name is not None:
        if name in ARCHS:
            table.setdefault("arch", name)
        else:
            base = parse_model_name(name)
            extra = {k: table.pop(k) for k in _MODEL_DEFENCE_KEYS if k in table}
            if table and any(getattr(base, k, object()) != v for k, v in table.items()):
                raise InputError("model.name", f"{name!r} fixes arch/width/depth/batch_norm; drop the other keys")
            if not extra:
                return base
            return load_section(ModelConfig, {**dataclasses.asdict(base), **extra}, "model")
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
