"""``spheres attribute RUN_DIR``: attributions with a ground truth for every model and checkpoint of a run.

Thin entry point over :func:`spheres.measure.attribution_run.attribute_run`: parses the budgets,
measures (resumably), writes ``RUN_DIR/attributions.csv`` and prints a summary of the last
checkpoint (or, with ``--json``, every row as one JSON array).

    spheres attribute runs/quick
    spheres attribute runs/quick --points 256 --bands 6 --json
"""

from __future__ import annotations

import argparse
import json
import math

HELP = ("attributions with a ground truth: gradient and boundary-normal alignment with the radial ideal, "
        "boundary spread, BSM/BIG, band Shapley values, for every model and checkpoint of a run")


def _int_at_least(lo: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be an integer >= {lo}, got {text!r}")
        return value
    return parse


def _angle(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an angle in (0, pi/2) radians, got {text!r}") from None
    if not 0 < value < math.pi / 2:
        raise argparse.ArgumentTypeError(f"must be an angle in (0, pi/2) radians, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from spheres.measure.attribution_run import AttributeConfig

    d = AttributeConfig()
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `spheres train`")
    parser.add_argument("--points", type=_int_at_least(4), default=d.points,
                        help=f"labelled points per checkpoint, both spheres (>= 4, default {d.points})")
    parser.add_argument("--ig-steps", type=_int_at_least(1), default=d.ig_steps,
                        help=f"quadrature nodes of integrated gradients and BIG (default {d.ig_steps})")
    parser.add_argument("--starts", type=_int_at_least(2), default=d.starts,
                        help=f"attack starts per point for the boundary spread (>= 2, default {d.starts})")
    parser.add_argument("--start-angle", type=_angle, default=d.start_angle,
                        help=f"angle between a point and its starts, radians (default {d.start_angle})")
    parser.add_argument("--bands", type=int, choices=range(1, 11), metavar="M", default=d.bands,
                        help=f"direction bands for the Shapley values, 1 to 10 (2^M coalitions, default {d.bands})")
    parser.add_argument("--shapley-samples", type=_int_at_least(2), default=d.shapley_samples,
                        help=f"point pairs per Shapley estimate (default {d.shapley_samples})")
    parser.add_argument("--seed", type=_int_at_least(0), default=d.seed, help="measurement seed (default 0)")
    parser.add_argument("--step", type=_int_at_least(1), action="append", default=[],
                        help="measure only this checkpoint step (repeatable; default: every saved checkpoint)")
    parser.add_argument("--json", action="store_true", help="print every row as one JSON array")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fmt(x, spec: str = ".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _pm(row: dict, name: str) -> str:
    return f"{_fmt(row.get(name))}+-{_fmt(row.get(name + '_se'), '.1g')}"


def run(args: argparse.Namespace) -> int:
    from spheres.measure.attribution_run import TABLE_FILE, AttributeConfig, attribute_run
    from spheres.nets.runs import load_run

    acfg = AttributeConfig(points=args.points, ig_steps=args.ig_steps, starts=args.starts,
                           start_angle=args.start_angle, bands=args.bands, shapley_samples=args.shapley_samples,
                           seed=args.seed, steps=tuple(args.step))
    load_run(args.run_dir)  # fail fast, before anything is written
    rows = attribute_run(args.run_dir, acfg, progress=not args.no_progress and not args.json)
    if args.json:
        print(json.dumps(rows, allow_nan=False))
        return 0
    last = max(r["step"] for r in rows)
    cols = ("grad_radial", "on_grad_alignment", "off_grad_alignment", "spread_normal_spread", "big_ideal")
    print(f"{'member':>6} {'seed':>5} {'lr':>8}  " + "  ".join(f"{c:>22}" for c in cols) + "  top band (Shapley)")
    for r in (r for r in rows if r["step"] == last):
        vals = [r.get(f"shapley_independent_band{j}") for j in range(r["bands"])]
        top = max(range(r["bands"]), key=lambda j: vals[j])
        print(f"{r['member']:>6} {r['seed']:>5} {r['learning_rate']:>8.2g}  "
              + "  ".join(f"{_pm(r, c):>22}" for c in cols)
              + f"  {r[f'band{top}_name']}: {_pm(r, f'shapley_independent_band{top}')}")
    print(f"step {last}; {len(rows)} rows (members x checkpoints) in {args.run_dir}/{TABLE_FILE}")
    return 0
