"""2-D slices through a trained net's decision boundary (docs/science.md section 8; data from :mod:`spheres.measure.slices`).

Each panel is a plane through the origin of R^d. The two spheres cut it in circles of radius 1
(inner class) and R (outer class); the max-margin boundary, the sphere of radius (1 + R)/2, in a
dashed circle. The background shows the class the net predicts (logit > 0: outer), the bold curve
its decision boundary (logit = 0). Where the boundary dips toward the unit circle, an inner-sphere
point has a nearby error: in planes through an adversarial direction these dips are visible, in
random planes they usually are not (the errors occupy a tiny fraction of the sphere).

Input: an ``.npz`` with, for panels ``k = 0, 1, ...``: ``coords_k`` ``(n,)``, ``logits_k`` ``(n, n)``
(``logits[i, j]`` at in-plane point ``(coords[j], coords[i])``), ``title_k`` (0-d string), optional
``points_k`` ``(m, 2)`` (in-plane coordinates: the start point, then the nearest error(s) found); and
``radius`` (0-d, R).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch

from spheres.core.errors import InputError
from spheres.plotting._common import load_npz, save_png, slide_style

INNER_FILL, OUTER_FILL = "#cfe6f7", "#fbd7bd"  # light blue / light orange: the predicted class
INNER_LINE, OUTER_LINE = "#0072B2", "#D55E00"  # Okabe-Ito blue / vermillion: the two spheres
ERROR_COLOR = "#CC79A7"  # Okabe-Ito reddish purple
MAX_PANELS = 6


def _panel(data: dict[str, np.ndarray], k: int, path) -> tuple[np.ndarray, np.ndarray, str, np.ndarray | None]:
    """Validated ``(coords, logits, title, points)`` of panel ``k``."""
    for key in (f"coords_{k}", f"logits_{k}", f"title_{k}"):
        if key not in data:
            raise InputError(f"{path}: key '{key}'", f"missing; the file has keys {sorted(data)}")
    coords = np.asarray(data[f"coords_{k}"])
    logits = np.asarray(data[f"logits_{k}"])
    if coords.ndim != 1 or coords.size < 2 or not np.issubdtype(coords.dtype, np.number):
        raise InputError(f"{path}: key 'coords_{k}'", f"expected a numeric (n,) array with n >= 2, got shape {coords.shape}")
    if not np.all(np.isfinite(coords)) or not np.all(np.diff(coords) > 0):
        raise InputError(f"{path}: key 'coords_{k}'", "grid coordinates must be finite and increasing")
    if logits.shape != (coords.size, coords.size) or not np.issubdtype(logits.dtype, np.number):
        raise InputError(f"{path}: key 'logits_{k}'",
                         f"expected a numeric ({coords.size}, {coords.size}) array, got shape {logits.shape}")
    points = None
    if f"points_{k}" in data:
        points = np.asarray(data[f"points_{k}"], np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise InputError(f"{path}: key 'points_{k}'", f"expected an (m, 2) array, got shape {points.shape}")
    return coords.astype(np.float64), logits.astype(np.float64), str(np.asarray(data[f"title_{k}"]).item()), points


def draw_slices(slices_npz: str | os.PathLike, out_png: str | os.PathLike) -> list[Path]:
    """Draw the decision-boundary slices side by side from a saved ``.npz``.

    Args:
      slices_npz: arrays as described in the module docstring (at least panel 0 and ``radius``).
      out_png: where to write the figure.
    Returns:
      ``[out_png]``.
    Raises:
      InputError: the file or a key is missing, or an array has the wrong shape, or ``radius <= 1``.
    """
    data = load_npz(slices_npz)
    if "radius" not in data:
        raise InputError(f"{slices_npz}: key 'radius'", f"missing; the file has keys {sorted(data)}")
    radius = np.asarray(data["radius"])
    if radius.size != 1 or not np.issubdtype(radius.dtype, np.number) or not float(radius.item()) > 1:
        raise InputError(f"{slices_npz}: key 'radius'", f"expected one number R > 1, got {radius!r}")
    radius = float(radius.item())
    n_panels = 0
    while n_panels < MAX_PANELS and f"logits_{n_panels}" in data:
        n_panels += 1
    panels = [_panel(data, k, slices_npz) for k in range(max(n_panels, 1))]
    margin = (1.0 + radius) / 2

    with slide_style():
        fig = Figure(figsize=(max(5.0 * len(panels), 11.0), 6.0), layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        no_boundary, any_points = [], False
        for k, (ax, (coords, logits, title, points)) in enumerate(zip(axes, panels)):
            masked = np.ma.masked_invalid(logits)
            finite = logits[np.isfinite(logits)]
            # filled by sign with the same (linear) interpolation as the boundary line, so they agree
            big = 2.0 * float(np.max(np.abs(finite), initial=0.0)) + 1.0
            ax.contourf(coords, coords, masked, levels=[-big, 0.0, big], colors=[INNER_FILL, OUTER_FILL], zorder=0)
            if finite.size and finite.min() < 0 < finite.max():
                ax.contour(coords, coords, masked, levels=[0.0], colors="black", linewidths=2.6, zorder=3)
            else:
                no_boundary.append(k)
                ax.text(0.5, 0.04, "no decision boundary in this plane", transform=ax.transAxes, ha="center",
                        fontsize=10, color="0.25")
            ax.add_patch(Circle((0, 0), 1.0, fill=False, ec=INNER_LINE, lw=2.0, zorder=2))
            ax.add_patch(Circle((0, 0), margin, fill=False, ec="0.3", lw=1.5, ls=(0, (5, 3)), zorder=2))
            ax.add_patch(Circle((0, 0), radius, fill=False, ec=OUTER_LINE, lw=2.0, zorder=2))
            if points is not None and len(points):
                any_points = True
                if len(points) > 1:
                    for p in points[1:]:
                        ax.plot([points[0, 0], p[0]], [points[0, 1], p[1]], color="black", lw=1.0, zorder=4)
                    ax.plot(points[1:, 0], points[1:, 1], "X", ms=11, mfc=ERROR_COLOR, mec="black", mew=1.0, zorder=5)
                ax.plot(points[0, 0], points[0, 1], "o", ms=8, mfc="black", mec="white", mew=1.0, zorder=5)
            ax.set_xlim(coords[0], coords[-1])
            ax.set_ylim(coords[0], coords[-1])
            ax.set_aspect("equal")
            ax.set_title(f"({chr(ord('a') + k)}) {title}", fontsize=12)
            ax.set_xlabel("in-plane coordinate 1")
            if k == 0:
                ax.set_ylabel("in-plane coordinate 2")
        fig.suptitle(f"Slices through the decision boundary of a trained net (planes through the origin; R = {radius:g})\n"
                     "where the blue circle (inner sphere) runs through orange, the net misclassifies inner points")
        handles = [Patch(fc=INNER_FILL, ec="0.6", label="predicted inner (logit < 0)"),
                   Patch(fc=OUTER_FILL, ec="0.6", label="predicted outer (logit > 0)"),
                   Line2D([], [], color="black", lw=2.6, label="decision boundary (logit = 0)"),
                   Line2D([], [], color=INNER_LINE, lw=2.0, label="inner sphere, radius 1"),
                   Line2D([], [], color="0.3", lw=1.5, ls=(0, (5, 3)), label=f"max-margin boundary, radius {margin:g}"),
                   Line2D([], [], color=OUTER_LINE, lw=2.0, label=f"outer sphere, radius {radius:g}")]
        if any_points:
            handles += [Line2D([], [], ls="none", marker="o", ms=8, mfc="black", mec="white", label="start point"),
                        Line2D([], [], ls="none", marker="X", ms=11, mfc=ERROR_COLOR, mec="black",
                               label="nearest error found")]
        fig.legend(handles=handles, loc="outside lower center", ncols=4 if len(panels) >= 3 else 3, frameon=False)
        return [save_png(fig, out_png)]
