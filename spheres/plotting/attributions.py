"""Figures of the attribution measurements, drawn from ``attributions.csv`` (:mod:`spheres.measure.attribution_run`).

* :func:`draw_alignment`: how well attributions point along the radial ideal, per ensemble member,
  against the checkpoint step, against robustness (the mean off-sphere distance to the nearest
  error) and against boundary smoothness (the spread of nearby boundary normals). Three measures:
  the plain gradient ``cos(grad f(x), x/||x||)``, Wang et al.'s alignment of the gradient with the
  boundary normal at the nearest error, and BIG against the radial ideal's BIG on the same path.
* :func:`draw_bands`: band Shapley values (nats of log-likelihood of the true label) per member at
  one checkpoint, with 95% intervals (``value -+ 1.96 SE``).

Every point carries its error bar (1.96 standard errors; ``*_se`` columns of the table).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from spheres.core.errors import InputError
from spheres.plotting._common import OKABE_ITO, load_table, numeric, save_png, slide_style, text

Z95 = 1.96
#: (column, label) of the alignment measures drawn
ALIGNMENTS = (("grad_radial", r"gradient vs radial"),
              ("off_grad_alignment", "gradient vs boundary normal"),
              ("big_ideal", "BIG vs radial ideal"))
_X_AXES = (("step", "checkpoint step", False),
           ("off_distance", "robustness: mean distance to the nearest error", True),
           ("spread_normal_spread", r"boundary roughness: normal spread $1 - \|\bar n\|$", True))


def draw_alignment(table_csv: str | os.PathLike, out_png: str | os.PathLike) -> Path:
    """Alignment against checkpoint, robustness and smoothness; one colour per measure, one marker per member.

    Args:
      table_csv: an ``attributions.csv``.
      out_png: the figure to write.
    Returns:
      the path written.
    """
    cols = ("member", "step") + tuple(c for a, _ in ALIGNMENTS for c in (a, f"{a}_se")) + (
        "off_distance", "off_distance_se", "spread_normal_spread", "spread_normal_spread_se")
    rows = load_table(table_csv, cols)
    members = numeric(rows, "member", table_csv)
    with slide_style():
        fig = Figure(figsize=(14, 4.4), layout="constrained")
        axes = fig.subplots(1, 3, sharey=True)
        markers = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
        for ax, (xcol, xlabel, with_xerr) in zip(axes, _X_AXES):
            x = numeric(rows, xcol, table_csv)
            xerr = Z95 * numeric(rows, f"{xcol}_se", table_csv) if with_xerr else None
            for k, (col, label) in enumerate(ALIGNMENTS):
                y = numeric(rows, col, table_csv)
                yerr = Z95 * numeric(rows, f"{col}_se", table_csv)
                for j, m in enumerate(np.unique(members)):
                    sel = members == m
                    order = np.argsort(x[sel])
                    ax.errorbar(x[sel][order], y[sel][order], yerr=yerr[sel][order],
                                xerr=None if xerr is None else xerr[sel][order], color=OKABE_ITO[k],
                                marker=markers[j % len(markers)], ms=5, lw=1.0 if xcol == "step" else 0,
                                elinewidth=0.8, capsize=2, label=label if j == 0 else None)
            ax.axhline(1.0, color="black", lw=0.8, ls="--")
            ax.set_xlabel(xlabel)
            if xcol == "step" and np.all(x > 0) and np.nanmax(x) / np.nanmin(x) > 20:
                ax.set_xscale("log")
        axes[0].set_ylabel("cosine (1 = the exact ideal)")
        axes[0].legend(loc="lower right", title="markers: ensemble members")
        fig.suptitle("Do attributions point along the true boundary normal? (error bars: 95%)")
        return save_png(fig, out_png)


def draw_bands(table_csv: str | os.PathLike, out_png: str | os.PathLike, replacement: str = "independent",
               step: int | None = None) -> Path:
    """Band Shapley values with 95% intervals, grouped by band, one bar per member, at one checkpoint.

    Args:
      table_csv: an ``attributions.csv``.
      out_png: the figure to write.
      replacement: "independent" or "same_sphere" (which Shapley columns to draw).
      step: checkpoint step (default: the last one in the table).
    Returns:
      the path written.
    """
    if replacement not in ("independent", "same_sphere"):
        raise InputError("replacement", f"must be 'independent' or 'same_sphere', got {replacement!r}")
    rows = load_table(table_csv, ("member", "step", "bands"))
    steps = numeric(rows, "step", table_csv)
    step = int(np.nanmax(steps)) if step is None else int(step)
    rows = [r for r, s in zip(rows, steps) if s == step]
    if not rows:
        raise InputError("step", f"no rows at step {step} in {table_csv}")
    n_bands = int(numeric(rows, "bands", table_csv)[0])
    names = []
    for j in range(n_bands):
        for c in (f"shapley_{replacement}_band{j}", f"shapley_{replacement}_band{j}_se", f"band{j}_size"):
            if c not in rows[0]:
                raise InputError(f"{table_csv}: column '{c}'", "missing")
        label = text(rows, f"band{j}_name")[0] if f"band{j}_name" in rows[0] else f"band {j}"
        names.append(f"{label}\n({int(numeric(rows, f'band{j}_size', table_csv)[0])} dirs)")
    members = numeric(rows, "member", table_csv)
    width = 0.8 / max(1, len(rows))
    with slide_style():
        fig = Figure(figsize=(max(6.0, 1.6 * n_bands + 2), 4.4), layout="constrained")
        ax = fig.subplots()
        xs = np.arange(n_bands)
        for i, m in enumerate(members):
            vals = np.array([numeric(rows[i:i + 1], f"shapley_{replacement}_band{j}", table_csv)[0]
                             for j in range(n_bands)])
            se = np.array([numeric(rows[i:i + 1], f"shapley_{replacement}_band{j}_se", table_csv)[0]
                           for j in range(n_bands)])
            ax.bar(xs + (i - (len(rows) - 1) / 2) * width, vals, width, yerr=Z95 * se, capsize=2,
                   color=OKABE_ITO[i % len(OKABE_ITO)], label=f"member {int(m)}")
        ax.axhline(0.0, color="black", lw=0.8)
        ax.set_xticks(xs, names)
        ax.set_ylabel("Shapley value (nats of log-likelihood)")
        ax.set_title(f"Which direction bands carry the predictive power\n(step {step}, "
                     f"{replacement.replace('_', ' ')} replacement; 95% intervals)")
        if len(rows) <= 8:
            ax.legend(loc="best")
        return save_png(fig, out_png)


def _selected(table_csv: str | os.PathLike, cols: tuple[str, ...]) -> list[dict]:
    rows = load_table(table_csv, cols + ("selected",))
    rows = [r for r, s in zip(rows, numeric(rows, "selected", table_csv)) if s == 1]
    if not rows:
        raise InputError(f"{table_csv}: column 'selected'", "no selected row to draw")
    return rows


def draw_robustness_alignment(table_csv: str | os.PathLike, out_png: str | os.PathLike) -> Path:
    """Alignment of each measure against the adversarial budget, robustness and roughness, selected nets only.

    One colour per measure (:data:`ALIGNMENTS`), one marker per (model, dimension); points of one
    net family are joined in budget order. Reads an experiment table with ``adv_eps``, ``model``,
    ``dim`` and ``selected`` columns beside the columns of ``attributions.csv``.
    """
    cols = ("model", "dim", "adv_eps") + tuple(c for a, _ in ALIGNMENTS for c in (a, f"{a}_se")) + (
        "off_distance", "off_distance_se", "spread_normal_spread", "spread_normal_spread_se")
    rows = _selected(table_csv, cols)
    family = [f"{m} d={int(d)}" for m, d in zip(text(rows, "model"), numeric(rows, "dim", table_csv))]
    eps = numeric(rows, "adv_eps", table_csv)
    markers = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
    fams = list(dict.fromkeys(family))
    x_axes = (("adv_eps", "adversarial budget eps (chord)", False),) + _X_AXES[1:]
    with slide_style():
        fig = Figure(figsize=(15, 4.8), layout="constrained")
        axes = fig.subplots(1, 3, sharey=True)
        for ax, (xcol, xlabel, with_xerr) in zip(axes, x_axes):
            x = numeric(rows, xcol, table_csv)
            xerr = Z95 * numeric(rows, f"{xcol}_se", table_csv) if with_xerr else None
            for k, (col, label) in enumerate(ALIGNMENTS):
                y = numeric(rows, col, table_csv)
                yerr = Z95 * numeric(rows, f"{col}_se", table_csv)
                for j, fam in enumerate(fams):
                    sel = np.array([f == fam for f in family])
                    order = np.argsort(eps[sel])
                    ax.errorbar(x[sel][order], y[sel][order], yerr=yerr[sel][order],
                                xerr=None if xerr is None else xerr[sel][order], color=OKABE_ITO[k],
                                marker=markers[j % len(markers)], ms=6, lw=1.0 if xcol == "adv_eps" else 0,
                                elinewidth=0.8, capsize=2)
            ax.axhline(1.0, color="black", lw=0.8, ls="--")
            ax.set_xlabel(xlabel)
        axes[0].set_ylabel("cosine (1 = the exact ideal)")
        handles = [axes[0].plot([], [], color=OKABE_ITO[k], lw=3, label=label)[0]
                   for k, (_, label) in enumerate(ALIGNMENTS)]
        handles += [axes[0].plot([], [], ls="", marker=markers[j % len(markers)], color="gray", label=fam)[0]
                    for j, fam in enumerate(fams)]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=10,
                   title="colour: measure; marker: nets")
        fig.suptitle("Does robustness align attributions with the true boundary normal? "
                     "(last checkpoint of the selected nets; error bars 95%)")
        return save_png(fig, out_png)


def draw_band_comparison(table_csv: str | os.PathLike, out_png: str | os.PathLike, dim: int,
                         replacement: str = "independent") -> Path:
    """Band Shapley values with 95% intervals: one panel per model at ``dim``, one bar per budget eps.

    Selected rows only (the last checkpoint of every net that passes the experiment's rule).
    """
    if replacement not in ("independent", "same_sphere"):
        raise InputError("replacement", f"must be 'independent' or 'same_sphere', got {replacement!r}")
    rows = _selected(table_csv, ("model", "dim", "adv_eps", "bands"))
    rows = [r for r, d in zip(rows, numeric(rows, "dim", table_csv)) if int(d) == int(dim)]
    if not rows:
        raise InputError("dim", f"no selected row at d = {dim} in {table_csv}")
    models = list(dict.fromkeys(text(rows, "model")))
    with slide_style():
        fig = Figure(figsize=(max(7.0, 5.5 * len(models)), 4.8), layout="constrained")
        axes = np.atleast_1d(fig.subplots(1, len(models), squeeze=False)[0])
        for ax, model in zip(axes, models):
            mr = sorted([r for r in rows if r["model"] == model], key=lambda r: float(r["adv_eps"]))
            n_bands = int(numeric(mr, "bands", table_csv)[0])
            width = 0.8 / len(mr)
            xs = np.arange(n_bands)
            for i, r in enumerate(mr):
                vals = np.array([numeric([r], f"shapley_{replacement}_band{j}", table_csv)[0] for j in range(n_bands)])
                se = np.array([numeric([r], f"shapley_{replacement}_band{j}_se", table_csv)[0] for j in range(n_bands)])
                ax.bar(xs + (i - (len(mr) - 1) / 2) * width, vals, width, yerr=Z95 * se, capsize=2,
                       color=OKABE_ITO[i % len(OKABE_ITO)], label=f"eps = {float(r['adv_eps']):g}")
            sizes = [int(numeric(mr[:1], f"band{j}_size", table_csv)[0]) for j in range(n_bands)]
            eigen = str(mr[0].get("band0_name", "")).startswith("alpha")
            first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            names = [(f"band {j}\nranks {f + 1}-{f + k}" if eigen else
                      f"{mr[0].get(f'band{j}_name') or f'band {j}'}\n({k} dirs)") for j, (f, k) in enumerate(zip(first, sizes))]
            ax.axhline(0.0, color="black", lw=0.8)
            ax.set_xticks(xs, names, fontsize=9)
            ax.set_title(f"{model}, d = {int(dim)}" + ("\n(each net's own eigen-directions, ranked by alpha, largest first)"
                                                        if eigen else ""), fontsize=11)
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi + 0.15 * (hi - lo))  # headroom: the legend sits above the bars, never on them
            ax.legend(loc="upper center", ncols=len(mr), fontsize=9)
        axes[0].set_ylabel("Shapley value (nats of log-likelihood)")
        fig.suptitle(f"Which direction bands carry the predictive power ({replacement.replace('_', ' ')} "
                     "replacement; last checkpoint; 95% intervals)")
        return save_png(fig, out_png)
