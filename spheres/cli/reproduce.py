"""``spheres reproduce``: re-derive the paper's findings from scratch (the main job of ``make demo``).

Thin entry point over :func:`spheres.experiments.reproduce.reproduce`: loads the reproduction config
(``--quick``: ``experiments/configs/reproduce_quick.toml``; default: the paper's budgets in
``reproduce.toml``; or ``--config FILE``), runs every experiment resumably into ``--out``,
optionally copies the figures and tables into ``--figures``, and prints a summary table with
every figure path.

    spheres reproduce --quick
    spheres reproduce --quick --out results/quick --figures figures
    spheres reproduce --config my.toml --only tradeoff
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spheres.cli import _common

HELP = "reproduce the paper's experiments and figures (resumable; --quick for the CPU-sized budgets)"

CONFIG_DIR = Path(__file__).resolve().parents[2] / "experiments" / "configs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="reduced budgets that finish in ~15 minutes on a 2-core CPU (reproduce_quick.toml)")
    parser.add_argument("--config", metavar="FILE.toml", default=None,
                        help="reproduction config (default: experiments/configs/reproduce.toml, the paper's budgets)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="results directory (default: results/quick or results/full); re-run to resume")
    parser.add_argument("--figures", metavar="DIR", default=None,
                        help="also copy every figure and its table into DIR (the curated set: figures/)")
    parser.add_argument("--only", metavar="NAME", action="append", default=[],
                        help="run only this experiment (repeatable): bound, quadratic, tradeoff, dimsweep, slices")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    _common.add_run_flags(parser, dry_run=False)


def _fmt(x, spec=".3g") -> str:
    return "-" if x is None else format(x, spec)


def summary_lines(report: dict) -> list[str]:
    lines = ["", "== summary"]
    for name, res in report.items():
        s = res.get("summary", {})
        line = f"{name:<10} {res['seconds']:>7.1f} s"
        if name == "quadratic" and s:
            line += (f"  alphas outside [1/R^2, 1]: {s['alphas_outside']}/{s['dim']}; exact mu inner "
                     f"{_fmt(s['exact_mu_inner'])} (paper's CLT estimate {_fmt(s['clt_mu_inner'])}), outer "
                     f"{_fmt(s['exact_mu_outer'])} (CLT {_fmt(s['clt_mu_outer'])}); exact d(E) "
                     f"{_fmt(s['exact_mean_distance'], '.4f')}")
        elif name in ("tradeoff", "dimsweep") and s:
            line += (f"  {s['points']} points, smallest mu {_fmt(s['smallest_mu'])}, d(E)/optimal (mu < 1/2) median "
                     f"{_fmt(s['ratio_median'])} [{_fmt(s['ratio_min'])}, {_fmt(s['ratio_max'])}], above the bound: "
                     f"{s['points_above_bound']}/{s['points_with_bound']}, with attack failures: "
                     f"{s['points_with_attack_failures']}")
            fit = s.get("fit", {}).get("all")
            if fit and fit.get("exponent") is not None:
                line += f"; exponent of d(E) in d: {fit['exponent']:.3f} +- {fit['exponent_se']:.3f} (n = {fit['n']})"
        lines.append(line)
        for p in res["figures"]:
            lines.append(f"{'':<10} figure: {p}")
    return lines


def run(args: argparse.Namespace) -> int:
    from spheres.core.errors import InputError
    from spheres.experiments.reproduce import EXPERIMENTS, load_reproduce_config, reproduce
    from spheres.nets.train import initialize_distributed

    initialize_distributed()  # several processes/hosts (README); a no-op for one process

    if args.config and args.quick:
        raise InputError("--config", "give either --quick or --config, not both")
    path = Path(args.config) if args.config else CONFIG_DIR / ("reproduce_quick.toml" if args.quick else "reproduce.toml")
    cfg = load_reproduce_config(path)
    if args.only:
        for name in args.only:
            if name not in EXPERIMENTS:
                raise InputError("--only", f"unknown experiment {name!r}; allowed: {', '.join(EXPERIMENTS)}")
        cfg = type(cfg)(**{**cfg.__dict__, "experiments": tuple(n for n in cfg.experiments if n in args.only)})
    out = Path(args.out) if args.out else Path("results") / ("quick" if args.quick else "full")
    _common.check_output_dir(out, "--out")
    if args.figures:
        _common.check_output_dir(args.figures, "--figures")
    if not args.quiet:
        print(f"reproducing {', '.join(cfg.experiments)} from {path} into {out}/ (re-run the same command to resume)")
    parts = ["spheres reproduce"] + (["--quick"] if args.quick else []) + (
        [f"--config {args.config}"] if args.config else []) + [f"--only {n}" for n in args.only] + (
        [f"--out {args.out}"] if args.out else []) + ([f"--figures {args.figures}"] if args.figures else [])
    command = " ".join(parts)
    try:
        shown = path.resolve().relative_to(CONFIG_DIR.parents[1])
    except ValueError:
        shown = path
    _common.setup_logging("reproduce", args)  # progress log lines of long trainings when not on a terminal
    report = reproduce(cfg, out, progress=not (args.no_progress or args.quiet), figures_dir=args.figures, command=command,
                       config_path=str(shown))
    print("\n".join(summary_lines(report)))
    print(f"summary: {out / 'summary.json'}", file=sys.stdout)
    return 0
