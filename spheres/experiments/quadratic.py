"""Experiment ``quadratic``: the quadratic network trained on a fixed set, solved exactly.

One ``quad-w{width}`` net is trained on a fixed training set (the paper: 10^6 points at d = 500).
Its weights give the alphas of the ellipsoid rule "outer iff sum_i alpha_i z_i^2 > 1"
(:func:`spheres.maths.quadratic.alphas_from_weights`), and from them, exactly: how many alphas lie
outside [1/R^2, 1] (the net is perfect on both spheres iff none does), the inner and outer error
rates beside the paper's CLT estimate, and the exact d(E) on ``points`` uniform points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np

from spheres.core.config import check_int
from spheres.core.errors import InputError
from spheres.core.io import write_csv_atomic, write_json_atomic
from spheres.experiments import common
from spheres.experiments.base import Context, Experiment, Report
from spheres.maths import quadratic, theory
from spheres.nets.config import TaskConfig, TrainConfig
from spheres.nets.models import quadratic_weights
from spheres.nets.runs import load_run, run_training
from spheres.plotting.quadratic import draw_alphas

ALPHAS, SUMMARY = "alphas.csv", "summary.json"


@dataclass(frozen=True)
class QuadraticExperimentConfig:
    """The quadratic network on a fixed training set.

    Attributes:
      task: the two spheres.
      width: rows of W (the hidden width h).
      train: the recipe; its grid must be ONE net (one seed, one learning rate, one training-set size).
      points: uniform inner-sphere points for the exact d(E).
      paper_alphas_outside, paper_dim: the paper's count of alphas outside the band and its dimension,
        quoted beside the run's (numbers from the paper, given in the preset; not computed).
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    width: int = 1000
    train: TrainConfig = field(default_factory=lambda: TrainConfig(train_sizes=(1_000_000,), checkpoints=12))
    points: int = 500
    paper_alphas_outside: int | None = None
    paper_dim: int | None = None

    RENAMED: ClassVar[dict[str, str]] = {
        "recipe": "renamed: use [quadratic.train] (steps, batch_size, learning_rates = [lr], checkpoints, "
                  "chunk_steps, train_sizes = [N], seeds = [seed])",
        "dim": "moved: use [quadratic.task] dim", "outer_radius": "moved: use [quadratic.task] outer_radius",
        "train_size": "moved: use [quadratic.train] train_sizes = [N]", "seed": "moved: use [quadratic.train] seeds = [seed]",
    }

    def __post_init__(self):
        check_int("width", self.width, 1)
        check_int("points", self.points, 2)
        if self.train.ensemble_size != 1:
            raise InputError("train", "must describe one net: one seed, one learning rate, one training-set size")
        if (self.paper_alphas_outside is None) != (self.paper_dim is None):
            raise InputError("paper_alphas_outside", "give both paper_alphas_outside and paper_dim, or neither")


def run(cfg: QuadraticExperimentConfig, ctx: Context) -> dict[str, Any]:
    exp = common.run_config(cfg.task, f"quad-w{cfg.width}", cfg.train)
    radius, seed = cfg.task.outer_radius, cfg.train.seeds[0]
    run_training(exp, ctx.out / "run", progress=ctx.progress)
    run_ = load_run(ctx.out / "run")
    last = run_.checkpoint_steps[-1]
    variables = jax.tree.map(lambda a: np.asarray(a[0]), run_.load_variables(last))
    dec = quadratic.alphas_from_weights(*quadratic_weights(variables))
    write_csv_atomic(ctx.out / ALPHAS, [{"alpha": float(a)} for a in dec.alphas])
    exact = quadratic.error_rates(dec.alphas, radius, dec.orientation)
    clt = quadratic.clt_error_rates(dec.alphas, radius, dec.orientation)
    dist = quadratic.mean_nearest_error_distance(dec.alphas, jax.random.key(seed), 1.0, n_points=cfg.points,
                                                 orientation=dec.orientation)
    metrics = next(r for r in run_.metrics if r["step"] == last)
    fin = common.finite
    summary = {
        "dim": cfg.task.dim, "width": cfg.width, "radius": radius, "train_size": cfg.train.train_sizes[0],
        "steps": last, "learning_rate": exp.train.learning_rates[0],
        "train_loss": metrics["loss"], "train_accuracy": metrics["accuracy"],
        "orientation": dec.orientation.value,
        "alphas_outside": quadratic.count_outside(dec.alphas, radius),
        "alphas_below": int(np.sum(dec.alphas < 1 / radius**2)), "alphas_above": int(np.sum(dec.alphas > 1)),
        "alpha_min": float(dec.alphas.min()), "alpha_max": float(dec.alphas.max()),
        "exact_mu_inner": exact.inner, "exact_mu_outer": exact.outer,
        "exact_mu_inner_log10": fin(exact.log10_inner), "exact_mu_outer_log10": fin(exact.log10_outer),
        "clt_mu_inner": fin(clt.inner), "clt_mu_outer": fin(clt.outer),
        "exact_mean_distance": fin(dist.mean), "exact_mean_distance_se": fin(dist.se),
        "exact_distance_points": dist.n, "exact_distance_unreachable": dist.n_unreachable,
        "optimal_distance_at_exact_mu": theory.bound_check(exact.inner, exact.inner, None, None,
                                                           cfg.task.dim).optimal_distance,
    }
    write_json_atomic(ctx.out / SUMMARY, summary)
    return {**summary, "paper_alphas_outside": cfg.paper_alphas_outside, "paper_dim": cfg.paper_dim}


def draw(ctx: Context) -> list[Path]:
    return draw_alphas(ctx.out / ALPHAS, ctx.out / SUMMARY, ctx.out / "quadratic_alphas.png")


_ROWS = [("dim", "dimension d"), ("width", "width h"), ("train_size", "training points N"),
         ("steps", "Adam steps"), ("learning_rate", "learning rate"),
         ("train_accuracy", "training accuracy"), ("alphas_outside", "alphas outside [1/R^2, 1]"),
         ("alphas_below", "  below 1/R^2"), ("alphas_above", "  above 1"),
         ("exact_mu_inner", "exact inner error rate"), ("clt_mu_inner", "paper's CLT estimate, inner"),
         ("exact_mu_outer", "exact outer error rate"), ("clt_mu_outer", "paper's CLT estimate, outer"),
         ("exact_mean_distance", "exact d(E) (inner sphere)"),
         ("optimal_distance_at_exact_mu", "optimal d(E) at that error rate")]


def report(q: dict[str, Any], ctx: Context) -> Report:
    sci = common.sci
    ratio = (q["clt_mu_inner"] / q["exact_mu_inner"]) if q.get("clt_mu_inner") and q.get("exact_mu_inner") else None
    paper = (f" (the paper, at d = {q['paper_dim']}: {q['paper_alphas_outside']} of {q['paper_dim']})"
             if q.get("paper_alphas_outside") is not None else "")
    finding = (f"quadratic: {q['alphas_outside']} of {q['dim']} alphas lie outside [1/R^2, 1]{paper}, with exact inner "
               f"error rate {sci(q['exact_mu_inner'])} and outer {sci(q['exact_mu_outer'])} after {q['steps']} steps."
               + (f" The paper's CLT estimate of the inner rate is {ratio:.2g} times the exact value." if ratio else ""))
    lines = ["| quantity | value |", "| --- | --- |"]
    for key, label in _ROWS:
        value = q.get(key)
        text = sci(value, 3) if isinstance(value, float) else str(value)
        if key == "exact_mean_distance" and value is not None:
            text += f" +- {sci(q['exact_mean_distance_se'], 1)} ({q['exact_distance_points']} points)"
        lines.append(f"| {label} | {text} |")
    return Report((finding,), tuple(lines + [""]))


EXPERIMENT = Experiment(
    name="quadratic", rank=10,
    description="The quadratic network trained on a fixed set, analysed exactly through its alphas.",
    config=QuadraticExperimentConfig, run=run, draw=draw, report=report,
    tables=(ALPHAS, SUMMARY),
    figures=(("quadratic_alphas.png", "The quadratic network trained on a fixed set: histogram of its alpha_i with "
              "the band [1/R^2, 1] (the net is perfect on both spheres iff every alpha_i lies in it), and its exact "
              "error rates beside the paper's CLT estimate."),),
)
