"""The dimension sweep: does d(E) of trained nets follow the 1/sqrt(d) law of the bound?

Two figures from one saved results table (one row per model x dimension x seed x checkpoint):

* **collapse**: ``y = d(E) sqrt(d)`` against ``x = c = Phi^{-1}(1 - mu(E))``. For a spherical cap,
  ``d(cap) sqrt(d) -> c Phi(c) + phi(c)`` as ``d -> infinity`` (docs/science.md section 3), one curve for
  every dimension; thin coloured curves are the exact finite-d caps (:func:`spheres.maths.theory.mean_distance_to_cap`),
  which approach it. If trained nets obey the same law, their points from all dimensions fall on one
  curve too. The fitted slope of ``log(d(E) / d_cap)`` against ``log d`` per family (from ``fit.json``;
  -1/2 is the law) is printed on the figure.
* **ratio**: ``d(E) / d_cap(mu(E), d)`` against ``d``, the fraction of the best possible distance each
  net reaches at its own error rate, for the last checkpoint of every run. It can never exceed 1
  (the bound); a point above 1 beyond its error bar is a bug.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy import stats

from spheres.maths import theory
from spheres.core.errors import InputError
from spheres.plotting._common import (MARKERS, OKABE_ITO, load_json, load_table, log_norm, numeric, save_png,
                                      seq_color, slide_style, text, wrap)

COLUMNS = ("model", "dim", "seed", "step", "mu", "mu_lower", "mu_upper", "distance", "distance_se",
           "distance_failures", "optimal_distance", "selected")
#: alpha of points outside the findings' selection
FADED = 0.25
N_SE = 2.0
#: width of the seed jitter on the ratio plot, in decades of d
JITTER_DECADES = 0.06


def collapse_coordinates(mu: np.ndarray, distance: np.ndarray, dim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Phi^{-1}(1 - mu), distance * sqrt(d))``: the coordinates in which caps of every dimension
    share the curve ``c Phi(c) + phi(c)`` (up to O(1/d) corrections).

    Args:
      mu, distance, dim: ``(n,)`` error rates in (0, 1), distances and dimensions.
    Returns:
      two float64 ``(n,)`` arrays.
    """
    mu = np.asarray(mu, np.float64)
    return stats.norm.isf(mu), np.asarray(distance, np.float64) * np.sqrt(np.asarray(dim, np.float64))


def seed_jitter(seed_rank: np.ndarray, n_seeds: int, model_rank: np.ndarray, n_models: int,
                width_decades: float) -> np.ndarray:
    """Multiplicative x offsets (for a log axis) that spread seeds and models around their dimension.

    The ``n_seeds * n_models`` slots (models outermost) are evenly spaced over ``width_decades``
    and centred on 0, so the mean position of a dimension's points stays at ``d``.

    Args:
      seed_rank, model_rank: ``(n,)`` integer ranks of each point's seed and model.
      n_seeds, n_models: number of distinct seeds and models.
      width_decades: total spread, in decades of ``d``.
    Returns:
      float64 ``(n,)`` factors ``10**offset``.
    """
    slots = n_seeds * n_models
    k = np.asarray(model_rank) * n_seeds + np.asarray(seed_rank)
    offset = (k - (slots - 1) / 2) * width_decades / max(slots - 1, 1)
    return 10.0**offset


def jitter_width(dims: np.ndarray, n_models: int) -> float:
    """Total seed/model spread in decades: ``JITTER_DECADES`` per model, at most 35% of the
    narrowest gap between neighbouring dimensions (so dimensions never overlap)."""
    width = JITTER_DECADES * n_models
    logs = np.log10(np.unique(np.asarray(dims, np.float64)))
    if logs.size > 1:
        width = min(width, 0.35 * float(np.min(np.diff(logs))))
    return width


def _rate_ticks(c_lo: float, c_hi: float, most: int = 9) -> tuple[list[float], list[str]]:
    """Positions ``c = Phi^{-1}(1 - mu)`` and labels of round error rates (1/2, ``10^-k``, ``1 - 10^-k``)
    inside ``[c_lo, c_hi]``, chosen outward from 1/2 at least ``(c_hi - c_lo)/most`` apart."""
    gap = (c_hi - c_lo) / most
    small = [(float(stats.norm.isf(10.0**-k)), f"$10^{{-{k}}}$") for k in range(1, 300)]  # c ascending
    large = [(float(stats.norm.isf(1 - 10.0**-k)), f"{1 - 10.0**-k:.{k}f}" if k <= 2 else f"$1-10^{{-{k}}}$")
             for k in range(1, 16)]  # c descending; short labels where the decimals would collide
    ticks = [(0.0, "1/2")]
    for side in (small, large):
        last = 0.0
        for c, label in side:
            if abs(c - last) >= gap:
                ticks.append((c, label))
                last = c
    ticks = sorted(t for t in ticks if c_lo <= t[0] <= c_hi)
    return [t[0] for t in ticks], [t[1] for t in ticks]


def model_families(rows: list[dict]) -> list[str]:
    """The model family of each row: column ``family`` where present (e.g. ``quad-w{dim}``, whose
    width grows with d, so ``model`` differs per dimension), else ``model``."""
    fam = text(rows, "family") if any(r.get("family") is not None for r in rows) else [""] * len(rows)
    return [f or m for f, m in zip(fam, text(rows, "model"))]


def family_label(name: str) -> str:
    """A family name for the figure: ``quad-w{dim}`` -> ``quad-w(d)`` (width equal to the dimension)."""
    return name.replace("{dim}", "(d)")


def _fit_text(fit: dict, path) -> str:
    fams = fit["families"]
    if not isinstance(fams, dict):
        raise InputError(f"{path}: key 'families'", "expected an object {family: {law: {...}, matched: [...]}}")
    lines = []
    for name in sorted(fams):
        law = fams[name].get("law", {}) if isinstance(fams[name], dict) else {}
        if law.get("slope") is None:
            lines.append(f"{family_label(name)}: no fit ({law.get('n', 0)} usable points)")
        else:
            lines.append(f"{family_label(name)}: {float(law['slope']):+.3f} $\\pm$ {float(law['slope_se']):.3f}  "
                         f"(z = {float(law['z']):+.1f}, n = {int(law['n'])})")
    return ("slope of log(d(E) / d$_{\\mathrm{cap}}$($\\mu$(E), d)) in log d\n"
            "(0: the exact $1/\\sqrt{d}$ law; $\\pm$ 1 SE, $\\mu$'s interval included;\n"
            "selected checkpoints only)\n" + "\n".join(lines))


def _legend_models(names, marker, colors) -> list[Line2D]:
    return [Line2D([], [], ls="none", marker=marker[m], ms=8, mfc=colors.get(m, "0.55"), mec=colors.get(m, "0.25"),
                   label=family_label(m)) for m in names]


def draw_dimsweep(results_csv: str | os.PathLike, fit_json: str | os.PathLike, out_collapse_png: str | os.PathLike,
                  out_ratio_png: str | os.PathLike) -> list[Path]:
    """Draw the collapse and ratio figures of the dimension sweep from saved results.

    Args:
      results_csv: table with at least the columns in :data:`COLUMNS`; an optional column ``family``
        (e.g. ``quad-w{dim}``) groups models whose name changes with d; ``fit.json`` is keyed by it.
      fit_json: ``{"families": {family: {"law": {"slope", "slope_se", "z", "n"}, "matched": [...]}}}``.
      out_collapse_png, out_ratio_png: where to write the two figures.
    Returns:
      ``[out_collapse_png, out_ratio_png]``.
    Raises:
      InputError: a file, column or key is missing or a value is not numeric.
    """
    rows = load_table(results_csv, COLUMNS)
    col = {c: numeric(rows, c, results_csv) for c in COLUMNS if c != "model"}
    fit_box = _fit_text(load_json(fit_json, ("families",)), fit_json)
    models = np.array(model_families(rows))
    dim, mu, lo, hi = col["dim"], col["mu"], col["mu_lower"], col["mu_upper"]
    dist, se, opt = col["distance"], col["distance_se"], col["optimal_distance"]
    if np.any(np.isfinite(dim) & (dim < 2)):
        raise InputError(f"{results_csv}: column 'dim'", "dimensions must be >= 2")
    shown = np.isfinite(dim) & np.isfinite(mu) & (mu > 0) & (mu < 1) & np.isfinite(dist) & (dist >= 0)
    n_hidden = int(np.sum(~shown))
    hollow = np.nan_to_num(col["distance_failures"], nan=0.0) > 0
    faded = np.nan_to_num(col["selected"], nan=0.0) == 0
    if not np.any(shown):
        raise InputError(str(results_csv), "no row has a measured 0 < mu < 1 and d(E): nothing to draw")

    names = sorted(set(models[shown]))
    marker = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(names)}
    mcolor = {m: OKABE_ITO[i % len(OKABE_ITO)] for i, m in enumerate(names)}
    dims = np.unique(dim[shown]).astype(np.int64)
    norm = log_norm(dims)

    x, y = collapse_coordinates(np.where(shown, mu, 0.5), np.where(shown, dist, 0.0), np.where(shown, dim, 2))
    # x interval from the mu interval (c decreases in mu); clipped where the interval reaches 0 or 1
    x_lo = np.where(np.isfinite(hi) & (hi > 0) & (hi < 1), stats.norm.isf(np.clip(hi, 1e-300, 1 - 1e-16)), np.nan)
    x_hi = np.where(np.isfinite(lo) & (lo > 0), stats.norm.isf(np.clip(lo, 1e-300, 1 - 1e-16)), np.nan)
    paths = []

    with slide_style():
        # ---------------------------------------------------------------- collapse
        fig = Figure(figsize=(10.5, 6.6), layout="constrained")
        ax = fig.add_subplot()
        xs = x[shown]
        c_min, c_max = float(np.min(xs)), float(np.max(xs))
        pad = 0.08 * max(c_max - c_min, 0.5)
        c_grid = np.linspace(c_min - pad, c_max + pad, 300)
        # keep the grid inside theory's open interval (0, 1): sf(c) rounds to 1.0 for c below about -8.3
        mu_grid = np.clip(stats.norm.sf(c_grid), 1e-300, 1.0 - 1e-15)
        for d in dims:
            ax.plot(c_grid, theory.mean_distance_to_cap(mu_grid, d) * np.sqrt(d), color=seq_color(norm, d), lw=1.0,
                    alpha=0.8, zorder=2)
        prof = c_grid * stats.norm.cdf(c_grid) + stats.norm.pdf(c_grid)
        ax.plot(c_grid, prof, color="black", lw=2.4, zorder=3)
        has_x = shown & np.isfinite(x_lo) & np.isfinite(x_hi)
        x_minus = np.where(has_x, np.maximum(x - x_lo, 0.0), 0.0)
        x_plus = np.where(has_x, np.maximum(x_hi - x, 0.0), 0.0)
        y_pm = np.where(shown & np.isfinite(se), N_SE * se * np.sqrt(np.where(shown, dim, 0.0)), 0.0)
        for d in dims:  # one call per (dimension, model, hollow, faded) group
            for m in names:
                for open_ in (False, True):
                    for fade in (False, True):
                        sel = shown & (dim == d) & (models == m) & (hollow == open_) & (faded == fade)
                        if not np.any(sel):
                            continue
                        c, alpha = seq_color(norm, d), (FADED if fade else 1.0)
                        ax.errorbar(x[sel], y[sel], xerr=[x_minus[sel], x_plus[sel]], yerr=y_pm[sel], fmt="none",
                                    ecolor=c, elinewidth=0.9, alpha=0.6 * alpha, zorder=4)
                        ax.plot(x[sel], y[sel], marker=marker[m], ms=7, ls="none", mfc="white" if open_ else c,
                                mec=c if open_ else "white", mew=1.4 if open_ else 0.6, alpha=alpha, zorder=5)
        ax.set_xlim(c_grid[0], c_grid[-1])
        ax.set_ylim(bottom=-0.02 * ax.get_ylim()[1])  # d(E) = 0 (every start point already wrong) stays visible
        ax.set_xlabel(r"$c = \Phi^{-1}(1 - \mu(E))$   (error rate on a normal-quantile scale: larger $c$ = fewer errors)")
        ax.set_ylabel(r"$d(E)\,\sqrt{d}$   (distance to the nearest error, rescaled)")
        ax.set_title("Dimension collapse: if d(E) shrinks like $1/\\sqrt{d}$, nets of every dimension d\n"
                     "fall on one curve when the distance is multiplied by $\\sqrt{d}$")
        ax.grid(True, alpha=0.3)
        # secondary axis: the error rate itself
        top = ax.secondary_xaxis("top", functions=(lambda c: c, lambda c: c))
        pos, labels = _rate_ticks(c_grid[0], c_grid[-1])
        top.set_xticks(pos, labels=labels)
        top.set_xlabel(r"$\mu(E)$", fontsize=10.5)
        ax.text(0.02, 0.97, fit_box, transform=ax.transAxes, ha="left", va="top", fontsize=10,
                bbox=dict(boxstyle="round,pad=0.5", fc="white", ec="0.6", alpha=0.95), zorder=7)
        handles = [Line2D([], [], color="black", lw=2.4, label="cap, $d \\to \\infty$:\n$c\\,\\Phi(c) + \\varphi(c)$"),
                   Line2D([], [], color="0.5", lw=1.0, label="cap, exact at each d\n(thin, colour of d)"),
                   Line2D([], [], ls="none", label=" "), Line2D([], [], ls="none", label="marker: model")]
        handles += _legend_models(names, marker, {})
        handles += [Line2D([], [], ls="none", label=" "), Line2D([], [], ls="none", label="colour: dimension")]
        handles += [Line2D([], [], ls="none", marker="s", ms=9, mfc=seq_color(norm, d), mec=seq_color(norm, d),
                           label=f"d = {d}") for d in dims]
        fig.legend(handles=handles, loc="outside right upper", frameon=False)
        note = (f"Every checkpoint of every run; error bars: {N_SE:g} SE in d(E), interval of $\\mu(E)$. "
                "Hollow: the attack found no error from some points (mean over the rest; in no fit). Faded: "
                "outside the selection (error above the threshold on either sphere)."
                + (f" Not shown: {n_hidden} of {len(rows)} rows without a measured $0 < \\mu(E) < 1$ and d(E)."
                   if n_hidden else ""))
        ax.text(0.0, -0.12, wrap(note, 110), transform=ax.transAxes, ha="left", va="top", fontsize=9.5,
                color="0.3")
        paths.append(save_png(fig, out_collapse_png))

        # ---------------------------------------------------------------- ratio (last checkpoint of each run)
        last = {}
        for i in np.flatnonzero(shown & np.isfinite(opt) & (opt > 0)):
            key = (models[i], int(dim[i]), str(rows[i]["seed"]), str(rows[i].get("train_size")))
            if key not in last or col["step"][i] > col["step"][last[key]]:
                last[key] = i
        idx = np.array(sorted(last.values()), dtype=np.int64)
        n_earlier = int(np.sum(shown)) - idx.size
        final = {}  # the last saved checkpoint of every run, shown or not
        for i in range(len(rows)):
            key = (models[i], int(dim[i]), str(rows[i]["seed"]), str(rows[i].get("train_size")))
            final[key] = max(final.get(key, -1), col["step"][i])
        n_before = sum(1 for k, i in last.items() if col["step"][i] < final[k])
        seeds = sorted({str(rows[i]["seed"]) for i in idx})
        seed_rank = np.array([seeds.index(str(rows[i]["seed"])) for i in idx], dtype=np.int64)
        model_rank = np.array([names.index(models[i]) for i in idx], dtype=np.int64)
        xj = dim[idx] * seed_jitter(seed_rank, len(seeds), model_rank, len(names), jitter_width(dims, len(names)))
        ratio = dist[idx] / opt[idx]
        rerr = N_SE * np.nan_to_num(se[idx]) / opt[idx]

        fig = Figure(figsize=(10.5, 6.2), layout="constrained")
        ax = fig.add_subplot()
        y_top = max(1.15, float(np.max(ratio + rerr, initial=0.0)) * 1.05)
        ax.axhspan(1.0, y_top, color="0.9", zorder=0)
        ax.axhline(1.0, color="black", lw=2.0, zorder=2)
        ax.text(0.99, y_top - 0.03 * y_top, "above the bound: impossible (Levy's isoperimetric inequality)",
                transform=ax.get_yaxis_transform(), ha="right", va="top", fontsize=10, color="0.35", zorder=1)
        for m in names:
            for open_ in (False, True):
                for fade in (False, True):
                    sel = (models[idx] == m) & (hollow[idx] == open_) & (faded[idx] == fade)
                    if not np.any(sel):
                        continue
                    ax.errorbar(xj[sel], ratio[sel], yerr=rerr[sel], fmt=marker[m], ms=8, color=mcolor[m],
                                mfc="white" if open_ else mcolor[m], mec=mcolor[m] if open_ else "white",
                                mew=1.4 if open_ else 0.6, elinewidth=1.1, capsize=0, ls="none", zorder=4,
                                alpha=FADED if fade else 1.0,
                                label=family_label(m) if not (open_ or fade) else None)
        ax.set_xscale("log")
        lo_d, hi_d = float(np.min(dims)), float(np.max(dims))
        ax.set_xlim(lo_d / 10**0.2, hi_d * 10**0.2)
        ax.set_xticks(dims, labels=[str(d) for d in dims])
        ax.minorticks_off()
        ax.set_ylim(0, y_top)
        ax.set_xlabel("dimension d (log scale; seeds and models spread slightly sideways)")
        ax.set_ylabel(r"$d(E)\ /\ d_{\mathrm{cap}}(\mu(E), d)$" "\n(fraction of the best possible distance)")
        ax.set_title("How close do trained nets come to the bound at their own error rate?\n"
                     "1 = as far from errors as any classifier with that error rate can be")
        ax.grid(True, axis="y", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="black", lw=2.0))
        labels.append("the bound (a spherical cap)")
        fig.legend(handles, labels, loc="outside right upper", frameon=False, title="model")
        note = (f"Inner sphere. The last checkpoint of each run (model, d, seed, training set) with a measured "
                f"0 < mu < 1 and d(E)"
                + (f" ({n_before} run(s) whose later checkpoints have no error found, or every attacked point "
                   f"already wrong, are shown at an earlier one)" if n_before else "")
                + "; hollow: attack failures; faded: "
                f"outside the selection; error bars: {N_SE:g} SE of d(E) "
                "(the uncertainty of $\\mu(E)$, which moves "
                f"$d_{{\\mathrm{{cap}}}}$, is not included)."
                + (f" {n_earlier} earlier checkpoints are on the collapse figure." if n_earlier else ""))
        ax.text(0.0, -0.13, wrap(note, 110), transform=ax.transAxes, ha="left", va="top", fontsize=9.5,
                color="0.3")
        paths.append(save_png(fig, out_ratio_png))
    return paths
