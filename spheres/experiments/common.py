"""What the experiments that train nets share: building a run's config, training it and measuring it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from spheres.core.config import check_float
from spheres.core.errors import InputError
from spheres.measure.pipeline import MeasureConfig, measure_run
from spheres.measure.results import ResultRow
from spheres.nets.config import ExperimentConfig, TaskConfig, TrainConfig, parse_model_name
from spheres.nets.runs import run_training


def log(msg: str) -> None:
    print(msg, flush=True)


def check_models(models: Any, field: str = "models") -> None:
    """``models`` is a non-empty tuple of model names (``{dim}`` allowed as a placeholder for the dimension)."""
    if not isinstance(models, tuple) or not models:
        raise InputError(field, "must be a non-empty list of model names")
    for m in models:
        if not isinstance(m, str):
            raise InputError(field, f"model names are strings, got {m!r}")
        try:
            parse_model_name(m.format(dim=16))
        except InputError as err:
            raise InputError(field, err.detail) from None


def check_learning_rates(pairs: tuple[tuple[str, float], ...], models: tuple[str, ...],
                         field: str = "model_learning_rates") -> None:
    """The per-model learning-rate table: ``((model, lr), ...)`` with every model listed in ``models``."""
    if not isinstance(pairs, tuple) or any(not isinstance(p, tuple) or len(p) != 2 for p in pairs):
        raise InputError(field, "must be a table of model name = learning rate")
    for model, lr in pairs:
        if model not in models:
            raise InputError(f"{field}.{model}", f"not one of models {list(models)}")
        check_float(f"{field}.{model}", lr, 0.0, lo_open=True)


def run_config(task: TaskConfig, model: str, train: TrainConfig,
               learning_rates: tuple[tuple[str, float], ...] = (), rate_key: str | None = None) -> ExperimentConfig:
    """The training run of one model: ``train`` with the model's own learning rate if the table has one."""
    lr = dict(learning_rates).get(rate_key or model)
    if lr is not None:
        train = dataclasses.replace(train, learning_rates=(lr,))
    return ExperimentConfig(task=task, model=parse_model_name(model), train=train)


def train_and_measure(cfg: ExperimentConfig, run_dir: Path, mcfg: MeasureConfig, progress: bool,
                      row_type: type[ResultRow] = ResultRow, **extra: Any) -> list[ResultRow]:
    """Train (or resume) the run in ``run_dir``, measure every checkpoint (resumable), return typed rows."""
    run_training(cfg, run_dir, progress=progress)
    return [row_type.from_measurement(m, **extra) for m in measure_run(run_dir, mcfg, progress=progress)]


def finite(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def sci(x: Any, digits: int = 2) -> str:
    """A number for a markdown table: scientific when tiny or huge, ``-`` when missing."""
    if x is None:
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.{digits}e}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.{digits + 1}g}"


def summarise(rows: list[ResultRow]) -> dict[str, Any]:
    """Key numbers of a table of nets x checkpoints, against the cap bound."""
    checked = [r for r in rows if r.consistent_with_bound is not None]
    # ratios where the net is past chance on the inner sphere (mu < 1/2); at larger mu most attacked
    # points are already misclassified and d(E) is a mean of mostly zeros
    ratios = [r.ratio for r in rows if r.ratio is not None and r.mu < 0.5]
    mus = [r.mu for r in rows if r.mu]
    return {"points": len(rows), "points_with_bound": len(checked),
            "points_above_bound": sum(1 for r in checked if not r.consistent_with_bound),
            "points_with_attack_failures": sum(1 for r in rows if (r.distance_failures or 0) > 0),
            "ratio_median": float(np.median(ratios)) if ratios else None,
            "ratio_min": min(ratios) if ratios else None, "ratio_max": max(ratios) if ratios else None,
            "smallest_mu": min(mus) if mus else None}


def bound_findings(name: str, s: dict[str, Any]) -> list[str]:
    """Findings of a tradeoff-like table's summary (every number read from it)."""
    out = [f"{name}: {s['points_with_bound'] - s['points_above_bound']} of {s['points_with_bound']} measured "
           f"points lie at or below the exact cap bound within 2 SE (the bound is a theorem; a point above it "
           f"would be a bug). Where mu < 1/2 the nets reach a median {sci(s['ratio_median'])} of the largest "
           f"d(E) any classifier with their error rate can have (range {sci(s['ratio_min'])} to "
           f"{sci(s['ratio_max'])})" + (": trained nets sit close to the optimal curve, as in the paper."
                                          if (s["ratio_median"] or 0) >= 0.5 else
                                          ": well below the optimal curve, unlike the paper's nets.")]
    if s["points_with_attack_failures"]:
        out.append(f"{name}: at {s['points_with_attack_failures']} of {s['points']} points the attack found no "
                   "error from some starting points (within its budget); their d(E) is a mean over the other "
                   "points and is drawn hollow, so it can understate the distance.")
    return out


def bound_lines(s: dict[str, Any]) -> list[str]:
    return [f"{s['points']} points (nets x checkpoints). Points above the bound beyond 2 SE: "
            f"**{s['points_above_bound']}** of {s['points_with_bound']} checked (a point above it would be "
            f"a bug). d(E)/optimal where mu < 1/2: median {sci(s['ratio_median'])}, range [{sci(s['ratio_min'])}, "
            f"{sci(s['ratio_max'])}]. Smallest error rate reached: {sci(s['smallest_mu'])}. Points where "
            f"the attack found no error from some starting points (their mean is over the rest): "
            f"{s['points_with_attack_failures']}.", ""]
