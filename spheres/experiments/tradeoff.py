"""Experiment ``tradeoff`` (the paper's Fig. 4): error rate against distance to the nearest error.

Each model of ``models`` is trained on every training-set size of ``train.train_sizes`` (0 =
online) and seed, as one ensemble per model; at every checkpoint the pipeline measures the
inner-sphere mu(E) (exact for the quad net; Monte Carlo, or splitting where Monte Carlo sees too few
errors) and d(E) by the on-manifold attack, and each point is set against the exact cap bound.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from spheres.core.config import check_float, to_table
from spheres.core.errors import InputError
from spheres.core.io import json_safe, write_json_atomic
from spheres.experiments import common
from spheres.experiments.base import Context, Experiment, Report
from spheres.measure.pipeline import MeasureConfig
from spheres.measure.results import ResultRow, read_rows, write_rows
from spheres.nets.config import TaskConfig, TrainConfig
from spheres.plotting._common import load_json
from spheres.plotting.tradeoff import draw_law_test, draw_tradeoff

RESULTS = "results.csv"
#: the end-of-schedule law of the extra runs (:func:`schedule_law`; ``[]`` when no group has 2 lengths,
#: ``steps = None`` where a sphere has fewer than 3)
SCHEDULE_LAW = "schedule_law.json"
#: the test of an earlier end-of-schedule law (``prior_law``) by this run's schedules (:func:`law_tests`; ``[]``
#: without one)
LAW_TEST = "law_test.json"
LAW_TEST_FIGURE = "law_test.png"


@dataclass(frozen=True)
class TradeoffConfig:
    """Fig. 4: ``models`` x ``train.train_sizes`` x ``train.seeds`` (x ``train.learning_rates``) at ``task.dim``.

    Attributes:
      task: the two spheres (dimension, outer radius).
      models: model names (:func:`spheres.nets.config.parse_model_name`).
      train: the training recipe and the ensemble grid of every model.
      measure: the measurement budgets.
      model_learning_rates: ``{model = lr}`` overriding ``train.learning_rates`` for that model.
      model_train: ``{model = {field = value}}`` replacing fields of ``train`` for that model (e.g. a
        costly net trained online only, with fewer steps: ``{steps = 3000, train_sizes = [0]}``).
      extra_runs: ``{label = {model = name, field = value}}``: further training runs of a model of
        ``models`` on their own recipe (the model's training with these [train] fields replaced), in
        ``runs/<label>``; their rows carry ``run = label`` (e.g. the online net on a long batch-500
        schedule beside the ensemble of every training-set size at batch 50).
      select_max_error: the findings speak about checkpoints whose error rate is at most this on BOTH
        spheres (the others stay in the table and the figure, marked).
      paper_smallest_mu: the error rate the paper's nets went below, quoted beside the run's (a number
        from the paper, given in the preset; not computed).
      prior_law: an earlier tradeoff's end-of-schedule law (its ``schedule_law.json``, curated as
        ``figures/tradeoff_schedule_law.json``; a path from the working directory), tested by this run's
        schedules of other lengths on the same net (:func:`law_tests`); ``""``: none. The law records the
        model, dimension, training-set size, seed, learning rate and batch size (checked); that the
        schedule's shape (optimiser, decay, warm-up) is the same is the config's claim.
      prior_results: that tradeoff's results table (``figures/tradeoff_results.csv``), which holds the
        law's end points with their intervals; required with ``prior_law``.
    """

    task: TaskConfig = field(default_factory=TaskConfig)
    models: tuple[str, ...] = ("quad-w1000", "relu-w1000-d2", "relu-w2000-d8")
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        train_sizes=(0, 1000, 5623, 31623, 177828, 1000000), checkpoints=12))
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    model_learning_rates: tuple[tuple[str, float], ...] = ()
    model_train: tuple[tuple[str, Any], ...] = ()
    extra_runs: tuple[tuple[str, Any], ...] = ()
    select_max_error: float = 0.01
    paper_smallest_mu: float | None = None
    prior_law: str = ""
    prior_results: str = ""

    RENAMED: ClassVar[dict[str, str]] = {
        "recipe": "renamed: use [tradeoff.train] (a training section: steps, batch_size, learning_rates = [lr], "
                  "checkpoints, chunk_steps, with train_sizes and seeds)",
        "dim": "moved: use [tradeoff.task] dim", "outer_radius": "moved: use [tradeoff.task] outer_radius",
        "train_sizes": "moved: use [tradeoff.train] train_sizes", "seeds": "moved: use [tradeoff.train] seeds",
    }

    def __post_init__(self):
        common.check_models(self.models)
        common.check_learning_rates(self.model_learning_rates, self.models)
        common.check_model_train(self.model_train, self.train, self.models)
        for label, _, _ in self.extra_run_trains():
            if label in self.models:
                raise InputError(f"extra_runs.{label}", "a run label must differ from the model names")
        check_float("select_max_error", self.select_max_error, 0.0, hi=1.0)
        if self.paper_smallest_mu is not None:
            check_float("paper_smallest_mu", self.paper_smallest_mu, 0.0, lo_open=True, hi=1.0)
        for name in ("prior_law", "prior_results"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise InputError(name, f"must be a path (a string), got {value!r}")
            if value and not Path(value).is_file():
                raise InputError(name, f"no such file: {value} (a path from the working directory)")
        if bool(self.prior_law) != bool(self.prior_results):
            raise InputError("prior_results" if self.prior_law else "prior_law",
                             "prior_law and prior_results go together (the law and the table of its end points)")

    def train_of(self, model: str) -> TrainConfig:
        """``train`` with the fields of ``model_train.<model>`` replaced."""
        return common.train_of(self.train, self.model_train, model)

    def extra_run_trains(self) -> list[tuple[str, str, TrainConfig]]:
        """``(label, model, train)`` of every run of ``extra_runs`` (validated)."""
        if not isinstance(self.extra_runs, tuple) or any(
                not isinstance(p, tuple) or len(p) != 2 or not isinstance(p[1], dict) for p in self.extra_runs):
            raise InputError("extra_runs", "must be a table of label = {model = name, train field = value}")
        out = []
        for label, table in self.extra_runs:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]{0,63}", label) or label.lower() in ("inf", "nan"):
                raise InputError(f"extra_runs.{label}", "a label is a letter and up to 63 letters, digits, '.', "
                                                        "'_' or '-' (it names a directory and a table column)")
            table = dict(table)
            model = table.pop("model", None)
            if model not in self.models:
                raise InputError(f"extra_runs.{label}.model", f"must be one of models {list(self.models)}, "
                                                              f"got {model!r}")
            base = self.train_of(model)
            lr = dict(self.model_learning_rates).get(model)
            if lr is not None:  # the model's own rate unless the run sets its own
                base = dataclasses.replace(base, learning_rates=(lr,))
            train = common.train_of(base, ((label, table),), label, field="extra_runs")
            out.append((label, model, train))
        return out


def run(cfg: TradeoffConfig, ctx: Context) -> dict[str, Any]:
    rows: list[ResultRow] = []
    for model in cfg.models:
        exp = common.run_config(cfg.task, model, cfg.train_of(model), cfg.model_learning_rates)
        common.log(f"[tradeoff] {model}: {exp.train.ensemble_size} networks at d = {cfg.task.dim}, "
                   f"{exp.train.steps} steps")
        rows += common.train_and_measure(exp, ctx.out / "runs" / model, cfg.measure, ctx.progress)
    for label, model, train in cfg.extra_run_trains():
        exp = common.run_config(cfg.task, model, train)
        common.log(f"[tradeoff] {label} ({model}): {exp.train.ensemble_size} networks at d = {cfg.task.dim}, "
                   f"{exp.train.steps} steps at batch {exp.train.batch_size}")
        rows += common.train_and_measure(exp, ctx.out / "runs" / label, cfg.measure, ctx.progress, run=label)
    rows = common.select(rows, cfg.select_max_error)
    write_rows(ctx.out / RESULTS, rows)
    common.write_selection(ctx.out, cfg.select_max_error)
    law = schedule_law(rows, schedule_groups(cfg))
    write_json_atomic(ctx.out / SCHEDULE_LAW, json_safe(law))
    tests = law_tests(rows, cfg) if cfg.prior_law else []
    write_json_atomic(ctx.out / LAW_TEST, json_safe(tests))
    return {**common.summarise(rows, cfg.select_max_error), "paper_smallest_mu": cfg.paper_smallest_mu,
            "extra_runs": extra_run_stats(rows), "schedule_law": law, "law_test": tests}


#: the [train] fields that set a schedule's length (and where it is checkpointed), not its shape
LENGTH_FIELDS = ("steps", "checkpoints", "extra_checkpoints", "chunk_steps")


def schedule_groups(cfg: TradeoffConfig) -> dict[str, tuple[list[tuple[str, int]], int]]:
    """The extra runs that train one model on one recipe and differ only in the schedule's length
    (:data:`LENGTH_FIELDS`), at least two lengths each: ``{group name: ([(label, steps), ...] by
    steps, batch size)}``."""
    groups: dict[str, tuple[list[tuple[str, int]], int]] = {}
    for label, model, train in cfg.extra_run_trains():
        shape = {k: v for k, v in to_table(train).items() if k not in LENGTH_FIELDS}
        groups.setdefault(json.dumps([model, shape], sort_keys=True), ([], train.batch_size))[0].append(
            (label, train.steps))
    out = {}
    for members, batch in groups.values():
        if len({n for _, n in members}) >= 2:
            members = sorted(members, key=lambda m: m[1])
            out[" + ".join(label for label, _ in members)] = (members, batch)
    return out


def schedule_law(rows: list[ResultRow], groups: dict[str, tuple[list[tuple[str, int]], int]],
                 level: float = common.LOW_ERROR) -> list[dict[str, Any]]:
    """The error rate at the END of a schedule against its length S, per group of
    :func:`schedule_groups` and net (training-set size, seed, lr): on each sphere the recipe study's
    weighted power-law fit of log10 mu on log10 S over every run's last checkpoint (at least 3
    lengths), and the S at which it reaches ``level`` on both spheres (extrapolated, with its 95%
    interval). Unlike one schedule's own curve, whose late checkpoints fall with its learning-rate
    decay, this is what a longer schedule of the same shape buys."""
    from spheres.experiments import recipes

    out = []
    for name, (members, batch) in groups.items():
        steps = dict(members)
        ends: dict[tuple, list[ResultRow]] = {}
        for r in rows:
            if r.run in steps and r.step == steps[r.run]:
                ends.setdefault((r.model, r.train_size, r.seed, r.learning_rate), []).append(r)
        for (model, n, seed, lr), rs in sorted(ends.items()):
            rs = sorted(rs, key=lambda r: r.step)
            entry = {"group": name, "runs": [r.run for r in rs], "model": model, "dim": rs[0].dim, "train_size": n,
                     "seed": seed, "learning_rate": lr, "batch_size": batch, "lengths": [r.step for r in rs], "level": level,
                     "mu_inner": [r.mu for r in rs], "mu_outer": [r.mu_outer for r in rs],
                     "mu_inner_upper": [recipes.upper_end(r, "inner") for r in rs],
                     "mu_outer_upper": [recipes.upper_end(r, "outer") for r in rs]}
            fits = {sp: recipes.curve_fit(rs, sp, decades=math.inf) for sp in ("inner", "outer")}  # every length
            for sphere, fit in fits.items():
                entry.update({f"slope_{sphere}": None if fit is None else fit.slope,
                              f"slope_{sphere}_se": None if fit is None else fit.slope_se,
                              f"fit_points_{sphere}": 0 if fit is None else fit.n,
                              f"chi2_{sphere}": None if fit is None else fit.chi2,
                              f"dof_{sphere}": None if fit is None else fit.dof,
                              f"p_value_{sphere}": None if fit is None else fit.p_value,
                              f"quantile_{sphere}": None if fit is None else fit.quantile})
            # the lengths as one curve: the reach rule, and no answer below the longest length run
            entry.update(reach_fields(*recipes.curve_reach(rs, level, fits)))
            out.append(entry)
    return out


def reach_fields(reach: dict[str, Any], both: str | None, prefix: str = "") -> dict[str, Any]:
    """The steps to a level on both spheres (:func:`spheres.experiments.recipes.curve_reach`'s answer) as
    JSON fields ``limiting_sphere``, ``steps``, ``steps_lower``, ``steps_upper`` and ``extrapolated``
    (each ``None`` without an answer), their names prefixed by ``prefix``."""
    b = reach[both] if both else None
    return {f"{prefix}limiting_sphere": both, f"{prefix}steps": None if b is None else b.steps,
            f"{prefix}steps_lower": None if b is None else b.lower, f"{prefix}steps_upper": None if b is None else b.upper,
            f"{prefix}extrapolated": None if b is None else bool(b.extrapolated)}


def _schedule_law_findings(s: dict[str, Any]) -> list[str]:
    sci = common.sci
    out = []
    for e in s.get("schedule_law", []):
        lengths = ", ".join(f"{t:,}" for t in e["lengths"])
        head = (f"tradeoff: end-of-schedule law of {e['model']} (runs {', '.join(e['runs'])}; schedules of "
                f"{lengths} steps of one recipe): the error rate at the end of a schedule of S steps")
        if e["steps"] is None:
            out.append(head + f" gives no extrapolation to {sci(e['level'])} (fewer than 3 lengths with a "
                              "positive rate on a sphere, or a rate that does not fall).")
            continue
        fits = []
        for sp in ("inner", "outer"):
            p = e.get(f"p_value_{sp}")
            verdict = ("" if p is None else f", chi2/dof {e[f'chi2_{sp}']:.2g} on {e[f'dof_{sp}']} dof, p = {p:.2g}"
                       + (": the power law is REJECTED there" if p < 0.05 else ""))
            fits.append(f"{e[f'slope_{sp}']:.2f} +- {e[f'slope_{sp}_se']:.2f} {sp} ({e[f'fit_points_{sp}']} lengths"
                        f"{verdict})")
        lim = e["limiting_sphere"]
        out.append(head + f" falls as S^b with b = {fits[0]} and {fits[1]} (weighted fit of log10 mu on log10 S, "
                   f"errors scaled by the scatter where it exceeds them); it puts {sci(e['level'])} on both spheres "
                   f"at S = {sci(e['steps'])} steps [95%: {sci(e['steps_lower'])}, {sci(e['steps_upper'])}, Student's "
                   f"t x {e[f'quantile_{lim}']:.3g} SE] (the {lim} sphere limits), {e['steps'] / max(e['lengths']):.1f}x "
                   f"the longest schedule run. One seed per length: run-to-run scatter enters only through the fit's "
                   f"residuals.")
    return out


def _fit_entry(fit) -> dict[str, Any]:
    """A :class:`~spheres.experiments.recipes.PowerLaw` as JSON fields (``None`` where there is no fit)."""
    if fit is None:
        return {"intercept": None, "slope": None, "cov": None, "points": 0, "chi2": None, "dof": None,
                "p_value": None, "quantile": None}
    return {"intercept": fit.intercept, "slope": fit.slope, "cov": np.asarray(fit.cov).tolist(), "points": fit.n,
            "chi2": fit.chi2, "dof": fit.dof, "p_value": fit.p_value, "quantile": fit.quantile}


def law_tests(rows: list[ResultRow], cfg: TradeoffConfig) -> list[dict[str, Any]]:
    """The earlier end-of-schedule law of ``cfg.prior_law`` tested by this run: for every law entry and
    every schedule of this config (a model's own run or an extra run) that trains the entry's net
    (model, dimension, training-set size, seed, learning rate, batch size) for a length the law did
    not have, per sphere the law's prediction at that length (its fit over the earlier end points
    only, :func:`spheres.experiments.recipes.predict`: the 95% interval of one new end point) beside
    the measured end point, and the law refitted with the new end point among the others (its slope
    and the steps to the entry's level on both spheres, by the schedule law's reach rule)."""
    from spheres.experiments import recipes

    try:
        law = json.loads(Path(cfg.prior_law).read_text())
    except (OSError, ValueError) as e:
        raise InputError("prior_law", f"cannot read {cfg.prior_law} as JSON: {e}") from None
    if not isinstance(law, list) or not all(isinstance(e, dict) for e in law):
        raise InputError("prior_law", f"{cfg.prior_law} is not a schedule law (a list of entries)")
    prior = read_rows(cfg.prior_results)
    schedules = [("", m, cfg.train_of(m)) for m in cfg.models] + cfg.extra_run_trains()
    key = ("model", "dim", "train_size", "seed", "learning_rate")
    out = []
    for e in law:
        missing = [k for k in (*key, "runs", "lengths", "level", "batch_size", "group") if k not in e]
        if missing:
            raise InputError("prior_law", f"{cfg.prior_law}: an entry lacks {missing[0]!r}")
        same = [r for r in prior if all(getattr(r, k) == e[k] for k in key)]
        ends = [next((r for r in same if r.run == run and r.step == n), None) for run, n in zip(e["runs"], e["lengths"])]
        if any(r is None for r in ends):
            raise InputError("prior_results", f"{cfg.prior_results} lacks an end point of the law's group "
                                              f"{e['group']} (runs {e['runs']} at steps {e['lengths']})")
        prior_fits = {sp: recipes.curve_fit(ends, sp, decades=math.inf) for sp in ("inner", "outer")}
        for sp, fit in prior_fits.items():  # the law's own fit, refitted from its end points
            said = e.get(f"slope_{sp}")
            if (fit is None) != (said is None) or (fit is not None and not math.isclose(
                    fit.slope, float(said), rel_tol=1e-6, abs_tol=1e-9)):
                raise InputError("prior_results", f"the end points in {cfg.prior_results} refit to slope "
                                 f"{None if fit is None else round(fit.slope, 4)} on the {sp} sphere where "
                                 f"{cfg.prior_law} says {said}: the two files are not one run's")
        for label, model, train in schedules:
            if model != e["model"] or train.batch_size != e["batch_size"] or train.steps in e["lengths"]:
                continue
            new = [r for r in rows if (r.run or "") == label and r.step == train.steps
                   and all(getattr(r, k) == e[k] for k in key)]
            if not new:
                continue
            r = new[0]
            test = {"group": e["group"], "prior_law": cfg.prior_law, "prior_runs": e["runs"],
                    "prior_lengths": e["lengths"], "run": label or model, "length": train.steps, "level": e["level"],
                    **{k: e[k] for k in key}, "batch_size": e["batch_size"]}
            for sp in ("inner", "outer"):
                mu, lo, hi = ((r.mu, r.mu_lower, r.mu_upper) if sp == "inner"
                              else (r.mu_outer, r.mu_outer_lower, r.mu_outer_upper))
                method = r.mu_method if sp == "inner" else r.mu_outer_method
                if method == "exact":
                    lo = hi = mu
                fit = prior_fits[sp]
                pred, z, width = (None, None, None), None, None
                sigma = recipes.log10_sigma(mu, lo, hi) if (mu or 0) > 0 else recipes.LOG10_FLOOR
                if fit is not None:
                    c, l, u = recipes.predict(fit, train.steps, sigma)
                    pred, width = (10.0**c, 10.0**l, min(10.0**u, 1.0)), u - l  # a rate is at most 1
                    if (mu or 0) > 0:
                        z = recipes.stated_z(fit, train.steps, math.log10(mu), sigma)
                if pred[0] is None or mu is None:
                    inside = None
                elif mu > 0:
                    inside = bool(pred[1] <= mu <= pred[2])
                else:  # no error seen: only an upper end below the whole interval contradicts it
                    inside = False if hi is not None and 0 < hi < pred[1] else None
                grid = np.logspace(math.log10(min(e["lengths"])), math.log10(1.25 * train.steps), 48)
                band = ([] if fit is None else  # the prediction for one end point at each length (the figure's band)
                        [[float(x), *(min(10.0**v, 1.0) for v in recipes.predict(fit, float(x), sigma))] for x in grid])
                test.update({f"prior_mu_{sp}": [x.mu if sp == "inner" else x.mu_outer for x in ends],
                             f"prior_mu_{sp}_lower": [x.mu_lower if sp == "inner" else x.mu_outer_lower for x in ends],
                             f"prior_mu_{sp}_upper": [x.mu_upper if sp == "inner" else x.mu_outer_upper for x in ends],
                             f"prior_fit_{sp}": _fit_entry(fit),
                             f"predicted_{sp}": pred[0], f"predicted_{sp}_lower": pred[1],
                             f"predicted_{sp}_upper": pred[2], f"mu_{sp}": mu, f"mu_{sp}_lower": lo,
                             f"mu_{sp}_upper": hi, f"mu_{sp}_method": method, f"inside_{sp}": inside,
                             f"stated_z_{sp}": z, f"interval_decades_{sp}": width,
                             f"band_{sp}": band})
            curve = sorted(ends + [r], key=lambda x: x.step)
            fits = {sp: recipes.curve_fit(curve, sp, decades=math.inf) for sp in ("inner", "outer")}
            ups = [recipes.upper_end(r, sp) for sp in ("inner", "outer")]
            test.update({**{f"refit_{sp}": _fit_entry(f) for sp, f in fits.items()},
                         **reach_fields(*recipes.curve_reach(curve, e["level"], fits), prefix="refit_"),
                         "refit_lengths": [x.step for x in curve],
                         "worst_upper": None if None in ups else max(ups)})
            out.append(test)
    return out


#: a prediction interval wider than this (decades of the rate) makes a weak test, and the finding says so
WEAK_TEST_DECADES = 2.0


def _multiplier(f: dict[str, Any]) -> str:
    """The 95% multiplier a fit's intervals used, named (:attr:`~spheres.experiments.recipes.PowerLaw.quantile`)."""
    t = f["dof"] is not None and f["dof"] >= 1 and f["chi2"] is not None and f["chi2"] > 1
    return f"Student's t on {f['dof']} dof, x {f['quantile']:.3g} SE" if t else f"normal, x {f['quantile']:.3g} SE"


def _verdict(inside: bool | None) -> str:
    return {True: "inside", False: "OUTSIDE", None: "not tested against"}[inside]


def _law_test_findings(s: dict[str, Any]) -> list[str]:
    sci = common.sci
    out = []
    for t in s.get("law_test", []):
        lengths = ", ".join(f"{n:,}" for n in t["prior_lengths"])
        parts, verdicts = [], []
        for sp in ("inner", "outer"):
            meas = (f"{sci(t[f'mu_{sp}'])} [{sci(t[f'mu_{sp}_lower'])}, {sci(t[f'mu_{sp}_upper'])}] "
                    f"({t[f'mu_{sp}_method']})")
            if t[f"predicted_{sp}"] is None:
                parts.append(f"{sp}: no prediction (fewer than 3 earlier end points with a positive rate); measured {meas}")
                continue
            f, w = t[f"prior_fit_{sp}"], t[f"interval_decades_{sp}"]
            p = f["p_value"]
            fit_text = ("" if p is None else f"; the earlier fit has chi2/dof {f['chi2']:.2g}, p = {p:.2g}"
                        + (", its power law already REJECTED" if p < 0.05 else ""))
            z = t[f"stated_z_{sp}"]
            parts.append(f"{sp}: predicted {sci(t[f'predicted_{sp}'])} [95% for one end point: "
                         f"{sci(t[f'predicted_{sp}_lower'])}, {sci(t[f'predicted_{sp}_upper'])}, {w:.1f} decades"
                         f"{' (a weak test)' if w > WEAK_TEST_DECADES else ''}; {_multiplier(f)}{fit_text}], "
                         f"measured {meas}" + ("" if z is None else f", {z:+.2f} SD from the fit with the stated "
                                                                    "errors alone"))
            verdicts.append(f"{_verdict(t[f'inside_{sp}'])} the prediction on the {sp} sphere")
        level = sci(t["level"])
        if t["worst_upper"] is None:
            reached = "without an upper end on some sphere"
        elif t["worst_upper"] <= t["level"]:
            reached = f"at or below {level} on both spheres (upper ends)"
        else:
            reached = f"above {level} on at least one sphere (worst upper end {sci(t['worst_upper'])})"
        text = (f"tradeoff: test of the earlier end-of-schedule law of {t['model']} ({t['prior_law']}; schedules of "
                f"{lengths} steps) by a schedule of {t['length']:,} steps of the same recipe ({t['run']}, "
                f"{t['length'] / max(t['prior_lengths']):.1f}x the longest): {'; '.join(parts)}. The end point is "
                f"{' and '.join(verdicts) or 'not tested'}, and {reached}.")
        slopes = " and ".join(f"{f['slope']:.2f} +- {math.sqrt(f['cov'][1][1]):.2f} {sp}"
                              for sp, f in (("inner", t["refit_inner"]), ("outer", t["refit_outer"]))
                              if f["slope"] is not None) or "no fit"
        if t["refit_steps"] is None:
            text += (f" Refitted with it ({len(t['refit_lengths'])} lengths; slopes {slopes}), the law gives no "
                     f"steps to {level}.")
        else:
            how = ("extrapolated" if t["refit_extrapolated"] else "measured: reached at this length and stayed")
            text += (f" Refitted with it ({len(t['refit_lengths'])} lengths; slopes {slopes}), the law puts {level} on "
                     f"both spheres at {sci(t['refit_steps'])} steps [95%: {sci(t['refit_steps_lower'])}, "
                     f"{sci(t['refit_steps_upper'])}] ({how}; the {t['refit_limiting_sphere']} sphere limits).")
        out.append(text)
    return out


def extra_run_stats(rows: list[ResultRow], level: float = common.LOW_ERROR) -> list[dict[str, Any]]:
    """Per net of ``extra_runs`` (label, training-set size, seed, lr): where its last checkpoint ended
    on both spheres (upper ends of the intervals), and the steps its own curve needs to reach
    ``level`` on both: measured where it reached it and stayed, else extrapolated by the recipe
    study's power-law fit over its last decade of checkpoints (:func:`spheres.experiments.recipes.curve_reach`)."""
    from spheres.experiments import recipes  # the recipe study's fit, for the steps still needed

    nets: dict[tuple, list[ResultRow]] = {}
    for r in rows:
        if r.run:
            nets.setdefault((r.run, r.model, r.train_size, r.seed, r.learning_rate), []).append(r)
    out = []
    for (label, model, n, seed, lr), rs in sorted(nets.items()):
        rs = sorted(rs, key=lambda r: r.step)
        last = rs[-1]
        fits = {s: recipes.curve_fit(rs, s) for s in ("inner", "outer")}
        ups = [recipes.upper_end(last, s) for s in ("inner", "outer")]
        out.append({"run": label, "model": model, "train_size": n, "seed": seed, "learning_rate": lr,
                    "checkpoints": [r.step for r in rs], "last_step": last.step, "level": level,
                    "mu_inner": last.mu, "mu_inner_upper": ups[0], "mu_inner_method": last.mu_method,
                    "mu_outer": last.mu_outer, "mu_outer_upper": ups[1], "mu_outer_method": last.mu_outer_method,
                    "worst_upper": None if None in ups else max(ups),
                    **reach_fields(*recipes.curve_reach(rs, level, fits)),
                    **{f"slope_{s}": None if f is None else f.slope for s, f in fits.items()}})
    return out


def _slope(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _extra_run_findings(s: dict[str, Any]) -> list[str]:
    sci = common.sci
    out = []
    for e in s.get("extra_runs", []):
        if len(e["checkpoints"]) < 3:  # a schedule's end point only: see the schedule law
            continue
        head = (f"tradeoff: {e['model']} ({e['run']}, N={e['train_size'] or 'online'}, lr {e['learning_rate']:g}) "
                f"at its last checkpoint, step {e['last_step']:,}: error rate {sci(e['mu_inner'])} (upper end "
                f"{sci(e['mu_inner_upper'])}, {e['mu_inner_method']}) inner and {sci(e['mu_outer'])} (upper end "
                f"{sci(e['mu_outer_upper'])}, {e['mu_outer_method']}) outer")
        level = sci(e["level"])
        if e["worst_upper"] is not None and e["worst_upper"] <= e["level"]:
            out.append(head + f": at or below {level} on both spheres.")
        elif e["steps"] is None:
            out.append(head + f": above {level}, and its curve gives no extrapolation (too few falling checkpoints).")
        elif not e["extrapolated"]:
            out.append(head + f"; it reached {level} on both spheres at step {e['steps']:,.0f} and stayed.")
        else:
            out.append(head + f": above {level} (the {e['limiting_sphere']} sphere limits). Its own power-law fit "
                       f"over checkpoints {', '.join(f'{t:,}' for t in e['checkpoints'])} (slopes "
                       f"{_slope(e['slope_inner'])} inner, {_slope(e['slope_outer'])} outer) puts {level} on both spheres "
                       f"at {sci(e['steps'])} steps [95%: {sci(e['steps_lower'])}, {sci(e['steps_upper'])}] "
                       f"on this recipe's schedule (an extrapolation of its decay, not a prediction of a longer "
                       f"schedule).")
    return out


def draw(ctx: Context) -> list[Path]:
    rule = load_json(ctx.out / common.SELECTION, ("max_error",))
    out = draw_tradeoff(ctx.out / RESULTS, ctx.out / "tradeoff.png", threshold=rule["max_error"])
    if (ctx.out / LAW_TEST).is_file() and json.loads((ctx.out / LAW_TEST).read_text()):
        out += draw_law_test(ctx.out / LAW_TEST, ctx.out / LAW_TEST_FIGURE)
    return out


def last_checkpoints(rows: list[ResultRow]) -> list[ResultRow]:
    """The last checkpoint of every net (model, training-set size, seed, learning rate), sorted."""
    last: dict[tuple, ResultRow] = {}
    for r in rows:
        key = (r.model, r.run or "", r.train_size, r.seed, r.learning_rate)
        if key not in last or r.step > last[key].step:
            last[key] = r
    return [last[k] for k in sorted(last, key=lambda k: (k[0], k[1], k[2] or 10**12, k[3], k[4]))]


def _table(rows: list[ResultRow]) -> list[str]:
    sci = common.sci

    def rate(mu, lo, hi, method):
        return f"{sci(mu)}" + ("" if method == "exact" else f" [{sci(lo)}, {sci(hi)}]") + f" ({method})"

    def dist(d, se, fails, points, error_set):
        if error_set != "errors":
            return error_set
        return "-" if d is None else f"{d:.4f} +- {sci(se, 1)} ({fails}/{points} failed)"

    lines = ["| model | N | seed | step | selected | mu inner [95%] (method) | d(E) inner +- SE | bound inner "
             "| ratio inner +- SE | mu outer [95%] (method) | d(E) outer +- SE | bound outer | ratio outer +- SE |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in last_checkpoints(rows):
        lines.append(
            f"| {r.model}{f' ({r.run})' if r.run else ''} | {r.train_size or 'online'} | {r.seed} | {r.step} | {'yes' if r.selected else 'no'} | "
            f"{rate(r.mu, r.mu_lower, r.mu_upper, r.mu_method)} | "
            f"{dist(r.distance, r.distance_se, r.distance_failures, r.distance_points, r.error_set)} | "
            f"{sci(r.optimal_distance)} | {sci(r.ratio)} +- {sci(r.ratio_se, 1)} | "
            f"{rate(r.mu_outer, r.mu_outer_lower, r.mu_outer_upper, r.mu_outer_method)} | "
            f"{dist(r.distance_outer, r.distance_outer_se, r.distance_outer_failures, r.distance_outer_points, r.error_set_outer)}"
            f" | {sci(r.optimal_distance_outer)} | {sci(r.ratio_outer)} +- {sci(r.ratio_outer_se, 1)} |")
    return lines


def report(s: dict[str, Any], ctx: Context) -> Report:
    findings = common.bound_findings("tradeoff", s)
    t = s["inner"]
    if t["smallest_mu"] is not None:
        text = (f"tradeoff: among the {s['rule']}, the smallest inner error rate is {common.sci(t['smallest_mu'])} "
                f"[{common.sci(t['smallest_mu_lower'])}, {common.sci(t['smallest_mu_upper'])}] "
                f"({t['smallest_mu_method']}; {t['smallest_mu_net']}).")
        if s.get("paper_smallest_mu") is not None:
            text += f" The paper's nets went below {common.sci(s['paper_smallest_mu'])} (Monte Carlo saw no error)."
        findings.append(text)
    findings += common.regime_findings("tradeoff", s)
    findings += _extra_run_findings(s) + _schedule_law_findings(s) + _law_test_findings(s)
    lines = common.bound_lines(s) + ["Last checkpoint of every net:", ""] + _table(read_rows(ctx.out / RESULTS)) + [""]
    if s.get("law_test"):
        name = f"tradeoff_{LAW_TEST_FIGURE}"
        lines += [f"![{name}]({name})", "", f"**{name}**: the earlier end-of-schedule law ({s['law_test'][0]['prior_law']}) "
                  "tested by a longer schedule: the error rate at the END of a schedule against its length, per "
                  "sphere; black: the earlier end points (95% intervals) and their power-law fit, grey: its 95% "
                  "interval for one new end point, red: this run's end point, dashed: the fit over all lengths.", ""]
    return Report(tuple(findings), tuple(lines))


EXPERIMENT = Experiment(
    name="tradeoff", rank=20,
    description="Fig. 4 of the paper: nets trained on several training-set sizes, every checkpoint placed by its "
                "error rate and its distance to the nearest error, against the exact cap bound.",
    config=TradeoffConfig, run=run, draw=draw, report=report,
    tables=(RESULTS, common.SELECTION, SCHEDULE_LAW, LAW_TEST),
    figures=(("tradeoff.png", "Fig. 4 of the paper: every trained net at every checkpoint, placed by its "
              "inner-sphere error rate mu(E) (exact for the quad net; Monte Carlo, or splitting where Monte "
              "Carlo sees too few errors) and its d(E) (on-manifold attack), against the exact cap bound."),),
)
