"""Experiment ``dimsweep``: the tradeoff measurements across dimensions, and the 1/sqrt(d) law.

For each dimension of ``dims`` and each model template of ``models`` (``quad-w{dim}``: width = d),
an ensemble of ``train.seeds`` x ``train.train_sizes`` is trained and measured at every checkpoint.
The figures show the collapse d(E) sqrt(d) against Phi^-1(1 - mu) and the ratio d(E) / d_cap(mu, d);
the fit tests the exact law per model family: the slope of log(d(E) / d_cap(mu(E), d)) against
log d is 0 when a family's distances follow the bound's shape across dimensions
(:func:`spheres.maths.analysis.law_slope`, mu's interval carried in), and the same at a few matched
error rates, each run interpolated to them (:func:`spheres.maths.analysis.interpolate_at_rate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jax
import numpy as np

from spheres.core.config import check_float, check_int
from spheres.core.errors import InputError
from spheres.core.io import write_json_atomic
from spheres.experiments import common
from spheres.experiments.base import Context, Experiment, Report
from spheres.maths import analysis, theory
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
      model_train: ``{template = {field = value}}`` replacing fields of ``train`` for that model (e.g. a
        constant rate for the quadratic net, whose output scale starts at zero).
      select_max_error: the fits and findings use checkpoints whose error rate is at most this on both spheres.
      matched_rates: inner error rates at which every run is interpolated and fitted.
      fit_seed: seed of the resampling of mu within its interval.
    """

    dims: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048)
    outer_radius: float = OUTER_RADIUS
    models: tuple[str, ...] = ("quad-w{dim}", "relu-w1000-d2")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(seeds=(0, 1, 2), checkpoints=12))
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    model_learning_rates: tuple[tuple[str, float], ...] = ()
    model_train: tuple[tuple[str, Any], ...] = ()
    select_max_error: float = 0.01
    matched_rates: tuple[float, ...] = (1e-2, 1e-4)
    fit_seed: int = 0

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
        common.check_model_train(self.model_train, self.train, self.models)
        check_float("select_max_error", self.select_max_error, 0.0, hi=1.0)
        if not isinstance(self.matched_rates, tuple):
            raise InputError("matched_rates", "must be a list of error rates in (0, 1/2)")
        for r in self.matched_rates:
            check_float("matched_rates", r, 0.0, lo_open=True, hi=0.5, hi_open=True)
        check_int("fit_seed", self.fit_seed, 0)

    def train_of(self, model: str) -> TrainConfig:
        """``train`` with the fields of ``model_train.<model>`` replaced."""
        return common.train_of(self.train, self.model_train, model)


def _law(key, rows: list[SweepRow]) -> dict[str, Any]:
    ok = [r for r in rows if r.selected and r.mu and 0 < r.mu < 0.5 and r.distance and r.distance_failures == 0
          and r.distance_se]
    fit = analysis.law_slope(key, [r.dim for r in ok], [r.mu for r in ok], [r.mu_lower for r in ok],
                             [r.mu_upper for r in ok], [r.distance for r in ok], [r.distance_se for r in ok])
    if fit is None:
        return {"slope": None, "n": len(ok), "dims": sorted({r.dim for r in ok}),
                "note": "too few points (need >= 3 selected checkpoints with 0 < mu < 1/2 and a complete d(E), "
                        "in >= 2 dimensions)"}
    return {"slope": fit.slope, "slope_se": fit.slope_se, "fit_se": fit.fit_se, "mu_se": fit.mu_se, "z": fit.z,
            "n": fit.n, "dims": list(fit.dims)}


def _matched(rows: list[SweepRow], rate: float, max_error: float) -> dict[str, Any]:
    """Each run's d(E) interpolated to the inner error rate ``rate``, divided by the bound there; slope in log d.

    The inner rate is matched by construction, so the rule here asks the OTHER sphere to be good:
    checkpoints whose outer error rate is at most ``max_error`` and whose d(E) is complete."""
    runs: dict[tuple, list[SweepRow]] = {}
    for r in rows:
        if r.mu_outer is not None and r.mu_outer <= max_error and r.distance_failures == 0:
            runs.setdefault((r.dim, r.seed, r.train_size, r.learning_rate), []).append(r)
    points = []
    for (dim, *_), rs in sorted(runs.items()):
        p = analysis.interpolate_at_rate(rate, [r.step for r in rs], [r.mu for r in rs],
                                         [r.distance for r in rs], [r.distance_se for r in rs])
        if p is not None:
            points.append((dim, p))
    out: dict[str, Any] = {"rate": rate, "runs": len(points), "dims": sorted({d for d, _ in points})}
    if len(points) < 3 or len(out["dims"]) < 2:
        return {**out, "slope": None, "note": "fewer than 3 runs in 2 dimensions reach this error rate"}
    dims = np.array([d for d, _ in points], np.float64)
    cap = theory.mean_distance_to_cap(rate, dims)
    dist = np.array([p.distance for _, p in points])
    se = np.array([max(p.distance_se, 1e-12) for _, p in points])
    law = analysis.linear_fit(np.log(dims), np.log(dist / cap), se / dist)
    raw = analysis.linear_fit(np.log(dims), np.log(dist), se / dist)
    cap_exp = analysis.linear_fit(np.log(dims), np.log(cap))
    return {**out, "slope": law.slope, "slope_se": law.slope_se, "z": law.slope / law.slope_se,
            "exponent": raw.slope, "exponent_se": raw.slope_se, "cap_exponent": cap_exp.slope}


def _fits(cfg: DimSweepConfig, rows: list[SweepRow]) -> dict[str, Any]:
    keys = jax.random.split(jax.random.key(cfg.fit_seed), len(cfg.models))
    fams = {}
    for k, m in zip(keys, cfg.models):
        sel = [r for r in rows if r.family == m]
        fams[m] = {"law": _law(k, sel), "matched": [_matched(sel, rate, cfg.select_max_error) for rate in cfg.matched_rates]}
    a, b = (fams[m]["law"] for m in cfg.models[:2]) if len(cfg.models) >= 2 else (None, None)
    disagree = None
    if a and b and a.get("slope") is not None and b.get("slope") is not None:
        disagree = abs(a["slope"] - b["slope"]) / float(np.hypot(a["slope_se"], b["slope_se"]))
    return {"families": fams, "families_differ_sigma": disagree, "rule": common.rule_text(cfg.select_max_error),
            "law": "slope of log(d(E) / d_cap(mu(E), d)) against log d; 0 when d(E) follows the exact cap bound's "
                   "dependence on d (the 1/sqrt(d) law, exactly)"}


def run(cfg: DimSweepConfig, ctx: Context) -> dict[str, Any]:
    rows: list[SweepRow] = []
    for dim in cfg.dims:
        task = TaskConfig(dim=dim, outer_radius=cfg.outer_radius)
        for template in cfg.models:
            model = template.format(dim=dim)
            exp = common.run_config(task, model, cfg.train_of(template),
                                    cfg.model_learning_rates, rate_key=template)
            common.log(f"[dimsweep] d = {dim}, {model}: {exp.train.ensemble_size} networks, {exp.train.steps} steps")
            rows += common.train_and_measure(exp, ctx.out / "runs" / f"d{dim}-{model}", cfg.measure, ctx.progress,
                                             row_type=SweepRow, family=template)
    rows = common.select(rows, cfg.select_max_error)
    write_rows(ctx.out / RESULTS, rows, SweepRow)
    fits = _fits(cfg, rows)
    write_json_atomic(ctx.out / FIT, fits)
    return {**common.summarise(rows, cfg.select_max_error), "fit": fits}


def draw(ctx: Context) -> list[Path]:
    return draw_dimsweep(ctx.out / RESULTS, ctx.out / FIT, ctx.out / "dimsweep_collapse.png",
                         ctx.out / "dimsweep_ratio.png")


def report(s: dict[str, Any], ctx: Context) -> Report:
    sci = common.sci
    findings = common.bound_findings("dimsweep", s)
    fit = s["fit"]
    lines = common.bound_lines(s) + [
        f"The exact law, per family ({fit['rule']}): slope of log(d(E) / d_cap(mu(E), d)) against log d (0 under the "
        "law; SE includes mu's interval), and the same with every run interpolated to a matched inner error rate "
        "between two checkpoints whose outer error is at most the threshold and whose d(E) is complete (with the raw exponent of d(E) in d beside the bound's own over the same dimensions; -1/2 only as d grows):",
        "", "| family | error rates | slope | SE | z | points | dimensions | raw exponent | bound's exponent |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for fam, f in fit["families"].items():
        law = f["law"]
        if law.get("slope") is None:
            lines.append(f"| {fam} | own | no fit | | | {law['n']} | {law['dims']} | | |")
            findings.append(f"dimsweep, {fam}: too few selected points to test the law ({law['n']}).")
        else:
            lines.append(f"| {fam} | own | {law['slope']:+.3f} | {law['slope_se']:.3f} | {law['z']:+.1f} | "
                         f"{law['n']} | {law['dims']} | | |")
            verdict = "consistent with" if abs(law["z"]) < 2 else "departs from"
            findings.append(f"dimsweep, {fam}: d(E)/d_cap changes with d at a slope {law['slope']:+.3f} +- "
                            f"{law['slope_se']:.3f} in log d ({law['n']} selected checkpoints in {len(law['dims'])} "
                            f"dimensions, d = {', '.join(map(str, law['dims']))}), z = {law['z']:+.1f}: {verdict} the "
                            "exact 1/sqrt(d) law.")
        for m in f["matched"]:
            if m.get("slope") is None:
                lines.append(f"| {fam} | {sci(m['rate'])} | not reached | | | {m['runs']} runs | {m['dims']} | | |")
                findings.append(f"dimsweep, {fam}, at the matched inner error rate {sci(m['rate'])}: no fit ({m['runs']} "
                                f"runs in {len(m['dims'])} dimensions reach it between two checkpoints that pass "
                                "the rule; the fit needs 3 runs in 2 dimensions).")
            else:
                verdict = "consistent with" if abs(m["z"]) < 2 else "departs from"
                findings.append(f"dimsweep, {fam}, every run interpolated to the matched inner error rate "
                                f"{sci(m['rate'])}: slope {m['slope']:+.3f} +- {m['slope_se']:.3f} in log d ({m['runs']} "
                                f"runs, d = {', '.join(map(str, m['dims']))}), z = {m['z']:+.1f}: {verdict} the exact "
                                f"1/sqrt(d) law (raw exponent of d(E) in d {m['exponent']:+.3f} +- "
                                f"{m['exponent_se']:.3f}, the bound's own {m['cap_exponent']:+.3f}).")
                lines.append(f"| {fam} | {sci(m['rate'])} | {m['slope']:+.3f} | {m['slope_se']:.3f} | "
                             f"{m['z']:+.1f} | {m['runs']} runs | {m['dims']} | {m['exponent']:+.3f} +- "
                             f"{m['exponent_se']:.3f} | {m['cap_exponent']:+.3f} |")
    if fit.get("families_differ_sigma") is not None:
        sig = fit["families_differ_sigma"]
        findings.append(f"dimsweep: the two families' slopes differ by {sig:.1f} standard errors"
                        + (": they disagree." if sig >= 2 else ": no significant disagreement."))
    return Report(tuple(findings), tuple(lines + [""]))


EXPERIMENT = Experiment(
    name="dimsweep", rank=30,
    description="The tradeoff measurements across dimensions: does d(E) shrink like 1/sqrt(d) at a fixed error rate?",
    config=DimSweepConfig, run=run, draw=draw, report=report,
    tables=(RESULTS, FIT),
    figures=(
        ("dimsweep_collapse.png", "d(E) sqrt(d) against Phi^-1(1 - mu(E)) for every dimension: if d(E) shrinks like "
         "1/sqrt(d) at fixed error rate, all dimensions fall on one curve."),
        ("dimsweep_ratio.png", "d(E) divided by the bound at the net's own error rate, against d."),
    ),
)
