"""``spheres reproduce``: a registry of experiments and a loop over them.

Every module of :mod:`spheres.experiments` that defines ``EXPERIMENT`` (an
:class:`~spheres.experiments.base.Experiment`) is registered when this module loads; a reproduction
config (TOML) has a top-level ``experiments`` list (the order they run in) and one table per
experiment, built into that experiment's config dataclass. Each experiment runs into
``<out>/<name>/`` (resumable: its runs, measurement cells and tables are kept), then draws its
figures from its saved tables. With ``figures_dir``, figures and tables are copied there with a
``README.md`` built from what each experiment reports (:func:`figures_readme`).

The bundled presets (``quick``, ``standard``, ``full``) are package data (:func:`preset_path`), so an
installed package finds them from any directory. A config may carry a top-level ``[estimate]`` table
(``machine = "..."`` and ``minutes = {experiment = minutes}``): the time each experiment was sized to
take on that machine, derived from measured throughputs (the preset's comments say how);
:func:`plan_lines` lists the experiments with it (``spheres reproduce --dry-run``).
"""

from __future__ import annotations

import datetime
import importlib
import importlib.resources
import json
import os
import platform
import pkgutil
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax

import spheres.experiments as _package
from spheres.core.config import check_float, load_section, read_toml
from spheres.core.errors import InputError
from spheres.core.io import json_safe, write_json_atomic, write_text_atomic
from spheres.experiments.base import Context, Experiment, register, registered

PRESETS = ("quick", "standard", "full")

for _info in pkgutil.iter_modules(_package.__path__):
    _module = importlib.import_module(f"{_package.__name__}.{_info.name}")
    if isinstance(getattr(_module, "EXPERIMENT", None), Experiment):
        register(_module.EXPERIMENT)


def preset_path(name: str) -> Path:
    """The bundled reproduction config ``name`` (one of :data:`PRESETS`)."""
    if name not in PRESETS:
        raise InputError("--preset", f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return Path(str(importlib.resources.files(_package) / "presets" / f"{name}.toml"))


@dataclass(frozen=True)
class Estimate:
    """The ``[estimate]`` table of a reproduction config: minutes per experiment on ``machine``.

    Attributes:
      machine: the machine the estimate is for (e.g. "a quiet 2-core x86-64 CPU").
      minutes: ``((experiment, minutes >= 0), ...)``; the experiments of the config without an entry
        have no estimate (the plan says so).
    """

    machine: str = ""
    minutes: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        if not isinstance(self.machine, str) or not self.machine:
            raise InputError("estimate.machine", "must name the machine the estimate is for")
        if not isinstance(self.minutes, tuple):
            raise InputError("estimate.minutes", "must be a table of experiment = minutes")
        experiments = registered()
        for name, value in self.minutes:
            if name not in experiments:
                raise InputError(f"estimate.minutes.{name}", f"unknown experiment; allowed: {', '.join(experiments)}")
            check_float(f"estimate.minutes.{name}", value, 0.0)


@dataclass(frozen=True)
class ReproduceConfig:
    """Which experiments run, in order, and every registered experiment's config section."""

    experiments: tuple[str, ...]
    sections: tuple[tuple[str, Any], ...]
    estimate: Estimate | None = None

    def section(self, name: str) -> Any:
        return dict(self.sections)[name]

    def only(self, names: list[str]) -> "ReproduceConfig":
        for n in names:
            if n not in self.experiments:
                raise InputError("--only", f"unknown experiment {n!r}; allowed: {', '.join(self.experiments)}")
        return ReproduceConfig(tuple(n for n in self.experiments if n in names), self.sections, self.estimate)


def default_order() -> list[str]:
    """Every registered experiment, each after the experiments whose results it reads."""
    experiments, order = registered(), []

    def visit(name: str) -> None:
        if name not in order:
            for dep in experiments[name].inputs:
                visit(dep)
            order.append(name)

    for name in sorted(experiments, key=lambda n: (experiments[n].rank, n)):
        visit(name)
    return order


def config_from_table(data: dict[str, Any]) -> ReproduceConfig:
    """Validate a parsed reproduction config; errors name the full field path (``tradeoff.train.steps``)."""
    experiments = registered()
    allowed = ", ".join(experiments)
    for key in data:
        if key not in ("experiments", "estimate") and key not in experiments:
            raise InputError(key, f"unknown table; allowed: experiments, estimate, {allowed}")
    names = data.get("experiments", default_order())
    if not isinstance(names, list) or not names or any(n not in experiments for n in names):
        raise InputError("experiments", f"must be a non-empty list of: {allowed}")
    sections = {n: load_section(e.config, data.get(n, {}), n) for n, e in experiments.items()}
    for i, name in enumerate(names):
        exp = experiments[name]
        for dep in exp.inputs:
            if dep in names[i:]:
                raise InputError("experiments", f"{name} reads the results of {dep}: list {dep} before {name}")
        if exp.check is not None:
            exp.check(sections[name], {n: sections[n] for n in names})
    estimate = load_section(Estimate, data["estimate"], "estimate") if "estimate" in data else None
    if estimate is not None:
        for name, _ in estimate.minutes:
            if name not in names:
                raise InputError(f"estimate.minutes.{name}", "an estimate for an experiment the config does not run")
    return ReproduceConfig(tuple(names), tuple(sections.items()), estimate)


def load_reproduce_config(path: str | Path) -> ReproduceConfig:
    """Load and validate a reproduction config (TOML); errors name the field."""
    return config_from_table(read_toml(path))


def plan_lines(cfg: ReproduceConfig) -> list[str]:
    """The plan of a reproduction: each experiment in order with its estimated minutes (from the
    config's ``[estimate]`` table) and the total; nothing is computed or written."""
    minutes = dict(cfg.estimate.minutes) if cfg.estimate is not None else {}
    lines = [f"{'experiment':<14} {'estimate':>10}"]
    for name in cfg.experiments:
        lines.append(f"{name:<14} {f'{minutes[name]:.0f} min' if name in minutes else 'no estimate':>10}")
    known = [minutes[n] for n in cfg.experiments if n in minutes]
    if cfg.estimate is None:
        lines.append("no estimate: the config has no [estimate] table")
    else:
        missing = [n for n in cfg.experiments if n not in minutes]
        lines.append(f"{'total':<14} {sum(known):>6.0f} min on {cfg.estimate.machine}"
                     + (f" (without {', '.join(missing)}: no estimate)" if missing else ""))
    return lines


def curated_name(experiment: str, path: str | Path) -> str:
    """File name of a result in the curated figures directory: prefixed by its experiment unless it
    already says it (``results.csv`` of tradeoff -> ``tradeoff_results.csv``)."""
    base = Path(path).name
    return base if experiment == "bound" or base.startswith(experiment) else f"{experiment}_{base}"


def _context(exp: Experiment, out: Path, progress: bool) -> Context:
    return Context(out / exp.name, {dep: out / dep for dep in exp.inputs}, progress)


TIMING_FILE = "timing.json"


def _read_timing(path: Path) -> list[dict[str, Any]]:
    """The invocations recorded in an experiment's ``timing.json`` ([] if absent). An unreadable
    record is moved aside (``timing.json.corrupt``) with a warning: bookkeeping never stops a run."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        data = None
    runs = data.get("invocations") if isinstance(data, dict) else None
    if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        print(f"spheres reproduce: warning: {path}: unreadable timing record moved to {aside.name}; "
              "this experiment's time restarts from this invocation", file=sys.stderr, flush=True)
        return []
    return runs


def _record_timing(path: Path, runs: list[dict[str, Any]]) -> None:
    write_json_atomic(path, {"invocations": runs})


def timing_totals(runs: list[dict[str, Any]]) -> tuple[float, int, int]:
    """(seconds summed over the invocations with a recorded time, their count, the invocations
    killed before they could record one: ``seconds`` null)."""
    timed = [r for r in runs if isinstance(r.get("seconds"), (int, float))]
    return float(sum(r["seconds"] for r in timed)), len(timed), len(runs) - len(timed)


def reproduce(cfg: ReproduceConfig, out: str | Path, progress: bool = True, figures_dir: str | Path | None = None,
              command: str = "spheres reproduce", config_path: str = "") -> dict[str, Any]:
    """Run every experiment of ``cfg`` into ``out/<experiment>/`` (resumable); return the summaries.

    With ``figures_dir``, each experiment's figures and tables are copied there as well, with a
    ``README.md`` generated from the saved results (the curated set under ``figures/``).
    """
    out, experiments, report = Path(out), registered(), {}
    for name in cfg.experiments:
        exp, start = experiments[name], time.monotonic()
        print(f"== {name}", flush=True)
        ctx = _context(exp, out, progress)
        ctx.out.mkdir(parents=True, exist_ok=True)
        # every invocation's time is kept beside the results (an entry without seconds: killed before it could record them)
        timing_path = ctx.out / TIMING_FILE
        runs = _read_timing(timing_path) + [{"started": datetime.datetime.now(datetime.timezone.utc)
                                             .isoformat(timespec="seconds"), "seconds": None}]
        _record_timing(timing_path, runs)
        try:
            summary = exp.run(cfg.section(name), ctx)
            figures = exp.draw(ctx)
        except BaseException:  # an error or a signal: its time counts (finished cells are kept)
            runs[-1].update(seconds=round(time.monotonic() - start, 1), interrupted=True)
            _record_timing(timing_path, runs)
            raise
        runs[-1]["seconds"] = round(time.monotonic() - start, 1)
        _record_timing(timing_path, runs)
        total, finished, unrecorded = timing_totals(runs)
        report[name] = {"figures": [str(p) for p in figures], "tables": [str(p) for p in exp.table_paths(ctx)],
                        "summary": summary, "seconds": runs[-1]["seconds"], "total_seconds": round(total, 1),
                        "invocations": finished, "unrecorded": unrecorded}
        if figures_dir is not None:
            dest = Path(figures_dir)
            dest.mkdir(parents=True, exist_ok=True)
            for p in report[name]["figures"] + report[name]["tables"]:
                shutil.copyfile(p, dest / curated_name(name, p))
    write_json_atomic(out / "summary.json", json_safe(report))  # e.g. inf steps of a flat recipe fit
    if figures_dir is not None:
        write_text_atomic(Path(figures_dir) / "README.md", figures_readme(report, out, config_path, command))
    return report


def summary_lines(report: dict[str, Any], out: Path) -> list[str]:
    """The end-of-run summary for the terminal: time, findings and figure paths of every experiment."""
    experiments, lines = registered(), ["", "== summary"]
    for name, res in report.items():
        exp = experiments[name]
        lines.append(f"{name:<10} {res['seconds']:>7.1f} s")
        lines += [f"{'':<10} {f}" for f in exp.report(res["summary"], _context(exp, Path(out), False)).findings]
        lines += [f"{'':<10} figure: {p}" for p in res["figures"]]
    return lines


def _time_line(report: dict[str, Any]) -> str:
    """The README's time sentence: per experiment, summed over every invocation that worked on it."""
    total = {n: r["total_seconds"] for n, r in report.items()}
    counts = {n: (r["invocations"], r["unrecorded"]) for n, r in report.items()}
    resumed = any(c > 1 or i for c, i in counts.values())
    parts = []
    for n, t in total.items():
        c, i = counts[n]
        extra = [f"{c} invocations"] if c > 1 else []
        extra += [f"{i} killed before recording its time, not counted"] if i else []
        parts.append(f"{n} {t:.0f} s" + (f" ({', '.join(extra)})" if extra else ""))
    head = ("Wall time per experiment, summed over the invocations that worked on it (the run was resumed or "
            "re-run; each invocation's time is in `<out>/<experiment>/timing.json`): " if resumed else
            "Wall time per experiment: ")
    return head + ", ".join(parts) + f"; total {sum(total.values()) / 60:.1f} min."


def figures_readme(report: dict[str, Any], out: Path, config_path: str, command: str) -> str:
    """The text of ``figures/README.md``: what each figure shows, the command that made it, the findings
    and the key numbers, all from what each experiment reports on its saved results."""
    experiments = registered()
    parts = {name: experiments[name].report(res["summary"], _context(experiments[name], out, False))
             for name, res in report.items()}
    lines = ["# Figures", "",
             f"Made by `{command}` (config `{config_path}`). The files here are copied from the run's results "
             "directory; every number below is read from the saved tables, not typed in. Re-running the command "
             "regenerates all of it.", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_implementation()} "
             f"{platform.python_version()}, jax {jax.__version__} on {jax.default_backend()}. "
             + _time_line(report), ""]
    findings = [f for p in parts.values() for f in p.findings]
    if findings:
        lines += ["## What this run shows (computed from the tables below)", ""] + [f"- {f}" for f in findings] + [""]
    for name, res in report.items():
        exp = experiments[name]
        lines += [f"## {name}", "", exp.description, ""]
        for fig, caption in exp.figures:
            lines += [f"![{fig}]({curated_name(name, fig)})", "", f"**{curated_name(name, fig)}**: {caption}", ""]
        lines += list(parts[name].lines)
        lines += [f"Tables: {', '.join('`' + curated_name(name, p) + '`' for p in res['tables'])}.", ""]
    return "\n".join(lines)
