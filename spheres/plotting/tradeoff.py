"""Fig. 4 of the paper: distance to the nearest error d(E) against the error rate mu(E) of trained nets.

Each point is one checkpoint of one training run (model x training-set size x seed x step): its
inner-sphere error rate ``mu(E)`` (x, log scale, with its interval) and the mean distance ``d(E)``
from an inner-sphere point to the nearest error the on-manifold attack found (y, +-2 standard
errors). The black curve is the largest d(E) any error set of measure mu can have (a spherical cap,
Levy's isoperimetric inequality; exact Beta-integral form, :func:`spheres.maths.theory.mean_distance_to_cap`);
the dashed curve is the paper's asymptotic estimate ``Phi^{-1}(1 - mu)/sqrt(d)`` (docs/science.md sections 3 and 8).

Conventions (each one also stated on the figure):
* a row whose ``mu`` or ``distance`` is empty (not measurable) is left off and counted;
* ``mu == 0`` with a positive upper bound (Monte Carlo saw no error) is drawn at the upper bound
  with a left-pointing arrow: the true rate is smaller; ``mu == 0`` with no positive upper bound is
  left off and counted;
* ``distance_failures > 0`` (the attack found no error from some start points; d(E) is the mean over
  the others) is drawn hollow;
* a point above the cap curve beyond its uncertainty contradicts the theorem: it is ringed in red
  and counted in the title, to be investigated as a bug.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator

from spheres.maths import theory
from spheres.core.errors import InputError
from spheres.plotting._common import (MARKERS, load_table, log_norm, numeric, read_json, save_png, seq_color,
                                      slide_style, text, wrap)

#: columns of one sphere's panel: (error rate, its interval, d(E), SE, failures, bound verdict)
SPHERE_COLUMNS = {
    "inner": ("mu", "mu_lower", "mu_upper", "distance", "distance_se", "distance_failures", "consistent_with_bound"),
    "outer": ("mu_outer", "mu_outer_lower", "mu_outer_upper", "distance_outer", "distance_outer_se",
              "distance_outer_failures", "consistent_outer"),
}
COLUMNS = ("model", "dim", "seed", "train_size", "step", "outer_radius", "selected",
           *SPHERE_COLUMNS["inner"], *SPHERE_COLUMNS["outer"])
ONLINE_COLOR = "#D55E00"  # Okabe-Ito vermillion: apart from every viridis shade
#: standard errors in a vertical error bar (each side)
N_SE = 2.0
#: alpha of points outside the findings' selection (error on the other sphere above the threshold)
FADED = 0.22
#: smallest error rate on the x axis; smaller ones are drawn at it and counted in the notes
X_FLOOR = 1e-15


def _train_size_label(n: int) -> str:
    return "online" if n == 0 else f"N = {n:,}"


def _panel(ax, col: dict[str, np.ndarray], models: list[str], sphere: str, dim: int, radius: float,
           marker: dict[str, str], color) -> dict[str, int]:
    """Draw one sphere's points, curves and notes on ``ax``; return counts for the notes."""
    mu_c, lo_c, hi_c, d_c, se_c, fail_c, ok_c = SPHERE_COLUMNS[sphere]
    scale = 1.0 if sphere == "inner" else radius
    mu, lo, hi, dist, se = col[mu_c], col[lo_c], col[hi_c], col[d_c], col[se_c]
    has = np.isfinite(mu) & np.isfinite(dist)
    censored = has & (mu == 0) & np.isfinite(hi) & (hi > 0)  # no error seen: mu < hi
    shown = has & ((mu > 0) | censored)
    x = np.where(censored, hi, mu)
    # rates far below what a figure can show (exact quad-net tails reach 1e-90) sit at the left edge
    beyond = shown & (x < X_FLOOR)
    x = np.where(beyond, X_FLOOR, x)
    hollow = np.nan_to_num(col[fail_c], nan=0.0) > 0
    faded = np.nan_to_num(col["selected"], nan=0.0) == 0
    # the table's own verdict (spheres.maths.theory.bound_check): 0 = above the bound beyond its uncertainty
    flagged = shown & (np.nan_to_num(col[ok_c], nan=1.0) == 0)
    sizes = col["train_size"].astype(np.int64)

    xs = x[shown]
    lows = np.maximum(lo[shown & np.isfinite(lo) & (lo > 0)], X_FLOOR)
    x_min = float(min(np.min(xs), np.min(lows) if lows.size else np.inf)) if xs.size else 1e-6
    x_min = min(x_min, 0.1) / 10**0.35
    x_max = 1.6
    grid = np.logspace(np.log10(x_min), np.log10(0.999), 400)
    ax.plot(grid, scale * theory.mean_distance_to_cap(grid, dim), color="black", lw=2.2, zorder=2)
    ax.plot(grid, scale * theory.asymptotic_distance(grid, dim), color="0.35", lw=1.6, ls="--", zorder=2)

    runs: dict[tuple, list[int]] = {}
    for i in np.flatnonzero(shown):
        runs.setdefault((models[i], int(sizes[i]), col["seed"][i]), []).append(i)
    for (_, n, _), idx in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))):
        idx = sorted(idx, key=lambda i: col["step"][i])
        if len(idx) > 1:
            ax.plot(x[idx], dist[idx], color=color(n), lw=0.8, alpha=0.3, zorder=3)

    has_x = shown & ~censored & np.isfinite(lo) & np.isfinite(hi)
    x_minus = np.where(has_x, np.maximum(mu - np.maximum(lo, x_min / 10), 0.0), 0.0)
    x_plus = np.where(has_x, np.maximum(hi - mu, 0.0), 0.0)
    y_pm = np.where(shown & np.isfinite(se), N_SE * se, 0.0)
    groups = sorted({(models[i], int(sizes[i]), bool(hollow[i]), bool(faded[i])) for i in np.flatnonzero(shown)})
    for model, n, open_, fade in groups:
        sel = shown & (np.array(models) == model) & (sizes == n) & (hollow == open_) & (faded == fade)
        c, alpha = color(n), (FADED if fade else 1.0)
        ax.errorbar(x[sel], dist[sel], xerr=[x_minus[sel], x_plus[sel]], yerr=y_pm[sel], fmt="none", ecolor=c,
                    elinewidth=1.0, alpha=0.75 * alpha, capsize=0, zorder=4)
        ax.plot(x[sel], dist[sel], marker=marker[model], ms=8, ls="none", mec=c, mew=1.6, alpha=alpha,
                mfc="white" if open_ else c, zorder=5)
    for i in np.flatnonzero(censored):
        ax.annotate("", xy=(x[i] / 10**0.5, dist[i]), xytext=(x[i], dist[i]), zorder=4,
                    arrowprops=dict(arrowstyle="-|>", color=color(int(sizes[i])), lw=1.4, shrinkA=5, shrinkB=0,
                                    alpha=FADED if faded[i] else 1.0))
    if np.any(flagged):
        ax.plot(x[flagged], dist[flagged], marker="o", ms=17, ls="none", mfc="none", mec="#CC0000", mew=2.0, zorder=6)
    if not np.any(shown):
        ax.text(0.5, 0.5, "no checkpoint with a measured error rate and distance", transform=ax.transAxes,
                ha="center", va="center", fontsize=12, color="0.3")
    ax.set_xscale("log")
    ax.set_xlim(x_min, x_max)
    if np.log10(x_max / x_min) <= 2.5:  # a narrow range: label 2 and 5 times each power too, as decimals
        ax.xaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    top = np.nanmax(np.append(dist[shown] + N_SE * np.nan_to_num(se[shown]), 0.0))
    y_max = 1.12 * max(top, scale * float(theory.mean_distance_to_cap(x_min * 10**0.35, dim)))
    ax.set_ylim(-0.02 * y_max, y_max)  # d(E) = 0 (every start point already wrong) stays visible
    r_text = "1" if sphere == "inner" else f"R = {radius:g}"
    ax.set_xlabel(rf"{sphere}-sphere error rate $\mu(E)$")
    ax.set_ylabel(f"d(E): mean chord distance from an {sphere}-sphere\npoint to its nearest error (radius {r_text})")
    ax.set_title(f"{sphere} sphere" + (f"\n{int(flagged.sum())} point(s) ringed red lie ABOVE the bound: a bug"
                                       if np.any(flagged) else ""))
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", axis="x", alpha=0.1)
    return {"shown": int(shown.sum()), "hollow": int(np.sum(hollow & shown)), "censored": int(censored.sum()),
            "faded": int(np.sum(faded & shown)), "no_mu": int(np.sum(~np.isfinite(mu))),
            "no_dist": int(np.sum(np.isfinite(mu) & ~np.isfinite(dist))),
            "zero": int(np.sum(has & (mu == 0) & ~censored)), "flagged": int(flagged.sum()),
            "beyond": int(beyond.sum())}


def draw_tradeoff(results_csv: str | os.PathLike, out_png: str | os.PathLike,
                  threshold: float | None = None) -> list[Path]:
    """Draw Fig. 4 (d(E) against mu(E), trained nets and the exact bound) for both spheres from a saved table.

    Args:
      results_csv: table with at least the columns in :data:`COLUMNS`, one row per model x training-set
        size x seed x checkpoint step; ``train_size == 0`` means online; all rows share one ``dim``; an
        optional column ``run`` labels a model's further runs (drawn as a model of their own).
      out_png: where to write the figure.
      threshold: the selection rule's error threshold, for the note on faded points.
    Returns:
      ``[out_png]``.
    Raises:
      InputError: the file or a column is missing, a value is not numeric, or rows disagree on ``dim``.
    """
    rows = load_table(results_csv, COLUMNS)
    col = {c: numeric(rows, c, results_csv) for c in COLUMNS if c != "model"}
    # a model's further runs on their own recipe (column ``run``) get their own marker and legend entry
    models = [f"{m} ({r})" if r else m for m, r in zip(text(rows, "model"), text(rows, "run"))]
    for name in ("dim", "outer_radius"):
        values = np.unique(col[name][np.isfinite(col[name])])
        if values.size != 1:
            raise InputError(f"{results_csv}: column {name!r}", f"all rows must share one value; found {values.tolist()}")
    dim, radius = int(col["dim"][0]), float(col["outer_radius"][0])
    sizes = col["train_size"].astype(np.int64)
    model_names = sorted(set(models))
    marker = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(model_names)}
    finite_sizes = np.unique(sizes[sizes > 0])
    norm = log_norm(finite_sizes) if finite_sizes.size else None

    def color(n: int):
        return ONLINE_COLOR if n == 0 else seq_color(norm, n)

    with slide_style():
        fig = Figure(figsize=(16, 7.2), layout="constrained")
        axes = fig.subplots(1, 2)
        counts = {s: _panel(ax, col, models, s, dim, radius, marker, color) for ax, s in zip(axes, ("inner", "outer"))}
        fig.suptitle(f"Distance to the nearest error vs error rate, d = {dim}: trained nets (points)\n"
                     "and the best any classifier can do (curve; Levy's isoperimetric inequality)")
        handles = [Line2D([], [], color="black", lw=2.2, label="optimal (spherical cap), exact"),
                   Line2D([], [], color="0.35", lw=1.6, ls="--", label=r"asymptotic $\Phi^{-1}(1-\mu)/\sqrt{d}$"),
                   Line2D([], [], ls="none", label=" "), Line2D([], [], ls="none", label="marker: model")]
        handles += [Line2D([], [], ls="none", marker=marker[m], ms=8, mfc="0.55", mec="0.25", label=m)
                    for m in model_names]
        handles += [Line2D([], [], ls="none", label=" "), Line2D([], [], ls="none", label="colour: training set")]
        present = sorted(set(int(n) for n in sizes), key=lambda n: (n == 0, n))
        handles += [Line2D([], [], ls="none", marker="s", ms=10, mfc=color(n), mec=color(n),
                           label=_train_size_label(n)) for n in present]
        fig.legend(handles=handles, loc="outside right upper", frameon=False, handlelength=2.2)

        rule = "" if threshold is None else f" (error above {threshold:g} on either sphere)"
        notes = [f"error bars: {N_SE:g} standard errors in d(E); the interval of $\\mu(E)$ (exact, Monte Carlo or "
                 "splitting). Faint lines join the checkpoints of one run. Outer sphere: distances and the bound "
                 "scale with R."]
        if any(c["faded"] for c in counts.values()):
            notes.append(f"faded: outside the findings' selection{rule}; kept in the table.")
        if any(c["hollow"] for c in counts.values()):
            notes.append("hollow: the attack found no error from some points; their d(E) is the mean over the others "
                         "and enters no bound check.")
        if any(c["censored"] for c in counts.values()):
            notes.append("arrow: no error seen by Monte Carlo; drawn at the upper end of its interval, the true "
                         "$\\mu(E)$ is smaller.")
        for s, c in counts.items():
            if c["beyond"]:
                notes.append(f"{s} sphere: {c['beyond']} point(s) with an error rate below {X_FLOOR:g} (exact "
                             "quad-net tails) are drawn at the left edge; their rates are in the table.")
            left_off = [f"{k} with {t}" for k, t in ((c["no_mu"], "the error rate not measurable"),
                                                     (c["no_dist"], "no d(E) (no errors found)"),
                                                     (c["zero"], "$\\mu(E) = 0$ and no upper bound")) if k]
            if left_off:
                notes.append(f"{s} sphere, not shown ({len(rows) - c['shown']} of {len(rows)} rows): "
                             + "; ".join(left_off) + ".")
        fig.supxlabel("\n".join(wrap(n, 190) for n in notes), x=0.01, ha="left", fontsize=9.5, color="0.3")
        return [save_png(fig, out_png)]


def draw_law_test(law_test_json: str | os.PathLike, out_png: str | os.PathLike) -> list[Path]:
    """One row per test of an earlier end-of-schedule law (``tradeoff``'s ``law_test.json``), one panel
    per sphere: the error rate at the END of a schedule against the schedule's length (log-log), the
    earlier end points with their 95% intervals and their power-law fit (black), the fit's 95% interval
    for one new end point (grey band, from the table), the tested end point (red) and the fit over all
    lengths (dashed), with the entry's level."""
    tests = read_json(law_test_json, "law test")
    if not isinstance(tests, list) or not tests:
        raise InputError(str(law_test_json), "expected a non-empty list of law tests")

    def num(v):
        return math.nan if v is None else float(v)  # json_safe writes non-finite numbers as strings

    with slide_style():
        fig = Figure(figsize=(12, 4.8 * len(tests)), layout="constrained")
        axes = np.atleast_2d(fig.subplots(len(tests), 2, squeeze=False))
        for row, t in zip(axes, tests):
            x_new = float(t["length"])
            for ax, sp in zip(row, ("inner", "outer")):
                xs = np.array(t["prior_lengths"], float)
                mu = np.array([num(v) for v in t[f"prior_mu_{sp}"]])
                lo = np.array([num(v) for v in t[f"prior_mu_{sp}_lower"]])
                hi = np.array([num(v) for v in t[f"prior_mu_{sp}_upper"]])
                if t[f"band_{sp}"]:
                    band = np.array([[num(v) for v in b] for b in t[f"band_{sp}"]])
                    ax.fill_between(band[:, 0], band[:, 2], band[:, 3], color="0.8", zorder=1,
                                    label="earlier law: 95% for one end point")
                    ax.plot(band[:, 0], band[:, 1], color="black", lw=1.4, zorder=2, label="earlier law (fit)")
                ok = np.isfinite(lo) & np.isfinite(hi)
                ax.errorbar(xs, mu, yerr=[np.where(ok, mu - lo, 0), np.where(ok, hi - mu, 0)], fmt="o", color="black",
                            ms=6, capsize=3, zorder=4, label="earlier schedules' end points")
                m, ml, mh = (num(t[f"mu_{sp}"]), num(t[f"mu_{sp}_lower"]), num(t[f"mu_{sp}_upper"]))
                if math.isfinite(m) and m > 0:
                    yerr = [[m - ml], [mh - m]] if math.isfinite(ml) and math.isfinite(mh) else None
                    ax.errorbar([x_new], [m], yerr=yerr, fmt="D", color="#CC0000", ms=8, capsize=3, zorder=5,
                                label=f"this run: {x_new:,.0f} steps")
                f = t[f"refit_{sp}"]
                if f["slope"] is not None:
                    grid = np.logspace(np.log10(xs.min()), np.log10(1.25 * x_new), 60)
                    ax.plot(grid, 10.0 ** (f["intercept"] + f["slope"] * np.log10(grid)), "--", color="#CC0000",
                            lw=1.3, zorder=3, label=f"fit over all {f['points']} lengths (slope {f['slope']:.2f})")
                ax.axhline(t["level"], color="0.4", lw=1.0, ls=":", zorder=1, label=f"level {t['level']:g}")
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.grid(True, which="major", alpha=0.35)
                ax.set_xlabel("schedule length S (steps)")
                ax.set_ylabel(f"{sp}-sphere error rate at the end")
                ax.set_title(f"{t['model']}, d = {t['dim']}: {sp} sphere ("
                             + ("inside" if t[f"inside_{sp}"] else "OUTSIDE" if t[f"inside_{sp}"] is False
                                else "no test") + " the prediction)", fontsize=11)
                ax.legend(fontsize=8, loc="lower left")
        fig.suptitle("End-of-schedule law tested by a longer schedule (intervals: 95%)", fontsize=12)
        return [save_png(fig, Path(out_png))]
