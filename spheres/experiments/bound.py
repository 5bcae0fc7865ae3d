"""Experiment ``bound``: the exact isoperimetric bound against the dimension and the error rate.

No training. The tables are the exact cap bound (:mod:`spheres.maths.theory`) on two grids: ``d``
log-spaced from 2 to 10^5 at a few error rates (the 1/sqrt(d) law), and ``mu`` log-spaced from
1e-12 to 1/2 at a few dimensions (the curve every classifier lies under). This is the smallest
experiment module: copy it to add one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spheres.core.config import check_dim, check_float
from spheres.core.errors import InputError
from spheres.experiments.base import Context, Experiment, Report
from spheres.maths import theory
from spheres.plotting.bound import PAPER_DIM, draw_bound_vs_dim, draw_tradeoff_curve, read_table_csv, write_table_csv

#: columns of both tables
COLUMNS = ("dim", "error_rate", "threshold", "mean_distance", "mean_distance_geodesic",
           "mean_distance_asymptotic", "mean_distance_asymptotic_refined")


@dataclass(frozen=True)
class BoundConfig:
    """The two grids.

    Attributes:
      rates: error rates of the bound-against-d table (each in (0, 1)).
      dims: dimensions of the bound-against-mu table (each >= 2).
      paper_dim: a dimension always included in the d grid (the paper's d = 500).
    """

    rates: tuple[float, ...] = (1e-2, 1e-4, 1e-8)
    dims: tuple[int, ...] = (50, 500, 5000)
    paper_dim: int = PAPER_DIM

    def __post_init__(self):
        for name in ("rates", "dims"):
            if not isinstance(getattr(self, name), tuple) or not getattr(self, name):
                raise InputError(name, "must be a non-empty list")
        for r in self.rates:
            check_float("rates", r, 0.0, lo_open=True, hi=1.0, hi_open=True)
        for d in self.dims:
            check_dim("dims", d)
        check_dim("paper_dim", self.paper_dim)


def bound_table(dims: np.ndarray, rates: np.ndarray) -> dict[str, np.ndarray]:
    """Theory on the grid ``dims x rates`` as flat columns (``dim`` varies slowest).

    Args:
      dims: integer dimensions, shape ``(n_d,)``.
      rates: error rates in (0, 1), shape ``(n_mu,)``.
    Returns:
      dict of the :data:`COLUMNS`, each of shape ``(n_d * n_mu,)``.
    """
    d, mu = np.broadcast_arrays(np.asarray(dims, np.int64)[:, None], np.asarray(rates, np.float64)[None, :])
    return {
        "dim": d.ravel(),
        "error_rate": mu.ravel(),
        "threshold": theory.cap_threshold(mu, d).ravel(),
        "mean_distance": theory.mean_distance_to_cap(mu, d, "chord").ravel(),
        "mean_distance_geodesic": theory.mean_distance_to_cap(mu, d, "geodesic").ravel(),
        "mean_distance_asymptotic": theory.asymptotic_distance(mu, d).ravel(),
        "mean_distance_asymptotic_refined": theory.asymptotic_distance_refined(mu, d).ravel(),
    }


def run(cfg: BoundConfig, ctx: Context) -> dict[str, Any]:
    dims = np.unique(np.append(np.round(np.logspace(np.log10(2), 5, 61)).astype(np.int64), cfg.paper_dim))
    write_table_csv(bound_table(dims, np.array(cfg.rates)), ctx.out / "bound_vs_dim.csv")
    rates = np.logspace(-12, np.log10(0.5), 80)
    write_table_csv(bound_table(np.array(cfg.dims), rates), ctx.out / "tradeoff_curve.csv")
    return {}


def draw(ctx: Context) -> list[Path]:
    return [draw_bound_vs_dim(read_table_csv(ctx.out / "bound_vs_dim.csv"), ctx.out / "bound_vs_dim.png"),
            draw_tradeoff_curve(read_table_csv(ctx.out / "tradeoff_curve.csv"), ctx.out / "tradeoff_curve.png")]


def report(summary: dict[str, Any], ctx: Context) -> Report:
    return Report()


EXPERIMENT = Experiment(
    name="bound", rank=0,
    description="The exact isoperimetric bound (no training): the largest mean distance to the nearest error that "
                "any classifier with a given error rate can have, reached when the errors form a spherical cap.",
    config=BoundConfig, run=run, draw=draw, report=report,
    tables=("bound_vs_dim.csv", "tradeoff_curve.csv"),
    figures=(
        ("bound_vs_dim.png", "The exact optimal d(E) (mean chord distance to the nearest error when the errors form "
         "a spherical cap, the worst case by Levy's isoperimetric inequality) against the dimension at "
         "mu = 1e-2, 1e-4, 1e-8, with the asymptotic form Phi^-1(1 - mu)/sqrt(d): the 1/sqrt(d) law."),
        ("tradeoff_curve.png", "The exact optimal d(E) against the error rate mu for d = 50, 500, 5000: every "
         "classifier lies on or below the curve of its dimension."),
    ),
)
