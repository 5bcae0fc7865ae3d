"""``spheres reproduce``: re-derive the paper's findings from scratch (the main job of ``make demo``).

Thin entry point over :func:`spheres.experiments.reproduce.reproduce`: loads the reproduction config
(``--quick``: the bundled ``quick`` preset; default: the paper's budgets, the ``full`` preset; or
``--config FILE``), runs every experiment resumably into ``--out``, optionally copies the figures
and tables into ``--figures``, and prints a summary with every figure path.

    spheres reproduce --quick
    spheres reproduce --quick --out results/quick --figures figures
    spheres reproduce --config my.toml --only tradeoff
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spheres.cli import _common

HELP = "reproduce the paper's experiments and figures (resumable; --quick for the CPU-sized budgets)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="reduced budgets that finish in minutes on a 2-core CPU (the bundled quick preset)")
    parser.add_argument("--config", metavar="FILE.toml", default=None,
                        help="reproduction config (default: the bundled full preset, the paper's budgets)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="results directory (default: results/quick or results/full); re-run to resume")
    parser.add_argument("--figures", metavar="DIR", default=None,
                        help="also copy every figure and its table into DIR (the curated set: figures/)")
    parser.add_argument("--only", metavar="NAME", action="append", default=[],
                        help="run only this experiment (repeatable), e.g. tradeoff")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    _common.add_run_flags(parser, dry_run=False)


def run(args: argparse.Namespace) -> int:
    from spheres.core.errors import InputError
    from spheres.experiments.reproduce import load_reproduce_config, preset_path, reproduce, summary_lines
    from spheres.nets.train import initialize_distributed

    initialize_distributed()  # several processes/hosts (README); a no-op for one process

    if args.config and args.quick:
        raise InputError("--config", "give either --quick or --config, not both")
    preset = "quick" if args.quick else "full"
    path = Path(args.config) if args.config else preset_path(preset)
    cfg = load_reproduce_config(path)
    if args.only:
        cfg = cfg.only(args.only)
    out = Path(args.out) if args.out else Path("results") / preset
    _common.check_output_dir(out, "--out")
    if args.figures:
        _common.check_output_dir(args.figures, "--figures")
    if not args.quiet:
        print(f"reproducing {', '.join(cfg.experiments)} from {path} into {out}/ (re-run the same command to resume)")
    parts = ["spheres reproduce"] + (["--quick"] if args.quick else []) + (
        [f"--config {args.config}"] if args.config else []) + [f"--only {n}" for n in args.only] + (
        [f"--out {args.out}"] if args.out else []) + ([f"--figures {args.figures}"] if args.figures else [])
    shown = args.config or f"{preset} preset"
    _common.setup_logging("reproduce", args)  # progress log lines of long trainings when not on a terminal
    report = reproduce(cfg, out, progress=not (args.no_progress or args.quiet), figures_dir=args.figures,
                       command=" ".join(parts), config_path=shown)
    print("\n".join(summary_lines(report, out)))
    print(f"summary: {out / 'summary.json'}")
    return 0
