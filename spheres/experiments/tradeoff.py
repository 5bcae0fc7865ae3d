"""Experiment ``tradeoff`` (the paper's Fig. 4): error rate against distance to the nearest error.

Each model of ``models`` is trained on every training-set size of ``train.train_sizes`` (0 =
online) and seed, as one ensemble per model; at every checkpoint the pipeline measures the
inner-sphere mu(E) (exact for the quad net; Monte Carlo, or splitting where Monte Carlo sees too few
errors) and d(E) by the on-manifold attack, and each point is set against the exact cap bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from spheres.core.config import check_float
from spheres.experiments import common
from spheres.experiments.base import Context, Experiment, Report
from spheres.measure.pipeline import MeasureConfig
from spheres.measure.results import ResultRow, read_rows, write_rows
from spheres.nets.config import TaskConfig, TrainConfig
from spheres.plotting.tradeoff import draw_tradeoff

RESULTS = "results.csv"


@dataclass(frozen=True)
class TradeoffConfig:
    """Fig. 4: ``models`` x ``train.train_sizes`` x ``train.seeds`` (x ``train.learning_rates``) at ``task.dim``.

    Attributes:
      task: the two spheres (dimension, outer radius).
      models: model names (:func:`spheres.nets.config.parse_model_name`).
      train: the training recipe and the ensemble grid of every model.
      measure: the measurement budgets.
      model_learning_rates: ``{model = lr}`` overriding ``train.learning_rates`` for that model.
      paper_smallest_mu: the error rate the paper's nets went below, quoted beside the run's (a number
        from the paper, given in the preset; not computed).
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    models: tuple[str, ...] = ("quad-w1000", "relu-w1000-d2", "relu-w2000-d8")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        train_sizes=(0, 1000, 5623, 31623, 177828, 1000000), checkpoints=12))
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    model_learning_rates: tuple[tuple[str, float], ...] = ()
    paper_smallest_mu: float | None = None

    RENAMED: ClassVar[dict[str, str]] = {
        "recipe": "renamed: use [tradeoff.train] (a training section: steps, batch_size, learning_rates = [lr], "
                  "checkpoints, chunk_steps, with train_sizes and seeds)",
        "dim": "moved: use [tradeoff.task] dim", "outer_radius": "moved: use [tradeoff.task] outer_radius",
        "train_sizes": "moved: use [tradeoff.train] train_sizes", "seeds": "moved: use [tradeoff.train] seeds",
    }

    def __post_init__(self):
        common.check_models(self.models)
        common.check_learning_rates(self.model_learning_rates, self.models)
        if self.paper_smallest_mu is not None:
            check_float("paper_smallest_mu", self.paper_smallest_mu, 0.0, lo_open=True, hi=1.0)


def run(cfg: TradeoffConfig, ctx: Context) -> dict[str, Any]:
    rows: list[ResultRow] = []
    for model in cfg.models:
        exp = common.run_config(cfg.task, model, cfg.train, cfg.model_learning_rates)
        common.log(f"[tradeoff] {model}: {exp.train.ensemble_size} networks at d = {cfg.task.dim}, "
                   f"{exp.train.steps} steps")
        rows += common.train_and_measure(exp, ctx.out / "runs" / model, cfg.measure, ctx.progress)
    write_rows(ctx.out / RESULTS, rows)
    summary = common.summarise(rows)
    summary["paper_smallest_mu"] = cfg.paper_smallest_mu
    return summary


def draw(ctx: Context) -> list[Path]:
    return draw_tradeoff(ctx.out / RESULTS, ctx.out / "tradeoff.png")


def last_checkpoints(rows: list[ResultRow]) -> list[ResultRow]:
    """The last checkpoint of every net (model, training-set size, seed, learning rate), sorted."""
    last: dict[tuple, ResultRow] = {}
    for r in rows:
        key = (r.model, r.train_size, r.seed, r.learning_rate)
        if key not in last or r.step > last[key].step:
            last[key] = r
    return [last[k] for k in sorted(last, key=lambda k: (k[0], k[1] or 10**12, k[2], k[3]))]


def _table(rows: list[ResultRow]) -> list[str]:
    sci = common.sci
    lines = ["| model | N | seed | step | mu(E) [95% interval] | method | d(E) +- SE (failures) | optimal d(E) at mu | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in last_checkpoints(rows):
        interval = "" if r.mu_method == "exact" else f" [{sci(r.mu_lower)}, {sci(r.mu_upper)}]"
        dist = "-" if r.distance is None else f"{r.distance:.4f} +- {sci(r.distance_se, 1)}"
        lines.append(f"| {r.model} | {r.train_size or 'online'} | {r.seed} | {r.step} | {sci(r.mu)}{interval} | "
                     f"{r.mu_method} | {dist} ({r.distance_failures}) | {sci(r.optimal_distance, 3)} | "
                     f"{sci(r.ratio, 2)} |")
    return lines


def report(s: dict[str, Any], ctx: Context) -> Report:
    findings = common.bound_findings("tradeoff", s)
    if s.get("smallest_mu") is not None:
        text = f"tradeoff: the smallest error rate reached is {common.sci(s['smallest_mu'])}."
        if s.get("paper_smallest_mu") is not None:
            text += (f" The paper's nets went below {common.sci(s['paper_smallest_mu'])} (Monte Carlo saw no error); "
                     "at the budgets of this run most nets stop at larger error rates, so the figure covers the "
                     "upper part of the paper's curve.")
        findings.append(text)
    lines = common.bound_lines(s) + ["Last checkpoint of every net:", ""] + _table(read_rows(ctx.out / RESULTS)) + [""]
    return Report(tuple(findings), tuple(lines))


EXPERIMENT = Experiment(
    name="tradeoff",
    description="Fig. 4 of the paper: nets trained on several training-set sizes, every checkpoint placed by its "
                "error rate and its distance to the nearest error, against the exact cap bound.",
    config=TradeoffConfig, run=run, draw=draw, report=report,
    tables=(RESULTS,),
    figures=(("tradeoff.png", "Fig. 4 of the paper: every trained net at every checkpoint, placed by its "
              "inner-sphere error rate mu(E) (exact for the quad net; Monte Carlo, or splitting where Monte "
              "Carlo sees too few errors) and its d(E) (on-manifold attack), against the exact cap bound."),),
)
