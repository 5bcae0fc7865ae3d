"""The ``defences`` figure: the Fig. 4 plane of each sphere, one marker per defence, d(E) as [certified, attack]."""

from __future__ import annotations

from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from spheres.measure.results import DefenceRow, read_rows
from spheres.plotting._common import save_png

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
    failed on some points), certified lower ends as bar bottoms, the cap bound at each point's mu (dashed),
    faded where either sphere's error exceeds ``threshold``."""
    table_rows = read_rows(table, DefenceRow)
    names = list(dict.fromkeys(r.defence for r in table_rows))
    fig = Figure(figsize=(13, 5.5))
    axes = fig.subplots(1, 2)
    for ax, (title, mu, dist, fail, cert, bound) in zip(axes, _PANELS):
        g = getattr
        rows = [r for r in table_rows if g(r, mu) is not None and g(r, mu) > 0 and g(r, dist) is not None]
        curve = sorted((g(r, mu), g(r, bound)) for r in rows if g(r, bound) is not None)
        if curve:
            ax.plot(*zip(*curve), "k--", lw=1, label="cap bound d_cap(mu)")
        for k, name in enumerate(names):
            for r in (r for r in rows if r.defence == name):
                c = _strength_colour(table_rows, r)
                alpha = 1.0 if (r.worst_error() or 1.0) <= threshold else 0.25
                if g(r, cert) is not None:
                    lo = max(g(r, cert), 1e-4)
                    ax.plot([g(r, mu)] * 2, [lo, g(r, dist)], color=c, alpha=alpha, lw=1)
                    ax.plot(g(r, mu), lo, "_", color=c, alpha=alpha, ms=8)
                ax.plot(g(r, mu), g(r, dist), MARKERS[k % len(MARKERS)], color=c, alpha=alpha, ms=6,
                        mfc=c if g(r, fail) == 0 else "none")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("error rate mu(E)")
        ax.set_ylabel("d(E): attack (marker), certified (bar bottom)")
        ax.set_title(title, fontsize=10)
    for k, name in enumerate(names):
        axes[1].plot([], [], MARKERS[k % len(MARKERS)], color="grey", label=name)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(f"Defences against the cap bound (colour: strength rank within each defence, dark = weakest; "
                 f"faded: error > {threshold:g} on either sphere)", fontsize=10)
    fig.tight_layout()
    return [save_png(fig, Path(out))]
