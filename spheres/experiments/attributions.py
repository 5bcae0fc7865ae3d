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
   Robustness itself is measured twice: the off-sphere distance (for a net whose boundary crosses
   each ray once between the spheres its mean over both spheres is at most ``(R - 1)/2`` in
   expectation, the ideal's value, so it saturates) and the count of points with an on-sphere error.
2. Does the gradient at the data align with the exact radial ideal, ``cos(grad f(x), x/||x||)``?
   And are boundary attributions closer to the ideal than plain ones (Wang et al.): BIG against the
   radial ideal's BIG on the same path, beside IG from the origin against the ideal's IG, per net.
3. Which direction bands carry the predictive power (band Shapley values, independent
   replacement, 95% intervals) of the standard and the most robust net; for the quad net its
   eigen-bands, with the attack's normal checked against the exact normal.
   Equal coordinate blocks are exchangeable for a rotation-invariant classifier, so for coordinate
   bands the largest gap between two blocks is tested against 0.
4. Where the papers' claims hold on spheres and where they do not (a verdict per net pair or net:
   the difference more than 2 SE above zero, below zero, or within 2 SE), tallied in one finding.
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


def column_difference(r: dict[str, Any], a: str, b: str) -> dict[str, Any] | None:
    """``r[b] - r[a]`` of two means of one row, as :func:`difference` (SE ``sqrt(se_a^2 + se_b^2)``)."""
    return difference({a: r.get(a), f"{a}_se": r.get(f"{a}_se"), f"{a}_n": r.get(f"{a}_n")},
                      {a: r.get(b), f"{a}_se": r.get(f"{b}_se"), f"{a}_n": r.get(f"{b}_n")}, a)


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
                 "on_errors": {tag: (int(r["on_valid_count"]), int(r["on_initially_wrong_count"]))
                               for tag, r in (("standard", std), ("robust", rob))},
                 "outer_radius": _f(rob, "outer_radius"),
                 "distance_cap": (float(rob["outer_radius"]) - 1) / 2 if rob.get("outer_radius") else None,
                 "boundary_vs_plain": {tag: column_difference(r, "ig_ideal", "big_ideal")
                                       for tag, r in (("standard", std), ("robust", rob))},
                 "spread": difference(std, rob, "spread_normal_spread"),
                 **{col: difference(std, rob, col) for col, _ in MEASURES},
                 "bands_standard": bands_of(std), "bands_robust": bands_of(rob),
                 "shapley_pairs": {tag: r.get("shapley_independent_n") for tag, r in (("standard", std),
                                                                                     ("robust", rob))}}
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


def _digits(se: float | None) -> int:
    """Decimals that show a standard error to two significant digits (3 to 6).

    >>> _digits(0.037), _digits(0.0004), _digits(None)
    (3, 5, 3)
    """
    if se is None or not math.isfinite(se) or se <= 0:
        return 3
    return int(min(6, max(3, 1 - math.floor(math.log10(se)))))


def _pm(d: dict[str, Any], key: str, digits: int | None = None) -> str:
    se = d[key + "_se"]
    digits = _digits(se) if digits is None else digits
    return f"{d[key]:.{digits}f} +- {se:.{digits}f}"


def _band_line(head: str, net: str, tag: str, bands: list[dict[str, Any]], pairs: Any,
               radius: float | None) -> tuple[str, bool]:
    """One net's band Shapley values; whether its top band is resolved (95% interval above every other)."""
    top = max(bands, key=lambda b: b["value"])
    rest = [b for b in bands if b is not top]
    apart = all(top["lower"] > b["upper"] for b in rest)
    text = (f"{head}, {net}, {tag} net: the band carrying the most predictive power (Shapley value, independent "
            f"replacement) is band {top['band']} ({top['name']}, {top['size']} directions) with "
            f"{top['value']:.3f} nats [95% {top['lower']:.3f}, {top['upper']:.3f}] over {pairs} pairs; its interval "
            + ("lies above every other band's." if apart else "overlaps another band's (not resolved).")
            + " Bands: " + "; ".join(f"{b['name']} {b['value']:.3f} +- {b['se']:.3f}" for b in bands) + ".")
    if radius is not None and all(b["name"].startswith("alpha") for b in bands):
        text += (f" (A quad net has errors on the spheres only if some alpha lies outside [1/R^2, 1] = "
                 f"[{1 / radius**2:.3f}, 1]: those eigen-directions are its non-robust ones.)")
    if all(b["name"].startswith("coords") for b in bands) and len({b["size"] for b in bands}) == 1:
        lo, hi = min(bands, key=lambda b: b["value"]), top
        gap, se = hi["value"] - lo["value"], math.hypot(hi["se"], lo["se"])
        text += (f" Equal coordinate blocks are exchangeable for a rotation-invariant classifier (the ideal), so "
                 f"equal values are its exact answer; the largest gap between two blocks is {gap:.3f} +- {se:.3f} "
                 + ("(within 2 SE: consistent with equal)." if gap <= 2 * se else "(more than 2 SE: the net "
                                                                                  "prefers some coordinates)."))
    return text, apart


def report(s: dict[str, Any], ctx: Context) -> Report:
    sci = common.sci
    findings: list[str] = []
    n_pairs = len(s["pairs"])
    findings.append(f"attributions: the findings below speak about the {s['rule']}: {s['selected']} of {s['nets']} "
                    f"nets pass, forming {n_pairs} pairs (standard eps = 0 against the largest eps, same model, "
                    "dimension and seed); every number is a mean +- SE over the points counted beside it, and a "
                    "change is called a rise or a fall only when it is more than 2 SE from 0.")
    head = "attributions"
    if not n_pairs:
        return Report((f"attributions: no standard/robust pair passes the rule ({s['rule']}; {s['selected']} of "
                       f"{s['nets']} nets pass); no claim is made.",), ())
    tally: dict[str, dict[str, int]] = {col: {"rises": 0, "falls": 0, "within 2 SE": 0}
                                        for col in ("off_distance", *(c for c, _ in MEASURES))}
    better = {"rises": 0, "falls": 0, "within 2 SE": 0}
    resolved, band_nets = 0, 0
    for p in s["pairs"]:
        net = f"{p['model']} at d = {p['dim']} (seed {p['seed']}, step {p['step']}, {p['points']} points per net)"
        w, g, dist = p["off_grad_alignment"], p["grad_radial"], p["off_distance"]
        if w is not None and dist is not None:
            findings.append(
                f"{head}, {net}: adversarial training at eps = {p['eps']:g} changes the distance to the nearest "
                f"off-sphere error by {_pm(dist, 'diff')} ({_pm(dist, 'from')} -> {_pm(dist, 'to')}, "
                f"{dist['from_n']} and {dist['to_n']} points; {dist['verdict']}) and the gradient's alignment with "
                f"the boundary normal there (Wang et al.'s claim) by {_pm(w, 'diff')} ({_pm(w, 'from')} -> "
                f"{_pm(w, 'to')}, {w['from_n']} and {w['to_n']} points), which {w['verdict']}.")
        (e_std, w_std), (e_rob, w_rob) = p["on_errors"]["standard"], p["on_errors"]["robust"]
        text = (f"{head}, {net}: on the sphere through each point (on-manifold robustness) the attack finds an "
                f"error at {e_std} of {p['points']} points of the standard net ({w_std} more already wrong) and at "
                f"{e_rob} of {p['points']} of the eps = {p['eps']:g} net ({w_rob} already wrong)")
        if p["distance_cap"] is not None and dist is not None:
            text += (f"; off the sphere, for any net whose boundary crosses each ray once between the spheres, the "
                     f"nearest error is no farther than that crossing, so the mean distance over points of both "
                     f"spheres is at most (R - 1)/2 = {p['distance_cap']:.3f} in expectation (the ideal's value): "
                     f"the standard net's {dist['from']:.4f} leaves room for a rise of about "
                     f"{p['distance_cap'] - dist['from']:.4f} only")
        findings.append(text + ".")
        if g is not None:
            findings.append(
                f"{head}, {net}: the gradient at the data aligns with the exact radial ideal with cosine "
                f"{_pm(g, 'from')} (standard) and {_pm(g, 'to')} (eps = {p['eps']:g}), {g['from_n']} points each; "
                f"change {_pm(g, 'diff')}, {g['verdict']}.")
        for col in tally:
            if p[col] is not None:
                tally[col][p[col]["verdict"]] += 1
        parts = []
        for tag, d in p["boundary_vs_plain"].items():
            if d is not None:
                better[d["verdict"]] += 1
                parts.append(f"{tag}: IG {_pm(d, 'from')} ({d['from_n']} points) -> BIG {_pm(d, 'to')} "
                             f"({d['to_n']} points), {d['verdict']}")
        if parts:
            findings.append(f"{head}, {net}: boundary attributions against plain ones (cosine of each with the "
                            "radial ideal's attribution on the same path, BIG from the nearest error, IG from the "
                            "origin): " + "; ".join(parts) + ".")
        for tag in ("standard", "robust"):
            text, apart = _band_line(head, net, tag, p[f"bands_{tag}"], p["shapley_pairs"][tag], p["outer_radius"])
            findings.append(text)
            band_nets += 1
            resolved += int(apart)
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
    count = (lambda t: f"rises in {t['rises']}, falls in {t['falls']}, within 2 SE in {t['within 2 SE']}")
    findings.append(f"attributions: where the papers' claims hold on the spheres, over the {n_pairs} pairs (robust "
                    f"minus standard, 2 SE rule). Robustness itself (distance to the nearest error): "
                    f"{count(tally['off_distance'])}. Wang et al., robust nets' gradients align better with the "
                    f"boundary normal: {count(tally['off_grad_alignment'])}; with the exact radial ideal: "
                    f"{count(tally['grad_radial'])}; BIG with the ideal's BIG: {count(tally['big_ideal'])}. "
                    f"Wang et al., boundary attributions (BIG) closer to the ideal than IG, over "
                    f"{sum(better.values())} nets: {count(better)}. Band Shapley values (after Luo et al.): the "
                    f"top band is resolved from every other at 95% in {resolved} of {band_nets} nets.")
    if s["efficiency_gap_max"] is not None:
        findings.append(f"attributions: Shapley efficiency (sum of band values = v(all) - v(none)) holds on every "
                        f"one of the {s['rows']} rows to {sci(s['efficiency_gap_max'])} nats.")
    lines = ["| model | d | eps | distance to error (std -> robust) | grad vs normal (std -> robust) | "
             "grad vs radial (std -> robust) | BIG vs ideal (std -> robust) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in s["pairs"]:
        cell = (lambda d: "-" if d is None else f"{d['from']:.4f} -> {d['to']:.4f} ({d['diff']:+.4f} +- "
                f"{d['diff_se']:.4f})")
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
