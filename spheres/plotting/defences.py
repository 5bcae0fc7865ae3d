"""The ``defences`` figure: the Fig. 4 plane of each sphere, one marker per defence, d(E) as [certified, attack]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from spheres.core.errors import InputError
from spheres.maths import theory
from spheres.measure.results import DefenceRow, read_rows
from spheres.plotting._common import save_png
from spheres.plotting.tradeoff import X_FLOOR

MARKERS = "osD^v<>ph*"

#: per sphere: (title, mu, distance, failures, certified, bound) fields of DefenceRow
_PANELS = (("inner sphere (radius 1)", "mu", "distance", "distance_failures", "certified", "optimal_distance"),
           ("outer sphere (radius R)", "mu_outer", "distance_outer", "distance_outer_failures", "certified_outer",
            "optimal_distance_outer"))


def _strength_colour(rows: list[DefenceRow], r: DefenceRow):
    """Colour by the strength's rank within its own defence (dark: weakest, light: strongest)."""
    values = sorted({x.strength for x in rows if x.defence == r.defence and x.strength is not None})
    if len(values) < 2 or r.strength is None:
        return colormaps["viridis"](0.45)
    return colormaps["viridis"](0.85 * values.index(r.strength) / (len(values) - 1))


def draw_defences(table: Path, out: Path, threshold: float) -> list[Path]:
    """Both spheres' mu(E) against d(E) from the saved table: attack markers (hollow where the attack
    failed on some points), certified lower ends as bar bottoms, the exact cap bound (solid), faded
    where either sphere's error exceeds ``threshold``. Rates below :data:`X_FLOOR` (the quad net's
    exact tails reach 1e-200) are drawn at the left edge and counted in a note."""
    table_rows = read_rows(table, DefenceRow)
    names = list(dict.fromkeys(r.defence for r in table_rows))
    dims = {r.dim for r in table_rows}
    if len(dims) != 1:
        raise InputError(f"{table}: column 'dim'", f"all rows must share one value; found {sorted(dims)}")
    dim, radius = dims.pop(), table_rows[0].outer_radius
    fig = Figure(figsize=(13, 5.8), layout="constrained")
    axes = fig.subplots(1, 2)
    notes = []
    for ax, (title, mu, dist, fail, cert, bound), scale in zip(axes, _PANELS, (1.0, radius)):
        g = getattr
        rows = [r for r in table_rows if g(r, mu) is not None and g(r, mu) > 0 and g(r, dist) is not None]
        xs = {id(r): max(g(r, mu), X_FLOOR) for r in rows}
        beyond = sum(1 for r in rows if g(r, mu) < X_FLOOR)
        x_min = min(min(xs.values(), default=1e-6), 1e-2) / 10**(0.9 if beyond else 0.35)  # room for arrows
        grid = np.logspace(np.log10(x_min), np.log10(0.999), 400)
        ax.plot(grid, scale * theory.mean_distance_to_cap(grid, dim), "k-", lw=1.6,
                label="cap bound d_cap(mu), exact")
        for k, name in enumerate(names):
            for r in (r for r in rows if r.defence == name):
                c = _strength_colour(table_rows, r)
                alpha = 1.0 if (r.worst_error() or 1.0) <= threshold else 0.25
                x = xs[id(r)]
                if g(r, cert) is not None:
                    ax.plot([x] * 2, [g(r, cert), g(r, dist)], color=c, alpha=alpha, lw=1)
                    ax.plot(x, g(r, cert), "_", color=c, alpha=alpha, ms=8)
                ax.plot(x, g(r, dist), MARKERS[k % len(MARKERS)], color=c, alpha=alpha, ms=6,
                        mfc=c if g(r, fail) == 0 else "none")
                if g(r, mu) < X_FLOOR:  # the real rate lies further left, where the bound is higher
                    ax.annotate("", xy=(x_min * 1.05, g(r, dist)), xytext=(x, g(r, dist)),
                                arrowprops=dict(arrowstyle="-|>", color=c, alpha=alpha, lw=1.2, shrinkA=4, shrinkB=0))
        ax.set_xscale("log")
        ax.set_xlim(x_min, 1.6)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.set_xlabel("error rate mu(E)")
        ax.set_ylabel("d(E): attack (marker), certified (bar bottom)")
        ax.set_title(title, fontsize=10)
        if len(rows) < len(table_rows):
            notes.append(f"{title.split(' (')[0]}: {len(table_rows) - len(rows)} of {len(table_rows)} rows not shown "
                         "(error rate 0, e.g. exact, or no d(E): no error found); they are in the table.")
        if beyond:
            notes.append(f"{title.split(' (')[0]}: {beyond} point(s) with an error rate below {X_FLOOR:g} are drawn at "
                         f"{X_FLOOR:g} with an arrow to the left: their real rate (the table) is smaller, and the bound "
                         "there is higher than the curve's left end.")
    for k, name in enumerate(names):
        axes[1].plot([], [], MARKERS[k % len(MARKERS)], color="grey", label=name)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(f"Defences against the cap bound, d = {dim} (colour: strength rank within each defence, dark = "
                 f"weakest; faded: error > {threshold:g} on either sphere; hollow: the attack failed on some points)",
                 fontsize=10)
    if notes:
        fig.supxlabel("\n".join(notes), x=0.01, ha="left", fontsize=8.5, color="0.3")
    return [save_png(fig, Path(out))]
