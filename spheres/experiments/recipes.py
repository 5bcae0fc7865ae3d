"""Experiment ``recipes``: how fast each training recipe drives the error rate down, on both spheres.

For every model of ``models`` (``quad-w1000``: exact error rates; ``relu-w1000-d2``: Monte Carlo,
or splitting where Monte Carlo sees too few errors, with intervals) and every recipe of ``recipe``
(the paper's Adam at constant lr 1e-4, batch 50, and faster ones: higher peak rates with warm-up and a
cosine or linear decay, larger batches), one ensemble is trained online at ``task.dim``: its members
are ``train.seeds`` x the recipe's peak ``learning_rates`` (traced, swept), and every member is
measured at the log-spaced checkpoints of ``train.checkpoints`` on BOTH spheres. A member and a sphere
make one *curve* mu(t) of the error rate against the step t (samples seen = t x batch size).

The fit (:func:`fit_power_law`): over the last decade of a curve's checkpoints (``t >= t_last / 10``,
with mu > 0), a power law ``log10 mu = a + b log10 t`` by weighted least squares, the weights
``1 / s_i^2`` with ``s_i`` the half-width of mu's 95% interval in log10 divided by 1.96 (floored at
``LOG10_FLOOR`` so exact rates, whose scatter is the optimiser's, do not get infinite weight); the
covariance of (a, b) is scaled by the reduced chi-square when it exceeds 1. From it the steps to reach
a level L (:func:`steps_to_reach`) are ``t_L = 10^((log10 L - a) / b)`` (b < 0), with the delta-method
SE of log10 t_L from the covariance and a 95% interval ``10^(log10 t_L +- 1.96 SE)``. A level is
*measured* when the curve reaches it and stays there: the first checkpoint from which the upper end of
mu's interval (or the exact rate) is at most L at every later checkpoint too (an upper bound on the
step that crossed it; a rate that dips below L and rises again has not reached it). It is
*extrapolated* (marked so) with the fit when not. A curve reaches L on both spheres at the larger of its two
spheres' steps.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as scipy_stats

from spheres.core.config import check_float, load_section
from spheres.core.errors import InputError
from spheres.core.io import write_csv_atomic, write_json_atomic
from spheres.experiments import common
from spheres.experiments.base import Context, Experiment, Report
from spheres.measure.pipeline import MeasureConfig
from spheres.measure.results import ResultRow, write_rows
from spheres.nets.config import TaskConfig, TrainConfig

RESULTS = "recipes_results.csv"
STEPS = "recipes_steps.csv"
FIGURE = "recipes.png"
#: smallest standard deviation of log10 mu a checkpoint is given in the fit (exact rates have none)
LOG10_FLOOR = 0.05
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Recipe:
    """One training recipe: the fields of ``[train]`` it replaces (see :class:`~spheres.nets.config.TrainConfig`).

    Attributes:
      learning_rates: swept peak learning rates (a traced ensemble axis).
      batch_size: examples per step.
      schedule: ``constant``, ``warmup``, ``cosine`` or ``linear``.
      warmup_steps: warm-up length (0 with ``constant``).
      final_lr_fraction: end of a cosine or linear decay, as a fraction of the peak.
    """

    learning_rates: tuple[float, ...] = (1e-4,)
    batch_size: int = 50
    schedule: str = "constant"
    warmup_steps: int = 0
    final_lr_fraction: float = 0.0

    def train(self, base: TrainConfig) -> TrainConfig:
        """``base`` with this recipe's fields (validated by :class:`TrainConfig`)."""
        return dataclasses.replace(base, **dataclasses.asdict(self))


def _default_recipes() -> tuple[tuple[str, dict[str, Any]], ...]:
    return (("paper", {}),)


@dataclass(frozen=True)
class RecipesConfig:
    """The recipe study: ``models`` x ``recipe``, each an online ensemble of seeds x peak learning rates.

    Attributes:
      task: the two spheres.
      models: model names.
      train: the steps, checkpoints, seeds and chunking shared by every recipe (``train_sizes`` must be [0]).
      recipe: ``{name = {learning_rates, batch_size, schedule, warmup_steps, final_lr_fraction}}``.
      measure: the measurement budgets (few attacked points suffice: only the error rates are used).
      levels: error rates whose steps are reported.
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    models: tuple[str, ...] = ("quad-w1000", "relu-w1000-d2")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(checkpoints=12))
    recipe: tuple[tuple[str, Any], ...] = field(default_factory=_default_recipes)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    levels: tuple[float, ...] = (1e-4, 1e-6, 1e-8)

    def __post_init__(self):
        common.check_models(self.models)
        if self.train.train_sizes != (0,):
            raise InputError("train.train_sizes", "the recipe study trains online: must be [0]")
        if not isinstance(self.recipe, tuple) or not self.recipe:
            raise InputError("recipe", "must be a table of at least one recipe: [recipes.recipe.NAME]")
        for name, table in self.recipe:
            if not isinstance(table, (dict, Recipe)):
                raise InputError(f"recipe.{name}", "must be a table (learning_rates, batch_size, schedule, ...)")
            try:
                self.recipes[name].train(self.train)
            except InputError as err:  # the recipe's own field, not [train]'s
                raise InputError(f"recipe.{name}.{err.field.removeprefix('train.')}", err.detail) from None
        if not isinstance(self.levels, tuple) or not self.levels:
            raise InputError("levels", "must be a non-empty list of error rates in (0, 1/2)")
        for v in self.levels:
            check_float("levels", v, 0.0, lo_open=True, hi=0.5, hi_open=True)

    @property
    def recipes(self) -> dict[str, Recipe]:
        return {name: t if isinstance(t, Recipe) else load_section(Recipe, t, f"recipe.{name}")
                for name, t in self.recipe}


@dataclass(frozen=True)
class RecipeRow(ResultRow):
    """A :class:`ResultRow` of the recipe study, with its recipe's name and fields."""

    recipe: str = ""
    batch_size: int = 0
    schedule: str = ""
    warmup_steps: int = 0
    final_lr_fraction: float = 0.0


class PowerLaw(NamedTuple):
    """``log10 mu = intercept + slope * log10 t``, fitted by :func:`fit_power_law`.

    Attributes:
      intercept, slope: the coefficients (floats).
      cov: their covariance, shape ``(2, 2)`` (order: intercept, slope).
      n: points fitted.
      t_min, t_max: the range of steps fitted.
      chi2: the reduced chi-square of the weighted residuals (``nan``: not recorded).
      dof: its degrees of freedom, ``n - 2``.
    """

    intercept: float
    slope: float
    cov: np.ndarray
    n: int
    t_min: float
    t_max: float
    chi2: float = math.nan
    dof: int = 0

    @property
    def p_value(self) -> float | None:
        """P(chi-square >= the observed one) under the power law with the stated errors (``None``: no dof)."""
        if self.dof < 1 or not math.isfinite(self.chi2):
            return None
        return float(scipy_stats.chi2.sf(self.chi2 * self.dof, self.dof))

    @property
    def quantile(self) -> float:
        """The 95% two-sided multiplier of an SE: Student's t with ``dof`` degrees of freedom where the
        covariance was scaled by the residuals (chi2 > 1: the scatter is estimated from them), else the
        normal one (the stated errors explain the scatter)."""
        if self.dof >= 1 and math.isfinite(self.chi2) and self.chi2 > 1.0:
            return float(scipy_stats.t.ppf(0.975, self.dof))
        return Z95

    @property
    def slope_se(self) -> float:
        return float(math.sqrt(self.cov[1, 1]))


def log10_sigma(mu: float, lower: float | None, upper: float | None) -> float:
    """SD of log10 mu from its 95% interval (half-width / 1.96), floored at :data:`LOG10_FLOOR`.

    >>> log10_sigma(1e-4, None, None)
    0.05
    >>> round(log10_sigma(1e-4, 1e-5, 1e-3), 6)
    0.510213
    """
    if lower is None or upper is None or not (lower > 0 and upper > 0):
        return LOG10_FLOOR
    return max((math.log10(upper) - math.log10(lower)) / (2 * Z95), LOG10_FLOOR)


def fit_power_law(steps: Any, mu: Any, sigma: Any, decades: float = 1.0) -> PowerLaw | None:
    """Weighted least squares of log10 mu on log10 t over the last ``decades`` of steps.

    Args:
      steps: shape ``(n,)``, checkpoint steps > 0.
      mu: shape ``(n,)``, error rates (points with mu <= 0 are left out: no logarithm).
      sigma: shape ``(n,)``, SD of log10 mu (> 0).
      decades: fit the points with ``t >= t_max / 10^decades``.
    Returns:
      :class:`PowerLaw`, or ``None`` with fewer than 3 usable points in the window.

    >>> t = np.array([100., 200., 400., 800.])
    >>> f = fit_power_law(t, 0.5 * t ** -1.5, np.full(4, 0.05))
    >>> round(f.slope, 6), round(f.intercept, 6)
    (-1.5, -0.30103)
    """
    t = np.asarray(steps, np.float64)
    m = np.asarray(mu, np.float64)
    s = np.asarray(sigma, np.float64)
    if not (t.shape == m.shape == s.shape and t.ndim == 1):
        raise ValueError(f"steps, mu and sigma need one shape (n,), got {t.shape}, {m.shape}, {s.shape}")
    ok = (t > 0) & (m > 0) & np.isfinite(m)
    if not ok.any():
        return None
    window = ok & (t >= t[ok].max() / 10.0**decades)
    if window.sum() < 3:
        return None
    x, y, w = np.log10(t[window]), np.log10(m[window]), 1.0 / s[window] ** 2
    design = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    coef = cov @ design.T @ (w * y)
    resid = y - design @ coef
    chi2 = float(np.sum(w * resid**2)) / max(x.size - 2, 1)
    cov = cov * max(chi2, 1.0)
    return PowerLaw(float(coef[0]), float(coef[1]), cov, int(x.size), float(t[window].min()), float(t[window].max()),
                    chi2, int(x.size - 2))


class Reach(NamedTuple):
    """The steps a curve needs to reach an error rate.

    Attributes:
      steps: the first checkpoint that reaches it (measured) or the fit's ``t_L`` (extrapolated);
        ``None`` when neither is available (no fit, or a fit whose rate does not fall).
      lower, upper: 95% interval of an extrapolated ``t_L`` (equal to ``steps`` when measured).
      log10_se: SE of log10 t_L (0 when measured).
      extrapolated: whether ``steps`` comes from the fit.
    """

    steps: float | None
    lower: float | None
    upper: float | None
    log10_se: float | None
    extrapolated: bool


def extrapolate(fit: PowerLaw, level: float) -> Reach:
    """``t_L = 10^((log10 L - a) / b)`` with the delta-method SE and a 95% interval of
    ``fit.quantile`` SEs (Student's t where the residuals set the scale); no answer when the slope is
    not negative.

    >>> f = PowerLaw(0.0, -1.0, np.diag([1e-4, 1e-4]), 5, 10.0, 100.0)
    >>> r = extrapolate(f, 1e-6)
    >>> round(r.steps), round(r.log10_se, 6)
    (1000000, 0.060828)
    >>> extrapolate(PowerLaw(0.0, -1e-3, np.diag([1e-4, 1e-4]), 5, 10.0, 100.0), 1e-8).steps
    inf
    """
    if not fit.slope < 0:
        return Reach(None, None, None, None, True)
    g = (math.log10(level) - fit.intercept) / fit.slope
    grad = np.array([-1.0 / fit.slope, -g / fit.slope])
    se = float(math.sqrt(max(grad @ fit.cov @ grad, 0.0)))
    q = fit.quantile
    return Reach(_pow10(g), _pow10(g - q * se), _pow10(g + q * se), se, True)


def predict(fit: PowerLaw, t: float, sigma: float = 0.0) -> tuple[float, float, float]:
    """The fit's log10 mu at step ``t`` and the 95% interval of one new observation there:
    ``fit.quantile`` SEs of ``sqrt(g' cov g + sigma^2 max(chi2, 1))`` with ``g = (1, log10 t)``, where
    ``sigma`` is the new observation's own SD of log10 mu (:func:`log10_sigma`), scaled like the fit's
    errors when the residuals exceed them. Returns ``(log10 mu, lower, upper)``.

    >>> f = PowerLaw(0.0, -1.0, np.diag([1e-4, 1e-4]), 5, 10.0, 100.0)
    >>> [round(v, 4) for v in predict(f, 1000.0)]
    [-3.0, -3.062, -2.938]
    """
    g = np.array([1.0, math.log10(t)])
    centre = float(fit.intercept + fit.slope * g[1])
    scale = max(fit.chi2, 1.0) if math.isfinite(fit.chi2) else 1.0
    se = float(math.sqrt(max(g @ fit.cov @ g, 0.0) + sigma**2 * scale))
    return centre, centre - fit.quantile * se, centre + fit.quantile * se


def stated_z(fit: PowerLaw, t: float, log10_mu: float, sigma: float) -> float:
    """How many SDs an observed log10 mu at step ``t`` lies from the fit, with the STATED errors only
    (the fit's covariance unscaled by its residuals, and ``sigma`` as given): a normal deviate when
    the power law and the errors hold, so ``|z| > 1.96`` rejects the pair at 5% even where the
    residual-scaled interval of :func:`predict` is too wide to."""
    g = np.array([1.0, math.log10(t)])
    scale = max(fit.chi2, 1.0) if math.isfinite(fit.chi2) else 1.0
    var = float(g @ fit.cov @ g) / scale + sigma**2
    return (log10_mu - float(fit.intercept + fit.slope * g[1])) / math.sqrt(max(var, 1e-300))


def _pow10(x: float) -> float:
    """``10^x``, ``inf`` beyond the float range (a nearly flat fit's steps to a far level)."""
    return math.inf if x > 300 else 10.0**x


def steps_to_reach(steps: Any, mu: Any, upper: Any, fit: PowerLaw | None, level: float) -> Reach:
    """Measured where the curve reaches ``level`` and stays (the first checkpoint from which every
    ``upper`` is at most ``level``, the last one included), else extrapolated.

    Args:
      steps, mu, upper: shape ``(n,)``: checkpoint steps, error rates and the upper ends of their
        intervals (equal to mu for exact rates).
      fit: the curve's :func:`fit_power_law` (``None``: no extrapolation).
      level: the error rate to reach.
    """
    order = np.argsort(np.asarray(steps, np.float64))
    first = None
    for i in order:  # the start of the final run of checkpoints at or below the level
        u = upper[i] if upper[i] is not None else mu[i]
        if u is not None and u <= level:
            first = i if first is None else first
        else:
            first = None
    if first is not None:
        t = float(steps[first])
        return Reach(t, t, t, 0.0, False)
    if fit is None:
        return Reach(None, None, None, None, True)
    r = extrapolate(fit, level)
    if r.steps is None:
        return r
    # not reached by the last checkpoint: no answer below it, whatever the fit says
    last = float(np.max(np.asarray(steps, np.float64)))
    return Reach(max(r.steps, last), max(r.lower, last), max(r.upper, last), r.log10_se, True)


def upper_end(r: ResultRow, sphere: str) -> float | None:
    """The upper end of a row's error-rate interval on ``sphere`` (the rate itself where it is exact)."""
    mu, up, method = ((r.mu, r.mu_upper, r.mu_method) if sphere == "inner"
                      else (r.mu_outer, r.mu_outer_upper, r.mu_outer_method))
    return mu if method == "exact" else up


def _curves(rows: list[RecipeRow]) -> dict[tuple, list[RecipeRow]]:
    out: dict[tuple, list[RecipeRow]] = {}
    for r in rows:
        out.setdefault((r.model, r.recipe, r.learning_rate, r.seed), []).append(r)
    return {k: sorted(v, key=lambda r: r.step) for k, v in sorted(out.items())}


def curve_fit(rs: list[RecipeRow], sphere: str, decades: float = 1.0) -> PowerLaw | None:
    """:func:`fit_power_law` of one curve's rows on ``sphere`` (``"inner"`` or ``"outer"``) over its
    last ``decades`` of steps."""
    g = ((lambda r: (r.mu, r.mu_lower, r.mu_upper)) if sphere == "inner"
         else (lambda r: (r.mu_outer, r.mu_outer_lower, r.mu_outer_upper)))
    pts = [(r.step, *g(r)) for r in rs if g(r)[0] is not None]
    if not pts:
        return None
    return fit_power_law([p[0] for p in pts], [p[1] for p in pts], [log10_sigma(*p[1:]) for p in pts], decades)


def curve_reach(rs: list[ResultRow], level: float, fits: dict[str, PowerLaw | None] | None = None
                ) -> tuple[dict[str, Reach], str | None]:
    """The steps one curve (the checkpoints of one net, sorted by step) needs to reach ``level`` on each
    sphere (:func:`steps_to_reach` with :func:`curve_fit`, or the given ``fits``), and the limiting
    sphere (the one that needs more; ``None`` when either has no answer)."""
    fits = fits or {s: curve_fit(rs, s) for s in ("inner", "outer")}
    reach = {}
    for s in ("inner", "outer"):
        mu = [r.mu if s == "inner" else r.mu_outer for r in rs]
        reach[s] = steps_to_reach([r.step for r in rs], mu, [upper_end(r, s) for r in rs], fits[s], level)
    both = (max(("inner", "outer"), key=lambda s: reach[s].steps)
            if all(reach[s].steps is not None for s in reach) else None)
    return reach, both


def reach_table(rows: list[RecipeRow], levels: tuple[float, ...]) -> list[dict[str, Any]]:
    """One row per curve (model, recipe, lr, seed) x level: steps per sphere and on both, with the fit."""
    out = []
    for (model, recipe, lr, seed), rs in _curves(rows).items():
        fits = {s: curve_fit(rs, s) for s in ("inner", "outer")}
        for level in levels:
            reach, both = curve_reach(rs, level, fits)
            row = {"model": model, "recipe": recipe, "learning_rate": lr, "seed": seed,
                   "batch_size": rs[0].batch_size, "last_step": rs[-1].step, "level": level}
            for s in ("inner", "outer"):
                f, r = fits[s], reach[s]
                row.update({f"slope_{s}": None if f is None else f.slope,
                            f"intercept_{s}": None if f is None else f.intercept,
                            f"slope_{s}_se": None if f is None else f.slope_se,
                            f"fit_points_{s}": 0 if f is None else f.n,
                            f"steps_{s}": r.steps, f"steps_{s}_lower": r.lower, f"steps_{s}_upper": r.upper,
                            f"extrapolated_{s}": int(r.extrapolated)})
            b = reach[both] if both else Reach(None, None, None, None, True)
            row.update({"steps_both": b.steps, "steps_both_lower": b.lower, "steps_both_upper": b.upper,
                        "extrapolated_both": int(b.extrapolated), "limiting_sphere": both or "",
                        "samples_both": None if b.steps is None else b.steps * rs[0].batch_size})
            out.append(row)
    return out


STEP_COLUMNS = ["model", "recipe", "learning_rate", "seed", "batch_size", "last_step", "level",
                *[f"{k}_{s}" for s in ("inner", "outer") for k in ("slope", "intercept")],
                *[f"slope_{s}_se" for s in ("inner", "outer")],
                *[f"fit_points_{s}" for s in ("inner", "outer")],
                *[f"steps_{s}{x}" for s in ("inner", "outer", "both") for x in ("", "_lower", "_upper")],
                *[f"extrapolated_{s}" for s in ("inner", "outer", "both")], "limiting_sphere", "samples_both"]


def run(cfg: RecipesConfig, ctx: Context) -> dict[str, Any]:
    rows: list[RecipeRow] = []
    for model in cfg.models:
        for name, recipe in cfg.recipes.items():
            exp = common.run_config(cfg.task, model, recipe.train(cfg.train))
            common.log(f"[recipes] {model}, recipe {name}: {exp.train.ensemble_size} networks, "
                       f"{exp.train.steps} steps of batch {recipe.batch_size}")
            rows += common.train_and_measure(
                exp, ctx.out / "runs" / f"{model}-{name}", cfg.measure, ctx.progress, row_type=RecipeRow,
                recipe=name, batch_size=recipe.batch_size, schedule=recipe.schedule,
                warmup_steps=recipe.warmup_steps, final_lr_fraction=recipe.final_lr_fraction)
    write_rows(ctx.out / RESULTS, rows, RecipeRow)
    reach = reach_table(rows, cfg.levels)
    write_csv_atomic(ctx.out / STEPS, reach, STEP_COLUMNS)
    write_json_atomic(ctx.out / "levels.json", {"levels": list(cfg.levels)})
    return summarise(reach, cfg.levels)


def best(reach: list[dict[str, Any]], model: str, level: float) -> dict[str, Any] | None:
    """The curve of ``model`` that reaches ``level`` on both spheres in the fewest steps (measured first)."""
    cands = [r for r in reach if r["model"] == model and r["level"] == level and r["steps_both"] is not None]
    return min(cands, key=lambda r: (r["extrapolated_both"], r["steps_both"]), default=None)


def summarise(reach: list[dict[str, Any]], levels: tuple[float, ...]) -> dict[str, Any]:
    """Per model and level, the best curve (fewest steps on both spheres) and every recipe's best."""
    models = sorted({r["model"] for r in reach})
    out: dict[str, Any] = {"curves": len({(r["model"], r["recipe"], r["learning_rate"], r["seed"]) for r in reach}),
                           "levels": list(levels), "models": {}}
    for m in models:
        per = {}
        for level in levels:
            recs = {}
            for rec in sorted({r["recipe"] for r in reach if r["model"] == m}):
                b = best([r for r in reach if r["recipe"] == rec], m, level)
                recs[rec] = b
            per[str(level)] = {"best": best(reach, m, level), "recipes": recs}
        out["models"][m] = per
    return out


def _steps_text(r: dict[str, Any] | None) -> str:
    sci = common.sci
    if r is None or r["steps_both"] is None:
        return "not reached, no falling fit"
    if not r["extrapolated_both"]:
        return f"{sci(r['steps_both'])} steps (measured)"
    if not math.isfinite(r["steps_both"]):
        return (f"beyond 1e300 steps (extrapolated: the {r['limiting_sphere']} sphere's fit is nearly flat), "
                "i.e. not reached by this recipe")
    return (f"{sci(r['steps_both'])} steps [95% {sci(r['steps_both_lower'])}, {sci(r['steps_both_upper'])}] "
            f"(extrapolated, {r['limiting_sphere']} sphere limiting)")


def report(s: dict[str, Any], ctx: Context) -> Report:
    findings, lines = [], []
    rule = ("over each curve (model x recipe x peak lr x seed, both spheres), power law log mu = a + b log t fitted "
            "by weighted least squares to the checkpoints of the last decade of steps; measured where a checkpoint's "
            "95% upper end is at or below the level")
    for m, per in s["models"].items():
        for level in s["levels"]:
            b = per[str(level)]["best"]
            if b is None:
                findings.append(f"recipes, {m}: no curve of {s['curves']} reaches {level:g} on both spheres or has a "
                                f"falling fit ({rule}).")
                continue
            findings.append(
                f"recipes, {m}: the fastest recipe to error rate {level:g} on both spheres is {b['recipe']} "
                f"(peak lr {b['learning_rate']:g}, batch {b['batch_size']}, seed {b['seed']}): {_steps_text(b)}, "
                f"= {common.sci(b['samples_both'])} samples; fit slopes inner {common.sci(b['slope_inner'])} +- "
                f"{common.sci(b['slope_inner_se'], 1)} ({b['fit_points_inner']} points), outer "
                f"{common.sci(b['slope_outer'])} +- {common.sci(b['slope_outer_se'], 1)} "
                f"({b['fit_points_outer']} points); {rule}; {s['curves']} curves in all."
                + (" Extrapolated: how this curve's own decay would continue (its late checkpoints fall with its "
                   "learning-rate decay), not what a longer schedule of the same shape reaches; the tradeoff's "
                   "end-of-schedule law, where the preset runs one, measures that." if b["extrapolated_both"] else ""))
    lines += ["| model | recipe | level | fastest member: steps on both spheres [95%] | samples |",
              "| --- | --- | --- | --- | --- |"]
    for m, per in s["models"].items():
        for level in s["levels"]:
            for rec, b in per[str(level)]["recipes"].items():
                lines.append(f"| {m} | {rec} | {level:g} | {_steps_text(b)} | "
                             f"{common.sci(None if b is None else b['samples_both'])} |")
    return Report(tuple(findings), tuple(lines + [""]))


def draw(ctx: Context) -> list[Path]:
    from spheres.plotting.recipes import draw_recipes

    return [draw_recipes(ctx.out / RESULTS, ctx.out / STEPS, ctx.out / FIGURE)]


EXPERIMENT = Experiment(
    name="recipes", rank=15,
    description="The recipe study: error rate on both spheres against training step for the paper's recipe "
                "(Adam, constant lr 1e-4, batch 50) and faster ones, with a power-law fit over the last decade "
                "of checkpoints and the steps each recipe needs to reach 1e-4, 1e-6 and 1e-8.",
    config=RecipesConfig, run=run, draw=draw, report=report,
    tables=(RESULTS, STEPS),
    figures=((FIGURE, "Error rate on the inner (left) and outer (right) sphere against training step (log-log; "
              "samples seen = step x batch on the top axis of each recipe's batch), one line per model, recipe and "
              "peak lr, with 95% intervals (Monte Carlo / splitting; exact for the quad net) and the power-law fit "
              "over the last decade extended to 1e-8 (dashed)."),),
)
