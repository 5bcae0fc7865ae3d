"""Typed result rows: one record per (net, checkpoint), to and from CSV.

A measurement of a run (:func:`spheres.measure.pipeline.measure_run`) yields wide rows with every
column it measured (``mu_inner_*``, ``mu_outer_*``, ``attack_*``, ``exact_*`` for quad nets). The
experiments tabulate them as :class:`ResultRow` records, which fix the vocabulary shared by the
tables, the figures and ``figures/README.md``:

``mu``, ``mu_lower``, ``mu_upper``, ``mu_method``, ``mu_samples``, ``mu_log10``
    the inner-sphere error rate mu(E): exact for the quadratic net (``mu_method = "exact"``, the
    interval collapses to the value), else Monte Carlo with its Clopper-Pearson interval or
    splitting with its repeat-based interval;
``distance``, ``distance_se``, ``distance_points``, ``distance_failures``
    the on-manifold attack's d(E): mean over the points where it found an error, its standard
    error, the points attacked and the failures (never averaged in);
``exact_distance``, ``clt_mu``
    for the quadratic net: the exact d(E) on the same points and the paper's CLT estimate;
``optimal_distance``, ``ratio``, ``consistent_with_bound``
    the cap bound at mu, ``distance / optimal_distance`` and the verdict of
    :func:`spheres.maths.theory.bound_check` (1, 0, or empty when there is nothing to check).

Every column is a field: a new measurement adds a field here (and its source in
:meth:`ResultRow.from_measurement`), and nothing downstream filters columns by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from spheres.core.errors import InputError
from spheres.core.io import read_csv, write_csv_atomic
from spheres.maths import theory

Row = TypeVar("Row", bound="ResultRow")


@dataclass(frozen=True)
class ResultRow:
    """One net at one checkpoint: its error rate, its nearest-error distance and the cap bound."""

    model: str
    dim: int
    seed: int
    learning_rate: float
    train_size: int
    step: int
    loss: float | None
    accuracy: float | None
    mu: float | None
    mu_lower: float | None
    mu_upper: float | None
    mu_method: str
    mu_samples: int | None
    mu_log10: float | None
    mu_outer: float | None
    distance: float | None
    distance_se: float | None
    distance_points: int | None
    distance_failures: int | None
    exact_distance: float | None
    clt_mu: float | None
    optimal_distance: float | None
    ratio: float | None
    consistent_with_bound: int | None

    @classmethod
    def from_measurement(cls: type[Row], m: dict[str, Any], **extra: Any) -> Row:
        """The row of one measurement (a row of ``measurements.csv``); ``extra`` fills subclass fields."""
        if m.get("exact_mu_inner") is not None:
            mu = lower = upper = float(m["exact_mu_inner"])
            method, samples, log10 = "exact", None, m.get("exact_mu_inner_log10")
        else:
            mu, lower, upper = m["mu_inner"], m["mu_inner_lower"], m["mu_inner_upper"]
            method, samples, log10 = m["mu_inner_method"], m["mu_inner_samples"], m.get("mu_inner_log10")
        distance, se = m["attack_mean_distance"], m["attack_mean_distance_se"]
        check = theory.bound_check(mu, lower, distance, se, m["dim"])
        return cls(
            model=m["model"], dim=m["dim"], seed=m["seed"], learning_rate=m["learning_rate"],
            train_size=m["train_size"], step=m["step"], loss=m["loss"], accuracy=m["accuracy"],
            mu=mu, mu_lower=lower, mu_upper=upper, mu_method=method, mu_samples=samples, mu_log10=log10,
            mu_outer=m.get("exact_mu_outer", m["mu_outer"]),
            distance=distance, distance_se=se, distance_points=m["attack_points"],
            distance_failures=m["attack_failures"], exact_distance=m.get("exact_mean_distance"),
            clt_mu=m.get("clt_mu_inner"), optimal_distance=check.optimal_distance, ratio=check.ratio,
            consistent_with_bound=None if check.consistent is None else int(check.consistent), **extra)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SweepRow(ResultRow):
    """A :class:`ResultRow` of a dimension sweep, with the model family (``quad-w{dim}``) it belongs to."""

    family: str = ""


def columns(cls: type[ResultRow]) -> list[str]:
    """The CSV columns of a row type, in field order."""
    return [f.name for f in dataclasses.fields(cls)]


def write_rows(path: str | Path, rows: list[ResultRow], cls: type[ResultRow] = ResultRow) -> Path:
    """Write typed rows as CSV (atomically, floats round-trip exactly)."""
    return write_csv_atomic(path, [r.as_dict() for r in rows], columns(cls))


def read_rows(path: str | Path, cls: type[Row] = ResultRow) -> list[Row]:
    """Read rows written by :func:`write_rows`; a missing column is an error naming the file and column."""
    names = columns(cls)
    out = []
    for raw in read_csv(path):
        missing = [c for c in names if c not in raw]
        if missing:
            raise InputError(str(path), f"missing column {missing[0]!r} (expected {', '.join(names)})")
        out.append(cls(**{c: raw[c] for c in names}))
    return out
