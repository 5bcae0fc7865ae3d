"""The interface every experiment implements, and the registry ``spheres reproduce`` loops over.

An experiment is one module under :mod:`spheres.experiments` that defines ``EXPERIMENT``, an
:class:`Experiment`:

``name``
    its key in the registry, its table in a reproduction config (``[tradeoff]``) and its folder
    under the results directory;
``description``
    one paragraph for ``figures/README.md``;
``config``
    a frozen config dataclass (:mod:`spheres.core.config`), built from the experiment's table;
``run(cfg, ctx) -> dict``
    does the work (resumably: training runs, measurement cells) and writes its tables into
    ``ctx.out``; returns the summary (JSON-able key numbers, computed from the tables);
``draw(ctx) -> list[Path]``
    makes the figures from the SAVED tables only (so figures can be redrawn without recomputing);
``report(summary, ctx) -> Report``
    the findings (plain-language claims computed from the summary, each with the rule that
    selects its points, their count and their uncertainty) and the markdown lines for
    ``figures/README.md``;
``tables``, ``figures``
    the file names (in ``ctx.out``) it writes, with a caption for each figure;
``inputs``
    the names of experiments whose results it reads (``ctx.inputs[name]`` is their folder).
    Experiments depend on each other only through declared inputs.

``rank`` orders the experiments when a config does not list them (smaller first; inputs always run
before the experiments that read them).

``check(cfg, configs)`` optionally validates against the other experiments' configs before
anything runs (``slices`` needs its model to be one of ``tradeoff``'s).

Adding an experiment: copy the smallest module (:mod:`spheres.experiments.bound`), give it a
name, and list it in :data:`spheres.experiments.registry.MODULES` (or call :func:`register`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Context:
    """Where an experiment works.

    Attributes:
      out: its results folder (``<results>/<name>/``), created before ``run``.
      inputs: ``{name: folder}`` of the experiments named in its ``inputs``.
      progress: show progress bars.
    """

    out: Path
    inputs: dict[str, Path] = field(default_factory=dict)
    progress: bool = True


@dataclass(frozen=True)
class Report:
    """What an experiment contributes to ``figures/README.md``.

    Attributes:
      findings: one sentence each, computed from the summary (never typed-in numbers).
      lines: markdown lines (tables of key numbers) for the experiment's own section.
    """

    findings: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Experiment:
    """One experiment: a config section, ``run`` (tables), ``draw`` (figures), ``report`` (findings)."""

    name: str
    description: str
    config: type
    run: Callable[[Any, Context], dict[str, Any]]
    draw: Callable[[Context], list[Path]]
    report: Callable[[dict[str, Any], Context], Report]
    tables: tuple[str, ...]
    figures: tuple[tuple[str, str], ...]
    inputs: tuple[str, ...] = ()
    check: Callable[[Any, dict[str, Any]], None] | None = None
    rank: int = 100

    def figure_paths(self, ctx: Context) -> list[Path]:
        return [ctx.out / f for f, _ in self.figures]

    def table_paths(self, ctx: Context) -> list[Path]:
        return [ctx.out / t for t in self.tables]


_REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    """Add (or replace) an experiment in the registry; returns it."""
    _REGISTRY[experiment.name] = experiment
    return experiment


def unregister(name: str) -> None:
    """Remove an experiment from the registry (tests use it for throw-away experiments)."""
    _REGISTRY.pop(name, None)


def registered() -> dict[str, Experiment]:
    """The registry, in registration order."""
    return dict(_REGISTRY)
