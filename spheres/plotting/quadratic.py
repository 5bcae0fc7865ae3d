"""The quadratic net solved exactly: histogram of its coefficients alpha_i (docs/science.md sections 5 and 8).

After a rotation, the trained quadratic net says "outer iff sum_i alpha_i z_i^2 > 1". It is perfect on
both spheres iff every alpha_i lies in ``[1/R^2, 1]``; the paper's observation is that most alpha_i
lie outside that band, yet the error rates are tiny (the errors need many coordinates to conspire).
The figure shows the histogram (inside and outside the band in different colours, stacked), the band
shaded, its ends marked, and a box with the count outside and the exact error rates next to the
paper's normal (CLT) estimate, which is labelled as an estimate, never as the truth.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from spheres.core.errors import InputError
from spheres.plotting._common import OKABE_ITO, load_json, load_table, numeric, save_png, sci_plain, slide_style

SUMMARY_KEYS = ("radius", "alphas_outside", "dim", "exact_mu_inner", "exact_mu_outer", "clt_mu_inner",
                "clt_mu_outer", "exact_mean_distance", "train_size", "steps")
INSIDE, OUTSIDE = OKABE_ITO[2], OKABE_ITO[1]  # bluish green, vermillion
#: the net's rule for each orientation of :class:`spheres.maths.quadratic.Orientation` (optional summary key)
RULES = {
    "outer_if_greater": r"$\alpha_1 z_1^2 + \dots + \alpha_d z_d^2 > 1$",
    "outer_if_less": r"$\alpha_1 z_1^2 + \dots + \alpha_d z_d^2 < 1$",
    "outer_if_nonzero": r"$\alpha_1 z_1^2 + \dots + \alpha_d z_d^2 > 0$",
    "always_outer": "always (every point called outer)",
    "always_inner": "never (every point called inner)",
}


def band_membership(alpha: np.ndarray, radius: float) -> np.ndarray:
    """``1/R^2 <= alpha_i <= 1``: the coefficients that cannot cause an error on either sphere.

    Args:
      alpha: ``(h,)`` coefficients. radius: outer radius ``R > 1``.
    Returns:
      bool ``(h,)``.
    """
    alpha = np.asarray(alpha, np.float64)
    return (alpha >= 1.0 / radius**2) & (alpha <= 1.0)


def _number(summary: dict, key: str, path) -> float | None:
    v = summary[key]
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{path}: key '{key}'", f"holds {v!r}; a number or null is allowed")
    return float(v)


def draw_alphas(alphas_csv: str | os.PathLike, summary_json: str | os.PathLike, out_png: str | os.PathLike) -> list[Path]:
    """Draw the alpha_i histogram of a trained quadratic net from its saved coefficients and summary.

    Args:
      alphas_csv: table with a column ``alpha`` (one row per alpha_i).
      summary_json: object with the keys in :data:`SUMMARY_KEYS` (rates may be null when not computed)
        and optionally ``orientation`` (a :class:`spheres.maths.quadratic.Orientation` value; default
        ``outer_if_greater``, the case the band criterion is for).
      out_png: where to write the figure.
    Returns:
      ``[out_png]``.
    Raises:
      InputError: a file, column or key is missing, or a value is not numeric, or ``radius <= 1``.
    """
    alpha = numeric(load_table(alphas_csv, ("alpha",)), "alpha", alphas_csv)
    if not np.all(np.isfinite(alpha)):
        raise InputError(f"{alphas_csv}: column 'alpha'", "every alpha_i must be a finite number")
    summary = load_json(summary_json, SUMMARY_KEYS)
    num = {k: _number(summary, k, summary_json) for k in SUMMARY_KEYS}
    radius = num["radius"]
    if radius is None or radius <= 1:
        raise InputError(f"{summary_json}: key 'radius'", f"must be a number > 1, got {summary['radius']!r}")
    lo_band = 1.0 / radius**2
    inside = band_membership(alpha, radius)
    n_out = int(np.sum(~inside))

    lo = min(float(alpha.min()), lo_band)
    hi = max(float(alpha.max()), 1.0)
    pad = 0.06 * (hi - lo)
    n_bins = int(np.clip(round(2 * np.sqrt(alpha.size)), 10, 45))
    bins = np.linspace(lo - pad, hi + pad, n_bins + 1)

    with slide_style():
        fig = Figure(figsize=(11.5, 6.0), layout="constrained")
        grid = fig.add_gridspec(1, 2, width_ratios=(2.7, 1.0))
        ax = fig.add_subplot(grid[0])
        info = fig.add_subplot(grid[1])
        info.set_axis_off()
        ax.axvspan(lo_band, 1.0, color=INSIDE, alpha=0.13, lw=0, zorder=0)
        ax.hist([alpha[inside], alpha[~inside]], bins=bins, stacked=True, color=[INSIDE, OUTSIDE],
                edgecolor="white", linewidth=0.5, zorder=2)
        # the lower label hangs to the left of its line and the upper to the right, so they never overlap
        for x, label, ha in ((lo_band, rf"$1/R^2 = {lo_band:.4f}$ ", "right"), (1.0, " $1$", "left")):
            ax.axvline(x, color="black", lw=1.8, ls="--", zorder=3)
            ax.text(x, 1.01, label, transform=ax.get_xaxis_transform(), ha=ha, va="bottom", fontsize=11)
        ax.set_xlim(bins[0], bins[-1])
        orientation = str(summary.get("orientation", "outer_if_greater"))
        rule = RULES.get(orientation, orientation)
        ax.set_xlabel(rf"$\alpha_i$   (the net says outer iff {rule}, $z$ = rotated input)")
        ax.set_ylabel(r"number of coefficients $\alpha_i$")
        n_train = "online" if not num["train_size"] else f"N = {int(num['train_size']):,}"
        steps = "" if num["steps"] is None else f", {int(num['steps']):,} steps"
        ax.set_title(f"The trained quadratic net, solved exactly: its {alpha.size} coefficients "
                     rf"$\alpha_i$" f"\n(d = {int(num['dim'])}, R = {radius:g}, {n_train}{steps})", pad=22)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, axis="y", alpha=0.3)

        reported = int(num["alphas_outside"]) if num["alphas_outside"] is not None else None
        count = f"{n_out} of {alpha.size} alphas outside [1/R\u00b2, 1]"
        if reported is not None and reported != n_out:
            count += f"\n(the summary says {reported})"
        dist = "n/a" if num["exact_mean_distance"] is None else f"{num['exact_mean_distance']:.4f}"
        box = "\n".join([
            count,
            "",
            "inner-sphere error rate",
            f"  exact              {sci_plain(num['exact_mu_inner'])}",
            f"  paper's estimate   {sci_plain(num['clt_mu_inner'])}",
            "outer-sphere error rate",
            f"  exact              {sci_plain(num['exact_mu_outer'])}",
            f"  paper's estimate   {sci_plain(num['clt_mu_outer'])}",
            "  (estimate: the paper's normal",
            "   approximation, its Eq. 3)",
            "",
            "exact d(E), inner sphere",
            f"  {dist}  (chord, radius 1)",
        ])
        if orientation != "outer_if_greater":
            box += ("\n\nNOTE: this net's sign case is\n" f"  {orientation};\n"
                    "  the band [1/R\u00b2, 1] criterion is\n  for 'outer iff sum > 1' only")
        info.text(0.0, 0.60, box, transform=info.transAxes, ha="left", va="top", fontsize=10, family="monospace",
                  bbox=dict(boxstyle="round,pad=0.6", fc="white", ec="0.6"))
        handles = [Patch(color=INSIDE, label=r"$\alpha_i$ in $[1/R^2, 1]$"),
                   Patch(color=OUTSIDE, label=r"$\alpha_i$ outside"),
                   Patch(color=INSIDE, alpha=0.13, label="perfect on both spheres\niff all alphas lie here")]
        info.legend(handles=handles, loc="upper left", frameon=False, borderaxespad=0.0)
        return [save_png(fig, out_png)]
