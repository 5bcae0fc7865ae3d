"""The ``defences`` figure: the Fig. 4 plane, one marker per defence, d(E) as [certified, attack]."""

from __future__ import annotations

from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from spheres.measure.results import DefenceRow, read_rows
from spheres.plotting._common import save_png

MARKERS = "osD^v<>ph*"


def draw_defences(table: Path, out: Path, threshold: float) -> list[Path]:
    """Inner mu(E) against d(E) from the saved table: attack markers, certified bracket bottoms,
    the cap bound at each point's mu (dashed), faded where either sphere's error exceeds ``threshold``."""
    rows = [r for r in read_rows(table, DefenceRow) if r.mu is not None and r.mu > 0 and r.distance is not None]
    fig = Figure(figsize=(7.5, 5))
    ax = fig.add_subplot()
    bound = sorted((r.mu, r.optimal_distance) for r in rows if r.optimal_distance is not None)
    if bound:
        ax.plot(*zip(*bound), "k--", lw=1, label="cap bound d_cap(mu)")
    names = list(dict.fromkeys(r.defence for r in rows))
    strengths = [r.strength for r in rows if r.strength is not None]
    lo, hi = (min(strengths), max(strengths)) if strengths else (0.0, 1.0)
    cmap = colormaps["viridis"]
    for k, name in enumerate(names):
        sub = [r for r in rows if r.defence == name]
        for r in sub:
            c = cmap(0.5 if hi == lo or r.strength is None else (r.strength - lo) / (hi - lo))
            alpha = 1.0 if (r.worst_error() or 1.0) <= threshold else 0.3
            if r.certified is not None:
                ax.plot([r.mu, r.mu], [max(r.certified, 1e-4), r.distance], color=c, alpha=alpha, lw=1)
                ax.plot(r.mu, max(r.certified, 1e-4), "_", color=c, alpha=alpha, ms=8)
            ax.plot(r.mu, r.distance, MARKERS[k % len(MARKERS)], color=c, alpha=alpha, ms=6,
                    mfc=c if r.distance_failures == 0 else "none")
        ax.plot([], [], MARKERS[k % len(MARKERS)], color="grey", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("inner-sphere error rate mu(E)")
    ax.set_ylabel("d(E): attack (marker), certified (bar bottom)")
    ax.set_title(f"Defences against the cap bound (colour: strength {lo:g}..{hi:g} per defence's own scale)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return [save_png(fig, Path(out))]
