"""``spheres demo``: the main job of ``make demo``.

Prints a short table of the exact isoperimetric bound (cap threshold, exact optimal d(E),
asymptotic form) for d in {50, 500, 5000} and mu in {1e-2, 1e-4, 1e-8}, then regenerates the two
bound figures (PNG with their CSV data) and prints each path.
"""

from __future__ import annotations

import argparse

HELP = "print a table of the exact isoperimetric bound and regenerate the bound figures"

DEMO_DIMS = (50, 500, 5000)
DEMO_RATES = (1e-2, 1e-4, 1e-8)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="figures", help="directory for the figures and their CSV data (default: figures)")


def demo_table() -> str:
    """The bound on the grid ``DEMO_DIMS x DEMO_RATES`` as a fixed-width text table."""
    import numpy as np

    from spheres.maths import theory

    d = np.array(DEMO_DIMS)[:, None]
    mu = np.array(DEMO_RATES)[None, :]
    t = theory.cap_threshold(mu, d)
    exact = theory.mean_distance_to_cap(mu, d, "chord")
    geo = theory.mean_distance_to_cap(mu, d, "geodesic")
    asym = theory.asymptotic_distance(mu, d)
    head = f"{'d':>6} {'mu(E)':>8} {'threshold t':>12} {'d(E) chord':>11} {'geodesic':>9} {'asymptotic':>11} {'asym/exact':>11}"
    lines = ["Optimal mean distance d(E) to the nearest error, unit sphere in R^d (worst case: a cap {x_1 >= t})",
             head, "-" * len(head)]
    for i, dim in enumerate(DEMO_DIMS):
        for j, rate in enumerate(DEMO_RATES):
            lines.append(f"{dim:>6} {rate:>8.0e} {t[i, j]:>12.6f} {exact[i, j]:>11.6f} {geo[i, j]:>9.6f} "
                         f"{asym[i, j]:>11.6f} {asym[i, j] / exact[i, j]:>11.4f}")
    lines.append("asymptotic = Phi^-1(1 - mu)/sqrt(d) (Gilmer et al. 2018); exact = docs/science.md section 3.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spheres.experiments import bound  # matplotlib only when drawing
    from spheres.experiments.base import Context
    from spheres.cli._common import check_output_dir

    check_output_dir(args.out, "--out")
    print(demo_table())
    print()
    ctx = Context(Path(args.out), progress=False)
    bound.run(bound.BoundConfig(), ctx)
    for path in bound.draw(ctx) + bound.EXPERIMENT.table_paths(ctx):
        print(f"wrote {path}")
    return 0
