"""``spheres bound``: the exact isoperimetric bound for one dimension and error rate (or distance).

Thin entry point: validates the flags, calls :func:`bound_summary` (which calls
``spheres.maths.theory``) and prints a readable summary or, with ``--json``, one JSON object.

    spheres bound --dim 500 --error-rate 1e-2
    spheres bound --dim 500 --distance 0.2 --json
    spheres bound --dim 500 --error-rate 1e-4 --epsilon 0.1
"""

from __future__ import annotations

import argparse
import json
import math

from spheres.core.errors import InputError

HELP = "exact optimal nearest-error distance d(E) for an error rate mu(E), or the largest mu(E) for a distance"

MAX_DIM = 10**8

#: the metrics of ``spheres.maths.theory.METRICS`` (spelled out so that ``--help`` need not import
#: SciPy; tests/test_cli_bound.py checks that the two agree)
METRICS = ("chord", "geodesic")


def _dim(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [2, {MAX_DIM}], got {text!r}") from None
    if not 2 <= value <= MAX_DIM:
        raise argparse.ArgumentTypeError(f"must be an integer in [2, {MAX_DIM}], got {text!r}")
    return value


def _real(allowed: str, ok):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not ok(value):
            raise argparse.ArgumentTypeError(f"must be a finite number {allowed}, got {text!r}")
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dim", type=_dim, default=500,
                        help=f"dimension d of the ambient space (integer in [2, {MAX_DIM}]; default 500, the paper's)")
    parser.add_argument("--error-rate", type=_real("in (0, 1)", lambda v: 0 < v < 1), default=None,
                        help="error rate mu(E) of the error set on the unit sphere, in (0, 1)")
    parser.add_argument("--distance", type=_real("> 0", lambda v: v > 0), default=None,
                        help="target mean nearest-error distance d(E) (> 0): report the largest compatible mu(E)")
    parser.add_argument("--metric", choices=METRICS, default=None,
                        help="metric of --distance, and of the closing statement (default: chord, the paper's); "
                             "the table always shows both")
    parser.add_argument("--epsilon", type=_real(">= 0", lambda v: v >= 0), default=None,
                        help="also report the measure of the chord eps-expansion of the worst-case error set (eps >= 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")


def _log10(log_mu: float) -> float:
    return log_mu / math.log(10)


def bound_summary(dim: int, error_rate: float | None = None, distance: float | None = None,
                  metric: str = "chord", epsilon: float | None = None) -> dict:
    """Everything ``spheres bound`` reports, as a JSON-ready dict (no NaN or infinity).

    Exactly one of ``error_rate`` (forward: the optimal d(E) for that mu(E)) and ``distance``
    (inverse: the largest mu(E) whose optimal d(E) equals it, in ``metric``) is given. In the inverse
    problem the error rate may be below float64 range: ``error_rate`` is then ``None``,
    ``log10_error_rate`` carries it and ``notes["error_rate"]`` says so; every other quantity is
    computed from the log. ``metric`` (key ``metric``) is the metric of ``distance`` and of the
    closing statement; the chord and geodesic optimal distances are both always reported.
    No value is ``-0.0`` (it prints as ``0.0``); a ``notes`` dict explains every ``None`` or
    underflowed value.

    Keys: ``dim, mode, error_rate, log10_error_rate, threshold, mean_distance`` (chord),
    ``mean_distance_geodesic, mean_distance_asymptotic`` (``Phi^{-1}(1-mu)/sqrt(d)``),
    ``mean_distance_asymptotic_refined, max_mean_distance`` (the mu -> 0 limit), and, when given,
    ``target_distance, metric`` (inverse) and ``epsilon, expanded_measure,
    expanded_measure_asymptotic``. Distances are on the unit sphere (scale by R for the outer one).

    The expanded measure is a lower bound for every error set of measure AT LEAST ``error_rate``
    (Levy's isoperimetric inequality: among sets of a given measure the cap has the smallest
    eps-expansion, and expansions grow with the set); sets of smaller measure can have smaller
    expansions.
    """
    from spheres.maths import theory

    if (error_rate is None) == (distance is None):
        raise InputError("--error-rate/--distance",
                         "give exactly one of --error-rate (in (0, 1)) and --distance (> 0)")
    metric = metric or "chord"
    out: dict = {"dim": dim}
    notes: dict[str, str] = {}
    dmax = float(theory.max_mean_distance(dim, metric))
    if distance is not None:
        if not distance < dmax:
            raise InputError("--distance", f"must lie in (0, {dmax:.6g}) for --dim {dim} and --metric {metric}: "
                                           f"{dmax:.6g} is the mean {metric} distance to a single point, "
                                           "approached only as the error rate -> 0")
        log_mu = float(theory.log_max_error_rate_for_distance(distance, dim, metric))
        out.update(mode="inverse", target_distance=distance, metric=metric)
    else:
        log_mu = math.log(error_rate)
        out.update(mode="forward", metric=metric)
    # the forward problem keeps the given rate exactly; the inverse one works from its log
    kw = {"mu": error_rate} if error_rate is not None else {"log_mu": log_mu}
    out["error_rate"] = error_rate if error_rate is not None else math.exp(log_mu)
    out["log10_error_rate"] = _log10(log_mu)
    if out["error_rate"] == 0.0:
        out["error_rate"] = None
        notes["error_rate"] = (f"mu(E) = 10^{out['log10_error_rate']:.6g} is below the smallest positive float64 "
                               "(about 1e-308): see log10_error_rate")
    out["threshold"] = float(theory.cap_threshold(dim=dim, **kw))
    out["mean_distance"] = float(theory.mean_distance_to_cap(dim=dim, metric="chord", **kw))
    out["mean_distance_geodesic"] = float(theory.mean_distance_to_cap(dim=dim, metric="geodesic", **kw))
    out["mean_distance_asymptotic"] = float(theory.asymptotic_distance(dim=dim, **kw))
    out["mean_distance_asymptotic_refined"] = float(theory.asymptotic_distance_refined(dim=dim, **kw))
    out["max_mean_distance"] = float(theory.max_mean_distance(dim, "chord"))
    if epsilon is not None:
        out["epsilon"] = epsilon
        out["expanded_measure"] = float(theory.expanded_measure(kw.get("mu"), epsilon, dim, log_mu=kw.get("log_mu")))
        if out["error_rate"] is not None:
            out["expanded_measure_asymptotic"] = float(
                theory.asymptotic_expanded_measure(out["error_rate"], epsilon, dim))
        else:
            notes["expanded_measure_asymptotic"] = "not computed: the error rate is below float64 range"
        if out["expanded_measure"] == 0.0:
            notes["expanded_measure"] = "below the smallest positive float64 (about 1e-308): printed as 0.0"
    for k, v in out.items():
        if isinstance(v, float):
            out[k] = v + 0.0  # -0.0 -> 0.0
    out["notes"] = notes
    return out


def _rate(s: dict) -> str:
    if s["error_rate"] is not None:
        return f"{s['error_rate']:.4g}"
    return f"10^{s['log10_error_rate']:.6g}"


def format_summary(s: dict) -> str:
    """The human-readable report of :func:`bound_summary`'s dict."""
    rows: list[tuple[str, str]] = []
    if s["mode"] == "inverse":
        rows.append((f"target mean distance d(E), {s['metric']}", f"{s['target_distance']:.6g}"))
        rows.append(("largest compatible error rate mu(E)", _rate(s)))
    else:
        rows.append(("error rate mu(E)", _rate(s)))
    rows += [
        ("cap threshold t (cap = {x_1 >= t})", f"{s['threshold']:.6g}"),
        ("optimal d(E), chord, exact", f"{s['mean_distance']:.6g}"),
        ("optimal d(E), geodesic, exact", f"{s['mean_distance_geodesic']:.6g}"),
        ("asymptotic Phi^-1(1 - mu)/sqrt(d)", f"{s['mean_distance_asymptotic']:.6g}"),
        ("refined (c Phi(c) + phi(c))/sqrt(d)", f"{s['mean_distance_asymptotic_refined']:.6g}"),
    ]
    if "epsilon" in s:
        rows.append((f"measure of the eps-expansion, eps = {s['epsilon']:.6g}", f"{s['expanded_measure']:.6g}"))
        if "expanded_measure_asymptotic" in s:
            rows.append(("  asymptotic Phi(Phi^-1(mu) + eps sqrt(d))", f"{s['expanded_measure_asymptotic']:.6g}"))
    width = max(len(label) for label, _ in rows) + 2
    lines = [f"Isoperimetric bound on the unit sphere in R^{s['dim']} (worst case: the error set is a cap)"]
    lines += [f"  {label.ljust(width)}{value}" for label, value in rows]
    if s["mode"] == "inverse":
        lines.append(f"Any error set with mean {s['metric']} distance d(E) >= {s['target_distance']:.6g} "
                     f"has error rate mu(E) <= {_rate(s)}.")
    else:
        key = "mean_distance" if s["metric"] == "chord" else "mean_distance_geodesic"
        lines.append(f"Any error set with mu(E) = {_rate(s)} has mean {s['metric']} distance d(E) <= {s[key]:.6g}.")
    if "epsilon" in s:
        lines.append(f"At least {100 * s['expanded_measure']:.4g}% of the sphere lies within chord distance "
                     f"{s['epsilon']:.6g} of any error set with mu(E) >= {_rate(s)} (the cap of that measure is "
                     "the worst case; smaller sets can have smaller expansions).")
    if s["error_rate"] is None:
        lines.append(f"Note: {s['notes']['error_rate']}.")
    lines.append("Distances are for the unit (inner) sphere; multiply by R for the sphere of radius R.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    summary = bound_summary(args.dim, args.error_rate, args.distance, args.metric, args.epsilon)
    if args.json:
        print(json.dumps(summary, allow_nan=False))
    else:
        print(format_summary(summary))
    return 0
