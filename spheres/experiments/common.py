"""What the experiments that train nets share: building a run's config, training it and measuring it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from spheres.core.config import check_float, load_section, to_table
from spheres.core.errors import InputError
from spheres.core.io import write_json_atomic
from spheres.maths import analysis, stats
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


def train_of(train: TrainConfig, model_train: tuple[tuple[str, Any], ...], model: str,
             field: str = "model_train", where: str | None = None) -> TrainConfig:
    """``train`` with the fields of ``model_train.<model>`` replaced (validated as a [train] section);
    errors name ``where`` (default ``<field>.<model>``) and the override's field."""
    where = where or f"{field}.{model}"
    table = dict(model_train).get(model)
    if table is None:
        return train
    if not isinstance(table, dict):
        raise InputError(where, "must be a table of [train] fields")
    try:
        return load_section(TrainConfig, {**to_table(train), **table})
    except InputError as err:  # name the override's own field, not [train]'s
        raise InputError(f"{where}.{err.field.removeprefix('train.')}", err.detail) from None


def check_model_train(model_train: Any, train: TrainConfig, models: tuple[str, ...],
                      field: str = "model_train") -> None:
    """The per-model training table: ``((model, {train field = value}), ...)``, every model listed in
    ``models`` and every override a valid [train] section."""
    if not isinstance(model_train, tuple) or any(not isinstance(p, tuple) or len(p) != 2 for p in model_train):
        raise InputError(field, "must be a table of model name = {train field = value}")
    for model, _ in model_train:
        if model not in models:
            raise InputError(f"{field}.{model}", f"not one of models {list(models)}")
        train_of(train, model_train, model, field)


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


def net_name(r: ResultRow, model: bool = True) -> str:
    """One checkpoint of one net in words: ``relu-w1000-d2 (run long) N=online seed 0 step 64000``; without
    the model: ``run long, N=online seed 0 step 64000``."""
    tail = f"N={r.train_size or 'online'} seed {r.seed} step {r.step}"
    if not model:
        return f"run {r.run}, {tail}" if r.run else tail
    return f"{r.model} (run {r.run}) {tail}" if r.run else f"{r.model} {tail}"


def select(rows: list[ResultRow], max_error: float) -> list[ResultRow]:
    """Mark each row ``selected`` when its error-rate estimates on BOTH spheres are at most ``max_error``.

    A classifier that calls everything "inner" has a tiny inner error rate for free; the findings
    speak only about nets that are good on both spheres, and say how many those are.
    """
    return [dataclasses.replace(r, selected=int(r.worst_error() is not None and r.worst_error() <= max_error))
            for r in rows]


def rule_text(max_error: float) -> str:
    return f"checkpoints whose error rate is at most {max_error:g} on both spheres"


#: the outer sphere's name of each inner-sphere column of a ResultRow
_OUTER = {"mu": "mu_outer", "mu_lower": "mu_outer_lower", "mu_upper": "mu_outer_upper",
          "mu_method": "mu_outer_method", "mu_samples": "mu_outer_samples", "mu_mc_errors": "mu_outer_mc_errors",
          "ratio": "ratio_outer", "distance": "distance_outer", "distance_se": "distance_outer_se",
          "distance_points": "distance_outer_points", "distance_failures": "distance_outer_failures",
          "consistent_with_bound": "consistent_outer", "optimal_distance": "optimal_distance_outer",
          "error_set": "error_set_outer"}


def _field(r: ResultRow, sphere: str, name: str) -> Any:
    """Column ``name`` (its inner-sphere spelling) of ``r`` on ``sphere``."""
    return getattr(r, name if sphere == "inner" else _OUTER[name])


def _sphere_stats(rows: list[ResultRow], sphere: str, n_se: float = 2.0) -> dict[str, Any]:
    """Bound checks over every row (the theorem holds for any classifier), ratios over the selected ones."""
    def g(r, name):
        return _field(r, sphere, name)

    checks = [r for r in rows if g(r, "consistent_with_bound") is not None and (g(r, "distance") or 0) > 0]
    detectable = [n_se * (g(r, "distance_se") or 0.0) / g(r, "optimal_distance") for r in checks]
    ratios = [g(r, "ratio") for r in rows if r.selected and g(r, "ratio") is not None
              and g(r, "distance_failures") == 0 and (g(r, "distance") or 0) > 0]
    med = analysis.median_interval(ratios)
    found = [r for r in rows if r.selected and (g(r, "mu") or 0) > 0]
    smallest = min(found, key=lambda r: g(r, "mu"), default=None)
    return {
        "bound_checks": len(checks),
        "above_bound": sum(1 for r in checks if not g(r, "consistent_with_bound")),
        "detectable_violation_median": float(np.median(detectable)) if detectable else None,
        "detectable_violation_max": float(np.max(detectable)) if detectable else None,
        "ratio_median": None if med is None else med.median,
        "ratio_median_lower": None if med is None else med.lower,
        "ratio_median_upper": None if med is None else med.upper,
        "ratio_points": 0 if med is None else med.n,
        "ratio_min": min(ratios) if ratios else None, "ratio_max": max(ratios) if ratios else None,
        "with_attack_failures": sum(1 for r in rows if (g(r, "distance_failures") or 0) > 0
                                    and g(r, "error_set") == "errors"),
        "no_errors_found": sum(1 for r in rows if g(r, "error_set") != "errors"),
        "smallest_mu": None if smallest is None else g(smallest, "mu"),
        "smallest_mu_lower": None if smallest is None else g(smallest, "mu_lower"),
        "smallest_mu_upper": None if smallest is None else g(smallest, "mu_upper"),
        "smallest_mu_method": None if smallest is None else g(smallest, "mu_method"),
        "smallest_mu_net": None if smallest is None else net_name(smallest),
    }


#: the paper's Monte Carlo budget: its nets had no error in this many samples per sphere
PAPER_MC_SAMPLES = 10**7
#: the error level at which the paper says trained nets still sit near the bound
LOW_ERROR = 1e-6

def _ratios(rows: list[ResultRow], sphere: str) -> dict[str, Any]:
    """d(E) / bound over the rows with a complete d(E) (no attack failure, d(E) > 0), with how many of
    ``rows`` that leaves out and why. The interval treats the checkpoints as independent draws
    (several checkpoints of one net are not)."""
    failed = sum(1 for r in rows if (_field(r, sphere, "distance_failures") or 0) > 0)
    ratios = [_field(r, sphere, "ratio") for r in rows if _field(r, sphere, "ratio") is not None
              and _field(r, sphere, "distance_failures") == 0 and (_field(r, sphere, "distance") or 0) > 0]
    out = {"of": len(rows), "with_failures": failed, "points": len(ratios)}
    med = analysis.median_interval(ratios)
    if med is not None:
        out.update(median=med.median, lower=med.lower, upper=med.upper, min=min(ratios), max=max(ratios))
    return out


def low_error_stats(rows: list[ResultRow], level: float = LOW_ERROR) -> dict[str, Any]:
    """The paper's regime: selected checkpoints whose error rate is at most ``level`` on BOTH spheres
    (the upper end of each interval), with their d(E) / bound per sphere; and the selected checkpoint
    that came closest (smallest upper end of the worse sphere)."""
    def worst_upper(r):
        ups = [r.mu_upper, r.mu_outer_upper]
        return None if any(u is None for u in ups) else max(ups)

    measured = [r for r in rows if r.selected and worst_upper(r) is not None]
    low = [r for r in measured if worst_upper(r) <= level]
    out: dict[str, Any] = {"level": level, "checkpoints": len(low), "inner": _ratios(low, "inner"),
                           "outer": _ratios(low, "outer")}
    closest = {m: min((r for r in measured if r.model == m), key=worst_upper) for m in sorted({r.model for r in measured})}
    out["closest_by_model"] = {m: {"worst_upper": worst_upper(b), "net": net_name(b, model=False)}
                               for m, b in closest.items()}
    best = min(closest.values(), key=worst_upper, default=None)
    if best is not None:
        out.update(closest=worst_upper(best), closest_net=net_name(best),
                   closest_methods=f"{best.mu_method} / {best.mu_outer_method}")
    return out


def rare_error_stats(rows: list[ResultRow], paper_samples: int = PAPER_MC_SAMPLES) -> dict[str, Any]:
    """The paper's claim that the attack finds errors from almost every point of nets on which Monte
    Carlo sees none, per sphere, over the selected checkpoints in two groups: ``exact`` (quad nets whose
    exact rate is below 1 / ``paper_samples``: fewer than one error expected in the paper's Monte
    Carlo budget) and ``monte_carlo`` (Monte Carlo saw no error in this run's own samples). For each:
    checkpoints, attacked points, points where the attack found an error (with a Clopper-Pearson
    interval of the fraction) and d(E) / bound over the checkpoints without a failure."""
    out: dict[str, Any] = {"paper_samples": paper_samples}
    for sphere in ("inner", "outer"):
        groups = {
            "exact": [r for r in rows if r.selected and _field(r, sphere, "mu_method") == "exact"
                      and 0 < (_field(r, sphere, "mu") or 0) < 1 / paper_samples],
            "monte_carlo": [r for r in rows if r.selected and _field(r, sphere, "mu_mc_errors") == 0
                            and _field(r, sphere, "mu_method") != "exact"],
        }
        out[sphere] = {}
        for name, sub in groups.items():
            per = [(_field(r, sphere, "distance_points"), _field(r, sphere, "distance_failures")) for r in sub
                   if _field(r, sphere, "distance_points")]
            points = sum(n for n, _ in per)
            found = points - sum(f or 0 for _, f in per)
            fractions = [1 - (f or 0) / n for n, f in per]
            g: dict[str, Any] = {"checkpoints": len(sub), "points": points, "found": found,
                                 "ratio": _ratios(sub, sphere),
                                 "found_fraction_min": min(fractions) if fractions else None,
                                 "found_fraction_median": float(np.median(fractions)) if fractions else None}
            if name == "monte_carlo":
                g["samples"] = sorted({_field(r, sphere, "mu_samples") for r in sub if _field(r, sphere, "mu_samples")})
            if points:
                lo, hi = stats.clopper_pearson(found, points)
                g.update(found_lower=float(lo), found_upper=float(hi))
            out[sphere][name] = g
    return out


def summarise(rows: list[ResultRow], max_error: float) -> dict[str, Any]:
    """Key numbers of a table of nets x checkpoints (already :func:`select`-ed), per sphere."""
    return {"points": len(rows), "selected": sum(1 for r in rows if r.selected), "rule": rule_text(max_error),
            "max_error": max_error, "inner": _sphere_stats(rows, "inner"), "outer": _sphere_stats(rows, "outer"),
            "low_error": low_error_stats(rows), "rare_errors": rare_error_stats(rows)}


def _ratio_text(t: dict[str, Any]) -> str:
    left = (f"; {t['with_failures']} left out for attack failures" if t["with_failures"] else "")
    if not t["points"]:
        return f"no complete d(E) among the {t['of']}{left}"
    return (f"median d(E) / bound {sci(t['median'])} [{sci(t['lower'])}, {sci(t['upper'])}] over the {t['points']} "
            f"of the {t['of']} with a complete d(E){left} (range {sci(t['min'])} to {sci(t['max'])})")


def regime_findings(name: str, s: dict[str, Any]) -> list[str]:
    """Findings on the paper's two claims about nets that almost never err (from :func:`summarise`)."""
    out = []
    low = s.get("low_error")
    if low is not None:
        if low["checkpoints"]:
            out.append(f"{name}: {low['checkpoints']} of the {s['selected']} selected checkpoints have an error rate "
                       f"at most {sci(low['level'])} on both spheres (upper ends of the intervals); inner sphere: "
                       f"{_ratio_text(low['inner'])}; outer sphere: {_ratio_text(low['outer'])} (the paper: such "
                       "nets sit close to the bound).")
        if low.get("closest_by_model"):
            out.append(f"{name}: per model, the selected checkpoint with the lowest upper end of the worse sphere's "
                       "error rate: " + "; ".join(f"{m} {sci(c['worst_upper'])} ({c['net']})"
                                                  for m, c in low["closest_by_model"].items()) + ".")
        if not low["checkpoints"] and "closest" in low:
            out.append(f"{name}: no selected checkpoint reaches an error rate of at most {sci(low['level'])} on both "
                       f"spheres (upper ends of the intervals); the closest is {low['closest_net']} at "
                       f"{sci(low['closest'])} on its worse sphere ({low['closest_methods']}).")
    rare = s.get("rare_errors")
    if rare is not None:
        for sphere in ("inner", "outer"):
            for group, what in (("exact", f"an exact error rate below 1/{rare['paper_samples']:.0e} (fewer than one "
                                          "error expected in the paper's Monte Carlo budget)"),
                                ("monte_carlo", "no Monte Carlo error in this run's samples")):
                g = rare[sphere][group]
                if not g["checkpoints"] or not g["points"]:
                    if group == "monte_carlo":
                        out.append(f"{name}, {sphere} sphere: no selected checkpoint of a net without exact rates "
                                   "had zero Monte Carlo errors in its samples (no test of the paper's claim there).")
                    continue
                samples = "" if group == "exact" else f" ({', '.join(f'{n:.0e}' for n in g['samples'])} samples)"
                out.append(f"{name}, {sphere} sphere: over the {g['checkpoints']} selected checkpoints with {what}"
                           f"{samples}, the attack found an error from {g['found']} of {g['points']} attacked points "
                           f"({sci(g['found'] / g['points'])}; 95% [{sci(g['found_lower'])}, {sci(g['found_upper'])}] "
                           f"with the points pooled as if independent; per checkpoint median "
                           f"{sci(g['found_fraction_median'])}, lowest {sci(g['found_fraction_min'])}); "
                           f"{_ratio_text(g['ratio'])} (the paper: errors near almost every point though Monte "
                           "Carlo sees none).")
    return out


def _interval(lo: Any, hi: Any) -> str:
    return f" [{sci(lo)}, {sci(hi)}]"


def bound_findings(name: str, s: dict[str, Any]) -> list[str]:
    """Findings of a tradeoff-like table's summary (every number read from it; rule and counts beside each)."""
    out = []
    for sphere in ("inner", "outer"):
        t = s[sphere]
        if t["bound_checks"]:
            out.append(f"{name}, {sphere} sphere: {t['bound_checks'] - t['above_bound']} of {t['bound_checks']} "
                       f"non-trivial bound checks (0 < mu < 1, d(E) > 0, no attack failure; all {s['points']} "
                       f"checkpoints considered) lie at or below the exact cap bound within 2 SE; the check could "
                       f"detect a violation of {sci(t['detectable_violation_median'])} of the bound (median 2 SE / "
                       f"bound; largest {sci(t['detectable_violation_max'])}). A point above it would be a bug.")
        if t["ratio_points"]:
            band = _interval(t["ratio_median_lower"], t["ratio_median_upper"])
            verdict = ("at least half the bound, close to the optimal curve in the paper's sense."
                       if t["ratio_median"] >= 0.5 else "less than half the bound, well below the optimal curve.")
            out.append(f"{name}, {sphere} sphere: over the {t['ratio_points']} {s['rule']} with a complete d(E) "
                       f"({s['selected']} of {s['points']} checkpoints pass the rule), d(E) reaches a median "
                       f"{sci(t['ratio_median'])} (95% interval{band}; range {sci(t['ratio_min'])} to "
                       f"{sci(t['ratio_max'])}) of the largest d(E) any classifier with the same error rate can "
                       f"have: {verdict}")
        else:
            out.append(f"{name}, {sphere} sphere: no checkpoint passes the rule ({s['rule']}) with a complete d(E); "
                       "no claim about closeness to the bound is made.")
        if t["with_attack_failures"]:
            out.append(f"{name}, {sphere} sphere: at {t['with_attack_failures']} of {s['points']} checkpoints the "
                       "attack found no error from some points even after restarts; those d(E) are drawn hollow and "
                       "enter no bound check or ratio.")
        if t["no_errors_found"]:
            out.append(f"{name}, {sphere} sphere: {t['no_errors_found']} of {s['points']} checkpoints have no error "
                       "found at all (exact, or neither Monte Carlo nor the attack saw one): no d(E) is given.")
    return out


def bound_lines(s: dict[str, Any]) -> list[str]:
    lines = [f"{s['points']} checkpoints (nets x checkpoints); {s['selected']} pass the rule: {s['rule']}.", "",
             "| sphere | bound checks | above the bound | detectable violation (median) | ratio median [95%] "
             "(points) | smallest error rate among selected [interval] (method, net) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for sphere in ("inner", "outer"):
        t = s[sphere]
        ratio, small = "-", "-"
        if t["ratio_points"]:
            band = _interval(t["ratio_median_lower"], t["ratio_median_upper"])
            ratio = f"{sci(t['ratio_median'])}{band} ({t['ratio_points']})"
        if t["smallest_mu"] is not None:
            band = _interval(t["smallest_mu_lower"], t["smallest_mu_upper"])
            small = f"{sci(t['smallest_mu'])}{band} ({t['smallest_mu_method']}, {t['smallest_mu_net']})"
        lines.append(f"| {sphere} | {t['bound_checks']} | **{t['above_bound']}** | "
                     f"{sci(t['detectable_violation_median'])} | {ratio} | {small} |")
    return lines + [""]


SELECTION = "selection.json"


def write_selection(out: Path, max_error: float) -> None:
    """Save the selection rule beside the table, so figures drawn from saved tables can state it."""
    write_json_atomic(out / SELECTION, {"rule": rule_text(max_error), "max_error": max_error})

