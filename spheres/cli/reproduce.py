"""``spheres reproduce``: re-derive the paper's findings from scratch (the main job of ``make demo``).

Thin entry point over :func:`spheres.experiments.reproduce.reproduce`: loads the reproduction config
(``--quick``, ``--standard`` or ``--full``: the bundled preset of that name; default: the paper's
budgets, the ``full`` preset; or ``--config FILE``), runs every experiment resumably into ``--out``,
optionally copies the figures and tables into ``--figures``, and prints a summary with every figure
path. ``--dry-run`` prints the plan (each experiment with the preset's estimated time) and exits.

    spheres reproduce --quick
    spheres reproduce --quick --out results/quick --figures figures
    spheres reproduce --standard --dry-run
    spheres reproduce --config my.toml --only tradeoff
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spheres.cli import _common

HELP = "reproduce the paper's experiments and figures (resumable; --quick for the CPU-sized budgets)"

#: preset flags, in the order of ``spheres.experiments.reproduce.PRESETS`` (kept here so that
#: ``--help`` imports no JAX; tests/test_presets.py checks that they agree)
PRESET_HELP = {
    "quick": "reduced budgets that finish in minutes on a 2-core CPU (the bundled quick preset)",
    "standard": "d = 500 and the paper's nets, sized for 2 hours on a quiet 2-core CPU (the standard preset)",
    "full": "the paper's budgets, sized for one GPU (the full preset; the default)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    presets = parser.add_mutually_exclusive_group()
    for name, text in PRESET_HELP.items():
        presets.add_argument(f"--{name}", action="store_true", help=text)
    parser.add_argument("--config", metavar="FILE.toml", default=None,
                        help="reproduction config (default: the bundled full preset, the paper's budgets)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="results directory (default: results/<preset>); re-run to resume")
    parser.add_argument("--figures", metavar="DIR", default=None,
                        help="also copy every figure and its table into DIR (the curated set: figures/)")
    parser.add_argument("--only", metavar="NAME", action="append", default=[],
                        help="run only this experiment (repeatable), e.g. tradeoff")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    _common.add_run_flags(parser, dry_run=False)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (every experiment with the config's estimated time) and exit; "
                             "writes nothing")


def run(args: argparse.Namespace) -> int:
    from spheres.core.errors import InputError
    from spheres.experiments.reproduce import (load_reproduce_config, plan_lines, preset_path, reproduce,
                                               summary_lines)
    from spheres.nets.train import initialize_distributed

    initialize_distributed()  # several processes/hosts (README); a no-op for one process

    chosen = [name for name in PRESET_HELP if getattr(args, name)]
    if args.config and chosen:
        raise InputError("--config", f"give either --{chosen[0]} or --config, not both")
    preset = chosen[0] if chosen else "full"
    path = Path(args.config) if args.config else preset_path(preset)
    cfg = load_reproduce_config(path)
    if args.only:
        cfg = cfg.only(args.only)
    out = Path(args.out) if args.out else Path("results") / preset
    if args.dry_run:
        print(f"spheres reproduce: plan: {', '.join(cfg.experiments)} from {path} into {out}/ (resumable)")
        print("\n".join(plan_lines(cfg)))
        return 0
    _common.check_output_dir(out, "--out")
    if args.figures:
        _common.check_output_dir(args.figures, "--figures")
    if not args.quiet:
        print(f"reproducing {', '.join(cfg.experiments)} from {path} into {out}/ (re-run the same command to resume)")
    parts = ["spheres reproduce"] + [f"--{n}" for n in chosen] + (
        [f"--config {args.config}"] if args.config else []) + [f"--only {n}" for n in args.only] + (
        [f"--out {args.out}"] if args.out else []) + ([f"--figures {args.figures}"] if args.figures else [])
    shown = args.config or f"{preset} preset"
    _common.setup_logging("reproduce", args)  # progress log lines of long trainings when not on a terminal
    report = reproduce(cfg, out, progress=not (args.no_progress or args.quiet), figures_dir=args.figures,
                       command=" ".join(parts), config_path=shown)
    print("\n".join(summary_lines(report, out)))
    print(f"summary: {out / 'summary.json'}")
    return 0
