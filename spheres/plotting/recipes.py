"""Figure of the recipe study: error rate on both spheres against training step and samples seen."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from spheres.plotting._common import OKABE_ITO, load_table, numeric, save_png, slide_style, text

#: bottom of the error-rate axis (rates below it are off the figure, still in the table)
Y_FLOOR = 1e-12

COLUMNS = ("model", "recipe", "learning_rate", "seed", "step", "batch_size", "mu", "mu_lower", "mu_upper",
           "mu_method", "mu_outer", "mu_outer_lower", "mu_outer_upper", "mu_outer_method")
STEP_COLUMNS = ("model", "recipe", "learning_rate", "seed", "level", "slope_inner", "intercept_inner",
                "slope_outer", "intercept_outer", "last_step")


def draw_recipes(results: str | os.PathLike, steps: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Four panels: inner / outer sphere (columns) against step (top) and samples = step x batch (bottom).

    One line per (model, recipe, peak lr, seed): colour by recipe, line style by model, marker by
    the peak lr's rank within its model and recipe (two lrs of one recipe stay apart); error bars
    are the 95% intervals (none for exact rates); the power-law fit of the last decade is dashed,
    extended to the error rate 1e-8 or ten times the last step. Zero rates are not drawn (log axes).
    """
    rows = load_table(results, COLUMNS)
    fits = load_table(steps, STEP_COLUMNS)
    model, recipe = text(rows, "model"), text(rows, "recipe")
    lr, seed = numeric(rows, "learning_rate", results), numeric(rows, "seed", results)
    step, batch = numeric(rows, "step", results), numeric(rows, "batch_size", results)
    recipes = sorted(set(recipe))
    models = sorted(set(model))
    styles = ("-", ":", "-.", "--")
    curves = sorted({(model[i], recipe[i], lr[i], seed[i]) for i in range(len(rows))})
    markers = ("o", "s", "^", "D", "v")
    lrs_of = {(m, r): sorted({c[2] for c in curves if c[:2] == (m, r)}) for m, r, _, _ in curves}
    fit_of = {(text([f], "model")[0], text([f], "recipe")[0], f["learning_rate"], f["seed"]): f for f in fits}
    with slide_style():
        fig = Figure(figsize=(13, 9.5), layout="constrained")
        axes = fig.subplots(2, 2, sharey=True)
        for col, sphere in enumerate(("inner", "outer")):
            suffix = "" if sphere == "inner" else "_outer"
            mu = numeric(rows, "mu" + suffix, results)
            lo, hi = numeric(rows, f"mu{suffix}_lower", results), numeric(rows, f"mu{suffix}_upper", results)
            for key in curves:
                idx = [i for i in range(len(rows)) if (model[i], recipe[i], lr[i], seed[i]) == key]
                idx = [i for i in sorted(idx, key=lambda i: step[i]) if mu[i] > 0]
                if not idx:
                    continue
                color = OKABE_ITO[recipes.index(key[1]) % len(OKABE_ITO)]
                ls = styles[models.index(key[0]) % len(styles)]
                t, m, b = step[idx], mu[idx], batch[idx][0]
                err = np.stack([np.where(np.isfinite(lo[idx]), m - lo[idx], 0.0),
                                np.where(np.isfinite(hi[idx]), hi[idx] - m, 0.0)])
                label = f"{key[0]}, {key[1]} (lr {key[2]:g}, batch {int(b)}, seed {int(key[3])})"
                marker = markers[lrs_of[key[:2]].index(key[2]) % len(markers)]
                for row, scale in ((0, 1.0), (1, b)):
                    axes[row, col].errorbar(t * scale, m, yerr=np.clip(err, 0, None), color=color, ls=ls,
                                            marker=marker, ms=4, capsize=2, lw=1.5,
                                            label=label if (col, row) == (0, 0) else None)
                f = fit_of.get((key[0], key[1], float(key[2]), float(key[3])))
                slope, icpt = (f or {}).get(f"slope_{sphere}"), (f or {}).get(f"intercept_{sphere}")
                if slope is not None and icpt is not None and slope < 0:
                    t_end = 10 ** min((-8 - icpt) / slope, np.log10(10 * t[-1]))  # no overflow when flat
                    tt = np.geomspace(t[-1] / 10, max(t_end, t[-1]), 30)
                    for row, scale in ((0, 1.0), (1, b)):
                        axes[row, col].plot(tt * scale, 10 ** (icpt + slope * np.log10(tt)), color=color,
                                            ls="--", lw=1, alpha=0.8)
            for row in range(2):
                ax = axes[row, col]
                ax.set_xscale("log")
                ax.set_yscale("log")
                ax.grid(True, which="major", alpha=0.3)
                ax.set_xlabel("training step" if row == 0 else "samples seen (step x batch)")
                for level in (1e-4, 1e-6, 1e-8):
                    ax.axhline(level, color="0.5", lw=0.8, ls=":")
                # exact quad-net rates of untrained or one-class nets reach 1e-150: keep the levels legible
                ax.set_ylim(Y_FLOOR, 2.0)
                ax.set_title(f"{sphere} sphere")
            axes[0, 0].set_ylabel("error rate mu (95% interval)")
            axes[1, 0].set_ylabel("error rate mu (95% interval)")
        fig.legend(loc="outside lower center", ncol=2, fontsize=9)
        fig.suptitle("Recipe study: error rate against training (dashed: power-law fit of the last decade; "
                     f"rates below {Y_FLOOR:g} off the bottom)")
        return save_png(fig, out)
