"""Figures of the exact isoperimetric bound (docs/science.md sections 3 and 8).

* ``bound_vs_dim.png``: the exact optimal ``d(E)`` (mean chord distance to the nearest error for
  the worst-case error set, a cap) against the dimension ``d``, log-log, for a few error rates,
  with the paper's asymptotic form ``Phi^{-1}(1 - mu)/sqrt(d)`` dashed: the 1/sqrt(d) law.
* ``tradeoff_curve.png``: the exact optimal ``d(E)`` against the error rate ``mu`` for a few
  dimensions, with both asymptotic forms.

Each ``draw_*`` function draws a saved table (computed by :mod:`spheres.experiments.bound`).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from spheres.core.io import write_bytes_atomic, write_csv_atomic

#: the paper's dimension, marked on the bound-against-d figure
PAPER_DIM = 500
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def write_table_csv(table: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Write a table (dict of equal-length columns) as CSV, atomically, full float64 precision."""
    names = list(table)
    rows = [{n: int(v) if n == "dim" else float(v) for n, v in zip(names, row)} for row in zip(*table.values())]
    return write_csv_atomic(path, rows, names)


def read_table_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Inverse of :func:`write_table_csv`."""
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    names, body = rows[0], rows[1:]
    return {n: np.array([float(r[i]) for r in body]) for i, n in enumerate(names)}


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, metadata={"Software": None})
    return write_bytes_atomic(path, buf.getvalue())


def _positive(y: np.ndarray) -> np.ndarray:
    """Non-positive values (the plain asymptotic form at mu >= 1/2) are left off a log axis."""
    return np.where(y > 0, y, np.nan)


def _rate_label(mu: float) -> str:
    exp = int(np.round(np.log10(mu)))
    return rf"$\mu = 10^{{{exp}}}$" if np.isclose(mu, 10.0**exp) else rf"$\mu = {mu:g}$"


def _style_legend(ax, colored: list[tuple[str, str]], styles: list[tuple[str, str]], loc: str) -> None:
    """One legend: a coloured line per curve family, then a grey line per line style."""
    handles = [Line2D([], [], color=c, lw=2.2, label=lab) for c, lab in colored]
    handles += [Line2D([], [], color="0.25", lw=1.6, ls=ls, label=lab) for ls, lab in styles]
    ax.legend(handles=handles, fontsize=9, loc=loc, framealpha=0.92)


def draw_bound_vs_dim(table: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Draw ``bound_vs_dim.png`` from a :func:`bound_table` over many dims and a few rates."""
    fig = Figure(figsize=(7.5, 5.4), layout="constrained")
    ax = fig.add_subplot()
    rates = np.unique(table["error_rate"])[::-1]
    colored = []
    for color, mu in zip(_COLORS, rates):
        sel = table["error_rate"] == mu
        d = table["dim"][sel]
        exact = table["mean_distance"][sel]
        ax.plot(d, exact, color=color, lw=2.2)
        ax.plot(d, _positive(table["mean_distance_asymptotic"][sel]), color=color, lw=1.4, ls="--")
        at = d == PAPER_DIM
        if np.any(at):
            ax.plot(d[at], exact[at], "o", color=color, ms=5)
            ax.annotate(f"{exact[at][0]:.3g}", (d[at][0], exact[at][0]), xytext=(7, 3),
                        textcoords="offset points", fontsize=9, color=color)
        colored.append((color, _rate_label(mu)))
    ax.axvline(PAPER_DIM, color="0.5", lw=1, ls=":")
    ax.text(PAPER_DIM * 1.08, 0.98, f"d = {PAPER_DIM} (the paper)", transform=ax.get_xaxis_transform(),
            va="top", fontsize=9, color="0.35")
    ax.axhline(np.sqrt(2), color="0.6", lw=1, ls="-.")
    ax.text(0.99, np.sqrt(2) * 1.05, r"$\sqrt{2}$: mean distance to a single point (large d)",
            transform=ax.get_yaxis_transform(), ha="right", fontsize=8.5, color="0.35")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=2.6)
    ax.set_xlabel("dimension d")
    ax.set_ylabel("largest possible d(E): mean distance to the nearest error\n(chord, unit sphere; worst case: the errors form a cap)")
    ax.set_title("At a fixed error rate $\\mu$, the best possible d(E) shrinks like $1/\\sqrt{d}$")
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    _style_legend(ax, colored, [("-", "exact"), ("--", r"asymptotic $\Phi^{-1}(1-\mu)/\sqrt{d}$")], "lower left")
    return _save(fig, Path(path))


def draw_tradeoff_curve(table: dict[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Draw ``tradeoff_curve.png`` from a :func:`bound_table` over a few dims and many rates."""
    fig = Figure(figsize=(7.5, 5.4), layout="constrained")
    ax = fig.add_subplot()
    colored = []
    for color, dim in zip(_COLORS, np.unique(table["dim"])):
        sel = table["dim"] == dim
        mu = table["error_rate"][sel]
        ax.plot(mu, table["mean_distance"][sel], color=color, lw=2.2)
        ax.plot(mu, _positive(table["mean_distance_asymptotic"][sel]), color=color, lw=1.4, ls="--")
        ax.plot(mu, table["mean_distance_asymptotic_refined"][sel], color=color, lw=1.3, ls=":")
        colored.append((color, f"d = {int(dim)}"))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(table["error_rate"].min(), table["error_rate"].max())
    ax.set_xlabel(r"error rate $\mu(E)$ (fraction of the sphere misclassified)")
    ax.set_ylabel("largest possible d(E): mean distance to the nearest error\n(chord, unit sphere; worst case: the errors form a cap)")
    ax.set_title("Error rate vs distance to errors: every classifier lies on or below\nthe curve of its dimension d (Levy's isoperimetric inequality)", fontsize=11)
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)
    _style_legend(ax, colored, [("-", "exact"),
                                ("--", r"asymptotic $\Phi^{-1}(1-\mu)/\sqrt{d}$"),
                                (":", r"refined $(c\,\Phi(c)+\varphi(c))/\sqrt{d}$, $c=\Phi^{-1}(1-\mu)$" "\n(almost on top of exact)")],
                  "lower left")
    return _save(fig, Path(path))
