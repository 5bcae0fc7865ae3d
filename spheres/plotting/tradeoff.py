"""Fig. 4 of the paper: distance to the nearest error d(E) against the error rate mu(E) of trained nets.

Each point is one checkpoint of one training run (model x training-set size x seed x step): its
inner-sphere error rate ``mu(E)`` (x, log scale, with its interval) and the mean distance ``d(E)``
from an inner-sphere point to the nearest error the on-manifold attack found (y, +-2 standard
errors). The black curve is the largest d(E) any error set of measure mu can have (a spherical cap,
Levy's isoperimetric inequality; exact Beta-integral form, :func:`spheres.maths.theory.mean_distance_to_cap`);
the dashed curve is the paper's asymptotic estimate ``Phi^{-1}(1 - mu)/sqrt(d)`` (PAPER.md sections 3, 7).

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

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator

from spheres.maths import theory
from spheres.core.errors import InputError
from spheres.plotting._common import (MARKERS, load_table, log_norm, numeric, save_png, seq_color, slide_style,
                                      text, wrap)

COLUMNS = ("model", "dim", "seed", "train_size", "step", "mu", "mu_lower", "mu_upper", "consistent_with_bound", "distance",
           "distance_se", "distance_failures")
ONLINE_COLOR = "#D55E00"  # Okabe-Ito vermillion: apart from every viridis shade
#: standard errors in a vertical error bar (each side)
N_SE = 2.0


def _train_size_label(n: int) -> str:
    return "online" if n == 0 else f"N = {n:,}"


def draw_tradeoff(results_csv: str | os.PathLike, out_png: str | os.PathLike) -> list[Path]:
    """Draw Fig. 4 (d(E) against mu(E), trained nets and the exact bound) from a saved results table.

    Args:
      results_csv: table with at least the columns in :data:`COLUMNS`, one row per model x training-set
        size x seed x checkpoint step; ``train_size == 0`` means online; all rows share one ``dim``.
      out_png: where to write the figure.
    Returns:
      ``[out_png]``.
    Raises:
      InputError: the file or a column is missing, a value is not numeric, or rows disagree on ``dim``.
    """
    rows = load_table(results_csv, COLUMNS)
    col = {c: numeric(rows, c, results_csv) for c in COLUMNS if c != "model"}
    models = text(rows, "model")
    dims = np.unique(col["dim"][np.isfinite(col["dim"])])
    if dims.size != 1:
        raise InputError(f"{results_csv}: column 'dim'", f"all rows must share one dimension; found {dims.tolist()}")
    dim = int(dims[0])

    mu, lo, hi = col["mu"], col["mu_lower"], col["mu_upper"]
    dist, se = col["distance"], col["distance_se"]
    n_no_mu = int(np.sum(~np.isfinite(mu)))
    n_no_dist = int(np.sum(np.isfinite(mu) & ~np.isfinite(dist)))
    has = np.isfinite(mu) & np.isfinite(dist)
    censored = has & (mu == 0) & np.isfinite(hi) & (hi > 0)  # no error seen: mu < hi
    n_zero = int(np.sum(has & (mu == 0) & ~censored))
    shown = has & ((mu > 0) | censored)
    x = np.where(censored, hi, mu)
    hollow = np.nan_to_num(col["distance_failures"], nan=0.0) > 0
    # the table's own verdict (spheres.maths.theory.bound_check): 0 = above the bound beyond its uncertainty
    flagged = shown & (np.nan_to_num(col["consistent_with_bound"], nan=1.0) == 0)

    model_names = sorted(set(models[i] for i in np.flatnonzero(shown))) or sorted(set(models))
    marker = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(model_names)}
    sizes = col["train_size"].astype(np.int64)
    finite_sizes = np.unique(sizes[shown & (sizes > 0)])
    norm = log_norm(finite_sizes) if finite_sizes.size else None

    def color(n: int):
        return ONLINE_COLOR if n == 0 else seq_color(norm, n)

    # x range: from just above 1 down to the smallest point drawn (or the interval's lower end), margin 1/3 decade
    xs = x[shown]
    lows = lo[shown & np.isfinite(lo) & (lo > 0)]
    x_min = float(min(np.min(xs), np.min(lows) if lows.size else np.inf)) if xs.size else 1e-6
    x_min = min(x_min, 0.1) / 10**0.35
    x_max = 1.6

    with slide_style():
        fig = Figure(figsize=(11, 6.8), layout="constrained")
        ax = fig.add_subplot()

        # theory curves first, so data sit on top
        grid = np.logspace(np.log10(x_min), np.log10(0.999), 400)
        ax.plot(grid, theory.mean_distance_to_cap(grid, dim), color="black", lw=2.2, zorder=2)
        ax.plot(grid, theory.asymptotic_distance(grid, dim), color="0.35", lw=1.6, ls="--", zorder=2)

        # faint lines join the checkpoints of one training run, in step order
        runs = {}
        for i in np.flatnonzero(shown):
            runs.setdefault((models[i], int(sizes[i]), col["seed"][i]), []).append(i)
        for (model, n, _), idx in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1], str(kv[0][2]))):
            idx = sorted(idx, key=lambda i: col["step"][i])
            if len(idx) > 1:
                ax.plot(x[idx], dist[idx], color=color(n), lw=0.8, alpha=0.35, zorder=3)

        # error bars and markers, one call per (model, training-set size, hollow) group
        has_x = shown & ~censored & np.isfinite(lo) & np.isfinite(hi)
        x_minus = np.where(has_x, np.maximum(mu - np.maximum(lo, x_min / 10), 0.0), 0.0)
        x_plus = np.where(has_x, np.maximum(hi - mu, 0.0), 0.0)
        y_pm = np.where(shown & np.isfinite(se), N_SE * se, 0.0)
        groups = sorted({(models[i], int(sizes[i]), bool(hollow[i])) for i in np.flatnonzero(shown)})
        for model, n, open_ in groups:
            sel = shown & (np.array(models) == model) & (sizes == n) & (hollow == open_)
            c = color(n)
            ax.errorbar(x[sel], dist[sel], xerr=[x_minus[sel], x_plus[sel]], yerr=y_pm[sel], fmt="none", ecolor=c,
                        elinewidth=1.0, alpha=0.75, capsize=0, zorder=4)
            ax.plot(x[sel], dist[sel], marker=marker[model], ms=8, ls="none", mec=c, mew=1.6,
                    mfc="white" if open_ else c, zorder=5)
        for i in np.flatnonzero(censored):
            ax.annotate("", xy=(x[i] / 10**0.5, dist[i]), xytext=(x[i], dist[i]),
                        arrowprops=dict(arrowstyle="-|>", color=color(int(sizes[i])), lw=1.4, shrinkA=5, shrinkB=0),
                        zorder=4)
        if np.any(flagged):
            ax.plot(x[flagged], dist[flagged], marker="o", ms=17, ls="none", mfc="none", mec="#CC0000", mew=2.0,
                    zorder=6)

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
        y_max = 1.12 * max(top, float(theory.mean_distance_to_cap(x_min * 10**0.35, dim)))
        ax.set_ylim(-0.02 * y_max, y_max)  # d(E) = 0 (every start point already wrong) stays visible
        ax.set_xlabel(r"inner-sphere error rate $\mu(E)$ (fraction of the inner sphere misclassified)")
        ax.set_ylabel("d(E): mean distance from an inner-sphere point\nto its nearest error (chord; inner radius 1)")
        title = (f"Distance to the nearest error vs error rate, d = {dim}: trained nets (points)\n"
                 "and the best any classifier can do (curve; Levy's isoperimetric inequality)")
        if np.any(flagged):
            title += f"\n{int(flagged.sum())} point(s) ringed red lie ABOVE the bound beyond their uncertainty: a bug"
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", axis="x", alpha=0.1)

        # legend outside the axes: curves, then marker = model, then colour = training-set size
        handles = [Line2D([], [], color="black", lw=2.2, label="optimal (spherical cap), exact"),
                   Line2D([], [], color="0.35", lw=1.6, ls="--", label=r"asymptotic $\Phi^{-1}(1-\mu)/\sqrt{d}$"),
                   Line2D([], [], ls="none", label=" "),
                   Line2D([], [], ls="none", label="marker: model")]
        handles += [Line2D([], [], ls="none", marker=marker[m], ms=8, mfc="0.55", mec="0.25", label=m)
                    for m in model_names]
        handles += [Line2D([], [], ls="none", label=" "), Line2D([], [], ls="none", label="colour: training set")]
        present = sorted(set(int(n) for n in sizes[shown]), key=lambda n: (n == 0, n))
        handles += [Line2D([], [], ls="none", marker="s", ms=10, mfc=color(n), mec=color(n),
                           label=_train_size_label(n)) for n in present]
        fig.legend(handles=handles, loc="outside right upper", frameon=False, handlelength=2.2)

        notes = [f"error bars: {N_SE:g} standard errors in d(E); the interval of $\\mu(E)$ "
                 "(exact, Monte Carlo or splitting). Faint lines join the checkpoints of one run."]
        if np.any(hollow & shown):
            notes.append("hollow: attack found no error for some points; mean over the rest.")
        if np.any(censored):
            notes.append(f"arrow ({int(censored.sum())}): no error seen by Monte Carlo; drawn at the upper end "
                         "of its interval, the true $\\mu(E)$ is smaller.")
        left_off = []
        if n_no_mu:
            left_off.append(f"{n_no_mu} with $\\mu(E)$ not measurable")
        if n_no_dist:
            left_off.append(f"{n_no_dist} with no d(E)")
        if n_zero:
            left_off.append(f"{n_zero} with $\\mu(E) = 0$ and no upper bound")
        if left_off:
            notes.append(f"Not shown ({len(rows) - int(shown.sum())} of {len(rows)} rows): " + "; ".join(left_off) + ".")
        ax.text(0.0, -0.13, "\n".join(wrap(n, 110) for n in notes), transform=ax.transAxes, ha="left",
                va="top", fontsize=9.5,
                color="0.3")
        return [save_png(fig, out_png)]
