"""Experiment ``attributions``: do attributions point along the true boundary normal, and which directions matter?

On the two spheres the right answer is known: the Bayes-optimal boundary is the sphere of radius
``(1 + R)/2`` with the radial normal ``x/||x||``, and the quad net's boundary is an ellipsoid whose
exact normal is :func:`spheres.measure.attributions.quadratic_exact_boundary`'s. Every model of
``models`` is trained at every dimension of ``dims`` as ONE ensemble whose members are the
adversarial budgets ``train.adv_epsilons`` (on-sphere PGD; eps = 0 is the standard net, trained
by the same program), and every checkpoint is measured by
:func:`spheres.measure.attribution_run.attribute_run`. The table ``attributions_results.csv`` has one
row per (model, dimension, member, checkpoint).

Questions, each answered from the saved table over the nets that pass the selection rule (the
last checkpoint of every net whose final training-eval accuracy is at least ``min_accuracy``):

1. Wang, Fredrikson & Datta (2021): does the gradient's alignment with the boundary normal at the
   nearest (off-sphere) error rise with robustness (the adversarial budget, the measured distance
   to the nearest error) and with smoothness (a small spread of nearby normals)? The paired
   difference robust - standard with its SE, and rank correlations across the selected nets.
2. Does the gradient at the data align with the exact radial ideal, ``cos(grad f(x), x/||x||)``?
3. Which direction bands carry the predictive power (band Shapley values, independent
   replacement, 95% intervals) of the standard and the most robust net; for the quad net its
   eigen-bands, with the attack's normal checked against the exact normal.
4. Where the papers' claims hold on spheres and where they do not (a verdict per net pair: the
   difference more than 2 SE above zero, below zero, or within 2 SE).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spheres.core.config import check_dim, check_float
from spheres.core.errors import InputError
from spheres.core.io import read_csv, write_csv_atomic, write_json_atomic
from spheres.experiments import common
from spheres.experiments.base import Context, Experiment, Report
from spheres.measure.attribution_run import AttributeConfig, attribute_run
from spheres.nets.config import TaskConfig, TrainConfig
from spheres.nets.runs import run_training
from spheres.plotting._common import load_json
from spheres.plotting.attributions import draw_band_comparison, draw_robustness_alignment

RESULTS = "attributions_results.csv"
#: the quad net's exact-boundary columns the findings quote (``*_n``: points with an on-sphere error, exact)
EXACT_COLUMNS = ("exact_on_distance_n", "on_normal_exact_cos", "on_normal_exact_cos_se", "on_normal_exact_cos_n",
                 "exact_on_grad_alignment", "exact_on_grad_alignment_se")
RULE_FILE = "selection.json"
#: the alignment measures the findings speak about: (column, what it is)
MEASURES = (("off_grad_alignment", "cos(grad f(x), n(x')) of the gradient with the boundary normal at the nearest "
                                   "off-sphere error (Wang et al.'s claim)"),
            ("grad_radial", "cos(grad f(x), x/|x|) of the gradient with the exact radial ideal"),
            ("big_ideal", "BIG against the radial ideal's BIG on the same path"))


@dataclass(frozen=True)
class AttributionsConfig:
    """``models`` x ``dims``, each an ensemble over ``train.adv_epsilons`` (x ``train.seeds``).

    Attributes:
      task: the two spheres; ``task.dim`` is the main dimension (the bands figure and the findings
        about bands speak about it).
      dims: further dimensions of the sweep (each trains every model again); empty: ``task.dim`` only.
      models: model names (``{dim}`` is replaced by the dimension, e.g. ``quad-w{dim}``).
      model_learning_rates: ``{model = lr}`` overriding ``train.learning_rates`` for that model.
      train: the training recipe; ``adversarial = "pgd"`` and ``adv_epsilons`` containing 0 (the
        standard net) and at least one budget > 0.
      attribute: the attribution budgets (points, IG nodes, spread starts, bands, Shapley pairs).
      min_accuracy: the selection rule's threshold on the final training-eval accuracy.
    """

    task: TaskConfig = field(default_factory=lambda: TaskConfig(dim=500))
    dims: tuple[int, ...] = ()
    models: tuple[str, ...] = ("quad-w{dim}", "relu-w1000-d2")
    model_learning_rates: tuple[tuple[str, float], ...] = ()
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=100_000, learning_rates=(1e-3,), checkpoints=5, chunk_steps=10_000, adversarial="pgd",
        adv_epsilons=(0.0, 0.05, 0.1, 0.2)))
    attribute: AttributeConfig = field(default_factory=AttributeConfig)
    min_accuracy: float = 0.9

    def __post_init__(self):
        common.check_models(self.models)
        common.check_learning_rates(self.model_learning_rates, self.models)
        if not isinstance(self.dims, tuple):
            raise InputError("dims", "must be a list of dimensions")
        for d in self.dims:
            check_dim("dims", d)
        if self.train.adversarial == "none" or 0.0 not in self.train.adv_epsilons \
                or max(self.train.adv_epsilons) <= 0:
            raise InputError("train.adv_epsilons", "needs train.adversarial = \"pgd\" (or \"exact\") and budgets "
                             "that include 0 (the standard net) and at least one > 0")
        if self.attribute.steps:
            raise InputError("attribute.steps", "every checkpoint is measured; leave steps empty")
        check_float("min_accuracy", self.min_accuracy, 0.0, hi=1.0)

    @property
    def all_dims(self) -> tuple[int, ...]:
        return tuple(dict.fromkeys((self.task.dim, *self.dims)))


# ------------------------------------------------------------------------------------------ run


def run(cfg: AttributionsConfig, ctx: Context) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for dim in cfg.all_dims:
        task = dataclasses.replace(cfg.task, dim=dim)
        for model in cfg.models:
            name = model.format(dim=dim)
            exp = common.run_config(task, name, cfg.train, cfg.model_learning_rates, rate_key=model)
            common.log(f"[attributions] {name}: {exp.train.ensemble_size} nets (eps {list(cfg.train.adv_epsilons)}) "
                       f"at d = {dim}, {exp.train.steps} steps")
            run_dir = ctx.out / "runs" / f"{name}-d{dim}"
            run_training(exp, run_dir, progress=ctx.progress)
            for r in attribute_run(run_dir, cfg.attribute, progress=ctx.progress):
                rows.append({"model_key": model, "adv_eps": 0.0, **r})
    rows = select(rows, cfg.min_accuracy)
    write_csv_atomic(ctx.out / RESULTS, rows)
    write_json_atomic(ctx.out / RULE_FILE, {"rule": rule_text(cfg.min_accuracy), "min_accuracy": cfg.min_accuracy,
                                            "main_dim": cfg.task.dim})
    return summarise(read_csv(ctx.out / RESULTS), cfg.task.dim, rule_text(cfg.min_accuracy))


def rule_text(min_accuracy: float) -> str:
    return f"last checkpoint of every net whose final training-eval accuracy is at least {min_accuracy:g}"


def _net(r: dict[str, Any]) -> tuple:
    """One trained net: (model, dimension, seed, learning rate, training-set size, budget)."""
    return (r["model"], r["dim"], r.get("seed"), r.get("learning_rate"), r.get("train_size"), float(r["adv_eps"]))


def select(rows: list[dict[str, Any]], min_accuracy: float) -> list[dict[str, Any]]:
    """Mark ``selected = 1`` on the last checkpoint of every net whose accuracy there is >= ``min_accuracy``."""
    last: dict[tuple, int] = {}
    for r in rows:
        last[_net(r)] = max(last.get(_net(r), -1), int(r["step"]))
    return [{**r, "selected": int(int(r["step"]) == last[_net(r)] and r.get("accuracy") is not None
                                  and float(r["accuracy"]) >= min_accuracy)} for r in rows]


# ------------------------------------------------------------------------------------ summaries


def _f(r: dict[str, Any], col: str) -> float | None:
    v = r.get(col)
    return None if v is None or not math.isfinite(float(v)) else float(v)


def difference(a: dict[str, Any], b: dict[str, Any], col: str) -> dict[str, Any] | None:
    """``b[col] - a[col]`` with the SE of independent means ``sqrt(se_a^2 + se_b^2)`` and the counts.

    The two nets are measured on the same points (paired draws), so this SE is conservative when
    their per-point values correlate positively. The verdict is "rises" / "falls" when the
    difference is more than 2 SE from 0, else "within 2 SE".
    """
    va, vb, sa, sb = _f(a, col), _f(b, col), _f(a, f"{col}_se"), _f(b, f"{col}_se")
    if None in (va, vb, sa, sb):
        return None
    d, se = vb - va, math.hypot(sa, sb)
    verdict = "rises" if d > 2 * se else "falls" if d < -2 * se else "within 2 SE"
    return {"from": va, "from_se": sa, "from_n": a.get(f"{col}_n"), "to": vb, "to_se": sb, "to_n": b.get(f"{col}_n"),
            "diff": d, "diff_se": se, "verdict": verdict}


def rank_correlation(x: list[float], y: list[float]) -> dict[str, Any] | None:
    """Spearman's rho with the large-sample SE ``1/sqrt(n - 1)`` under no association, and ``n``.

    >>> round(rank_correlation([1, 2, 3, 4], [2, 4, 6, 9])["rho"], 6)
    1.0
    """
    ok = [(a, b) for a, b in zip(x, y) if a is not None and b is not None]
    n = len(ok)
    if n < 3:
        return None
    ra = np.argsort(np.argsort([a for a, _ in ok])).astype(float)
    rb = np.argsort(np.argsort([b for _, b in ok])).astype(float)
    if np.std(ra) == 0 or np.std(rb) == 0:
        return None
    return {"rho": float(np.corrcoef(ra, rb)[0, 1]), "se0": 1 / math.sqrt(n - 1), "n": n}


def shapley_efficiency_gap(r: dict[str, Any], rep: str = "independent") -> float:
    """``|sum_j phi_j - (v(all) - v(none))|`` of one row: 0 up to rounding (Shapley efficiency)."""
    total = sum(float(r[f"shapley_{rep}_band{j}"]) for j in range(int(r["bands"])))
    return abs(total - (float(r[f"worth_{rep}_all"]) - float(r[f"worth_{rep}_none"])))


def bands_of(r: dict[str, Any], rep: str = "independent") -> list[dict[str, Any]]:
    """The bands of one row: name, size, Shapley value, SE and its 95% interval."""
    out = []
    for j in range(int(r["bands"])):
        v, se = float(r[f"shapley_{rep}_band{j}"]), _f(r, f"shapley_{rep}_band{j}_se") or 0.0
        out.append({"band": j, "name": str(r.get(f"band{j}_name", j)), "size": int(r[f"band{j}_size"]),
                    "value": v, "se": se, "lower": v - 1.96 * se, "upper": v + 1.96 * se})
    return out


def summarise(rows: list[dict[str, Any]], main_dim: int, rule: str) -> dict[str, Any]:
    """Key numbers from the saved table (every number the findings quote comes from here)."""
    sel = [r for r in rows if int(r["selected"])]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in sel:
        groups.setdefault((r["model"], int(r["dim"]), r.get("seed")), []).append(r)
    pairs = []
    for (model, dim, seed), rs in sorted(groups.items(), key=lambda kv: (kv[0][1], str(kv[0][0]), kv[0][2] or 0)):
        rs = sorted(rs, key=lambda r: float(r["adv_eps"]))
        std, rob = rs[0], rs[-1]
        if float(std["adv_eps"]) != 0.0 or float(rob["adv_eps"]) == 0.0:
            continue
        entry = {"model": model, "dim": dim, "seed": seed, "eps": float(rob["adv_eps"]), "step": int(rob["step"]),
                 "points": int(rob["points"]), "nets": len(rs),
                 "off_distance": difference(std, rob, "off_distance"),
                 "spread": difference(std, rob, "spread_normal_spread"),
                 **{col: difference(std, rob, col) for col, _ in MEASURES},
                 "bands_standard": bands_of(std), "bands_robust": bands_of(rob)}
        if std.get("exact_on_distance_n") is not None:
            entry["exact"] = {tag: {c: _f(r, c) for c in EXACT_COLUMNS} for tag, r in (("standard", std), ("robust", rob))}
        pairs.append(entry)
    corr = {
        "robustness": rank_correlation([_f(r, "off_distance") for r in sel], [_f(r, "off_grad_alignment") for r in sel]),
        "roughness": rank_correlation([_f(r, "spread_normal_spread") for r in sel],
                                      [_f(r, "off_grad_alignment") for r in sel]),
        "budget": rank_correlation([float(r["adv_eps"]) for r in sel], [_f(r, "off_grad_alignment") for r in sel]),
    }
    within = [r for r in sel if _f(r, "spread_alignment_corr") is not None]
    return {"rule": rule, "rows": len(rows), "nets": len({_net(r) for r in rows}), "selected": len(sel),
            "main_dim": main_dim, "pairs": pairs, "correlations": corr,
            "within_net_corr": [{"model": r["model"], "dim": int(r["dim"]), "eps": float(r["adv_eps"]),
                                 "r": _f(r, "spread_alignment_corr"), "se": _f(r, "spread_alignment_corr_se"),
                                 "n": r.get("spread_alignment_corr_n")} for r in within],
            "efficiency_gap_max": max((shapley_efficiency_gap(r) for r in rows), default=None)}


# ---------------------------------------------------------------------------------- figures and findings


def draw(ctx: Context) -> list[Path]:
    rule = load_json(ctx.out / RULE_FILE, ("rule", "main_dim"))
    return [draw_robustness_alignment(ctx.out / RESULTS, ctx.out / "attributions_alignment.png"),
            draw_band_comparison(ctx.out / RESULTS, ctx.out / "attributions_bands.png", dim=int(rule["main_dim"]))]


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _pm(d: dict[str, Any], key: str, digits: int = 3) -> str:
    return f"{d[key]:.{digits}f} +- {d[key + '_se']:.{digits}f}"


def report(s: dict[str, Any], ctx: Context) -> Report:
    sci = common.sci
    findings: list[str] = []
    n_pairs = len(s["pairs"])
    findings.append(f"attributions: the findings below speak about the {s['rule']}: {s['selected']} of {s['nets']} "
                    f"nets pass, forming {n_pairs} pairs (standard eps = 0 against the largest eps, same model, "
                    "dimension and seed); every number is a mean +- SE over the points counted beside it.")
    head = "attributions"
    if not n_pairs:
        return Report((f"attributions: no standard/robust pair passes the rule ({s['rule']}; {s['selected']} of "
                       f"{s['nets']} nets pass); no claim is made.",), ())
    tally: dict[str, dict[str, int]] = {col: {"rises": 0, "falls": 0, "within 2 SE": 0} for col, _ in MEASURES}
    for p in s["pairs"]:
        net = f"{p['model']} at d = {p['dim']} (seed {p['seed']}, step {p['step']}, {p['points']} points per net)"
        w, g, dist = p["off_grad_alignment"], p["grad_radial"], p["off_distance"]
        if w is not None:
            findings.append(
                f"{head}, {net}: adversarial training at eps = {p['eps']:g} moves the distance to the nearest error "
                f"from {_pm(dist, 'from')} to {_pm(dist, 'to')} and the gradient's alignment with the boundary normal "
                f"(Wang et al.'s claim) from {_pm(w, 'from')} to {_pm(w, 'to')}: a change of {_pm(w, 'diff')} "
                f"(mean +- SE, counts {w['from_n']} and {w['to_n']} points), which {w['verdict']}.")
        if g is not None:
            findings.append(
                f"{head}, {net}: the gradient at the data aligns with the exact radial ideal with cosine "
                f"{_pm(g, 'from')} (standard) and {_pm(g, 'to')} (eps = {p['eps']:g}); change {_pm(g, 'diff')}, "
                f"{g['verdict']}.")
        for col, _ in MEASURES:
            if p[col] is not None:
                tally[col][p[col]["verdict"]] += 1
        for tag in ("standard", "robust"):
            bands = p[f"bands_{tag}"]
            top = max(bands, key=lambda b: b["value"])
            rest = [b for b in bands if b is not top]
            apart = all(top["lower"] > b["upper"] for b in rest)
            findings.append(
                f"{head}, {net}, {tag} net: the band carrying the most predictive power (Shapley value, independent "
                f"replacement) is band {top['band']} ({top['name']}, {top['size']} directions) with "
                f"{top['value']:.3f} nats [95% {top['lower']:.3f}, {top['upper']:.3f}]; its interval "
                + ("lies above every other band's." if apart else "overlaps another band's (not resolved).")
                + " Bands: " + "; ".join(f"{b['name']} {b['value']:.3f} +- {b['se']:.3f}" for b in bands) + ".")
        if "exact" in p:
            for tag in ("standard", "robust"):
                e = p["exact"][tag]
                reach = int(e["exact_on_distance_n"] or 0)
                text = (f"{head}, {net}, {tag} quad net: {reach} of {p['points']} points have an on-sphere error "
                        "(exact)")
                if e["on_normal_exact_cos"] is not None:
                    text += (f"; where the attack found it, its boundary normal matches the exact ellipsoid normal "
                             f"with cosine {_fmt(e['on_normal_exact_cos'], '.4f')} +- "
                             f"{_fmt(e['on_normal_exact_cos_se'], '.1e')} ({int(e['on_normal_exact_cos_n'] or 0)} "
                             f"points), and the gradient's alignment with the exact normal is "
                             f"{_fmt(e['exact_on_grad_alignment'], '.3f')} +- {_fmt(e['exact_on_grad_alignment_se'], '.3f')}")
                findings.append(text + ".")
    for key, what in (("budget", "the adversarial budget"), ("robustness", "the measured distance to the nearest "
                                                                            "error"),
                      ("roughness", "the spread of nearby boundary normals")):
        c = s["correlations"][key]
        if c is not None:
            findings.append(f"attributions: across the {c['n']} selected nets, the rank correlation of {what} with "
                            f"the gradient-normal alignment is {c['rho']:+.2f} (SE under no association "
                            f"{c['se0']:.2f}).")
    verdict = "; ".join(f"{col}: rises in {t['rises']}, falls in {t['falls']}, within 2 SE in {t['within 2 SE']}"
                        for col, t in tally.items())
    findings.append(f"attributions: where the claim 'robust nets have more aligned attributions' holds on the "
                    f"spheres, over {n_pairs} pairs (robust minus standard, 2 SE rule): {verdict}.")
    if s["efficiency_gap_max"] is not None:
        findings.append(f"attributions: Shapley efficiency (sum of band values = v(all) - v(none)) holds on every "
                        f"one of the {s['rows']} rows to {sci(s['efficiency_gap_max'])} nats.")
    lines = ["| model | d | eps | distance to error (std -> robust) | grad vs normal (std -> robust) | "
             "grad vs radial (std -> robust) | BIG vs ideal (std -> robust) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in s["pairs"]:
        cell = (lambda d: "-" if d is None else f"{d['from']:.3f} -> {d['to']:.3f} ({d['diff']:+.3f} +- "
                f"{d['diff_se']:.3f})")
        lines.append(f"| {p['model']} | {p['dim']} | {p['eps']:g} | {cell(p['off_distance'])} | "
                     f"{cell(p['off_grad_alignment'])} | {cell(p['grad_radial'])} | {cell(p['big_ideal'])} |")
    return Report(tuple(findings), tuple(lines + [""]))


EXPERIMENT = Experiment(
    name="attributions", rank=70,
    description="Attributions graded against the exact answer: standard and adversarially trained (on-sphere PGD) "
                "nets, measured at every checkpoint: gradient alignment with the radial ideal and with the boundary "
                "normal at the nearest error (Wang et al. 2021), boundary spread, BIG, and band Shapley values "
                "(after Luo et al. 2024), with the quad net's exact normal as a check.",
    config=AttributionsConfig, run=run, draw=draw, report=report,
    tables=(RESULTS, RULE_FILE),
    figures=(("attributions_alignment.png", "Alignment of attributions with the exact ideal against the "
              "adversarial budget (left), the measured distance to the nearest error (middle) and the spread of "
              "nearby boundary normals (right), last checkpoint of every net, 95% error bars."),
             ("attributions_bands.png", "Band Shapley values (independent replacement, 95% intervals) of the "
              "standard and the adversarially trained nets at the main dimension, last checkpoint.")),
)
