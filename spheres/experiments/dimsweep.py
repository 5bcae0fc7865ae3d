"""Experiment ``dimsweep``: the tradeoff measurements across dimensions, and the 1/sqrt(d) law.

For each dimension of ``dims`` and each model template of ``models`` (``quad-w{dim}``: width = d),
an ensemble of ``train.seeds`` x ``train.train_sizes`` is trained and measured at every checkpoint.
The figures show the collapse d(E) sqrt(d) against Phi^-1(1 - mu) and the ratio d(E) / d_cap(mu, d);
the fit is the exponent of d(E) in d at matched error rate (:func:`spheres.maths.analysis.dimension_exponent`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from spheres.core.errors import InputError
from spheres.core.io import write_json_atomic
from spheres.experiments import common
from spheres.experiments.base import Context, Experiment, Report
from spheres.maths.analysis import dimension_exponent
from spheres.maths.geometry import OUTER_RADIUS
from spheres.measure.pipeline import MeasureConfig
from spheres.measure.results import SweepRow, write_rows
from spheres.nets.config import TaskConfig, TrainConfig
from spheres.plotting.dimsweep import draw_dimsweep

RESULTS = "results.csv"
FIT = "fit.json"


@dataclass(frozen=True)
class DimSweepConfig:
    """Dimension sweep. A model name may contain ``{dim}`` (e.g. ``quad-w{dim}``: width = d).

    Attributes:
      dims: at least two distinct dimensions.
      outer_radius: R of the task at every dimension.
      models: model names or templates.
      train: the recipe and the ensemble grid at every dimension.
      measure: the measurement budgets.
      model_learning_rates: ``{template = lr}`` overriding ``train.learning_rates``.
    """

    dims: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048)
    outer_radius: float = OUTER_RADIUS
    models: tuple[str, ...] = ("quad-w{dim}", "relu-w1000-d2")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(seeds=(0, 1, 2), checkpoints=12))
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    model_learning_rates: tuple[tuple[str, float], ...] = ()

    RENAMED: ClassVar[dict[str, str]] = {
        "recipe": "renamed: use [dimsweep.train] (a training section: steps, batch_size, learning_rates = [lr], "
                  "checkpoints, chunk_steps, with train_sizes and seeds)",
        "train_sizes": "moved: use [dimsweep.train] train_sizes", "seeds": "moved: use [dimsweep.train] seeds",
    }

    def __post_init__(self):
        if not isinstance(self.dims, tuple) or len(self.dims) < 2:
            raise InputError("dims", "must list at least 2 dimensions")
        for d in self.dims:
            TaskConfig(dim=d, outer_radius=self.outer_radius)
        if len(set(self.dims)) != len(self.dims):
            raise InputError("dims", "dimensions must be distinct")
        common.check_models(self.models)
        common.check_learning_rates(self.model_learning_rates, self.models)


def _fit(rows: list[SweepRow]) -> dict[str, Any]:
    ok = [r for r in rows if r.mu and 0 < r.mu < 0.5 and r.distance and r.distance_failures == 0 and r.distance_se]
    if len({r.dim for r in ok}) < 2 or len(ok) < 3:
        return {"exponent": None, "exponent_se": None, "n": len(ok),
                "note": "too few usable points (need 0 < mu < 0.5, d(E) found for every point, >= 2 dims)"}
    f = dimension_exponent([r.dim for r in ok], [r.mu for r in ok], [r.distance for r in ok],
                           [r.distance_se for r in ok])
    return {"exponent": f.slope, "exponent_se": f.slope_se, "n": f.n}


def run(cfg: DimSweepConfig, ctx: Context) -> dict[str, Any]:
    rows: list[SweepRow] = []
    for dim in cfg.dims:
        task = TaskConfig(dim=dim, outer_radius=cfg.outer_radius)
        for template in cfg.models:
            model = template.format(dim=dim)
            exp = common.run_config(task, model, cfg.train, cfg.model_learning_rates, rate_key=template)
            common.log(f"[dimsweep] d = {dim}, {model}: {exp.train.ensemble_size} networks, {exp.train.steps} steps")
            rows += common.train_and_measure(exp, ctx.out / "runs" / f"d{dim}-{model}", cfg.measure, ctx.progress,
                                             row_type=SweepRow, family=template)
    write_rows(ctx.out / RESULTS, rows, SweepRow)
    fits = {"models": {m: _fit([r for r in rows if r.family == m]) for m in cfg.models}, "all": _fit(rows),
            "law": "d(E) = A (c Phi(c) + phi(c)) d^exponent, c = Phi^-1(1 - mu); -0.5 is the 1/sqrt(d) law"}
    write_json_atomic(ctx.out / FIT, fits)
    return {**common.summarise(rows), "fit": fits}


def draw(ctx: Context) -> list[Path]:
    return draw_dimsweep(ctx.out / RESULTS, ctx.out / FIT, ctx.out / "dimsweep_collapse.png",
                         ctx.out / "dimsweep_ratio.png")


def report(s: dict[str, Any], ctx: Context) -> Report:
    findings = common.bound_findings("dimsweep", s)
    fit = s["fit"]
    if fit["all"].get("exponent") is not None:
        f = fit["all"]
        z = (f["exponent"] + 0.5) / f["exponent_se"]
        findings.append(f"dimsweep: d(E) scales like d^({f['exponent']:.3f} +- {f['exponent_se']:.3f}) at matched "
                        f"error rate ({f['n']} points), {abs(z):.1f} standard errors from the 1/sqrt(d) law's -1/2.")
    lines = common.bound_lines(s) + [
        "Fitted exponent beta in d(E) = A (c Phi(c) + phi(c)) d^beta (matched error rate; -1/2 is the 1/sqrt(d) law):",
        "", "| models | beta | SE | points |", "| --- | --- | --- | --- |"]
    for label, f in [*fit["models"].items(), ("all", fit["all"])]:
        lines.append(f"| {label} | {common.sci(f['exponent'], 3)} | {common.sci(f['exponent_se'], 2)} | {f['n']} |")
    return Report(tuple(findings), tuple(lines + [""]))


EXPERIMENT = Experiment(
    name="dimsweep",
    description="The tradeoff measurements across dimensions: does d(E) shrink like 1/sqrt(d) at a fixed error rate?",
    config=DimSweepConfig, run=run, draw=draw, report=report,
    tables=(RESULTS, FIT),
    figures=(
        ("dimsweep_collapse.png", "d(E) sqrt(d) against Phi^-1(1 - mu(E)) for every dimension: if d(E) shrinks like "
         "1/sqrt(d) at fixed error rate, all dimensions fall on one curve."),
        ("dimsweep_ratio.png", "d(E) divided by the bound at the net's own error rate, against d."),
    ),
)
