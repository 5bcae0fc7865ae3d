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
    for the quadratic net: the exact d(E) on the same points and the paper's CLT estimate.
    ``exact_distance`` is ``inf`` (written ``inf`` in the CSV) when the net has no error on that
    sphere (``error_set = "no errors (exact)"``: no point has a nearest error), and empty only
    where there is no exact value (not a quad net);
``optimal_distance``, ``ratio``, ``consistent_with_bound``
    the cap bound at mu, ``distance / optimal_distance`` and the verdict of
    :func:`spheres.maths.theory.bound_check` (1, 0, or empty when there is nothing to check, or when
    the attack failed on some points: a mean with failures enters no bound check);
    ``optimal_distance_low``/``_high`` are the bound at the ends of mu's interval.
``*_outer``
    the same for the outer sphere (distances on the sphere of radius ``outer_radius``; bound
    ``outer_radius * d_cap``); ``distance_upper`` is the strict upper bound (failures counted at
    the diameter); ``error_set`` says "no errors found" where nothing saw an error;
    ``selected`` marks the rows a finding speaks about (see the experiment's rule);
``mu_mc_errors``, ``mu_outer_mc_errors``
    the errors plain Monte Carlo saw in its ``mu_samples`` draws (also where the rate is exact or
    from splitting, which replaces too few of them); empty where no Monte Carlo pass ran.

Every column is a field: a new measurement adds a field here (and its source in
:meth:`ResultRow.from_measurement`), and nothing downstream filters columns by name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from spheres.core.errors import InputError
from spheres.core.io import json_safe, read_csv, write_csv_atomic
from spheres.maths import theory

Row = TypeVar("Row", bound="ResultRow")


def _sphere(m: dict[str, Any], sphere: str) -> dict[str, Any]:
    """One sphere's error rate (exact where the quad net has one) and d(E) from a measurement row."""
    if m.get(f"exact_mu_{sphere}") is not None:
        mu = lower = upper = float(m[f"exact_mu_{sphere}"])
        out = dict(mu=mu, lower=lower, upper=upper, method="exact", samples=None, evaluations=None, status="ok",
                   log10=m.get(f"exact_mu_{sphere}_log10"))
    else:
        method = m[f"mu_{sphere}_method"]
        out = dict(mu=m[f"mu_{sphere}"], lower=m[f"mu_{sphere}_lower"], upper=m[f"mu_{sphere}_upper"], method=method,
                   samples=m.get(f"mu_{sphere}_mc_samples", m.get(f"mu_{sphere}_samples")),
                   evaluations=m.get(f"mu_{sphere}_splitting_evaluations"), status=m.get(f"mu_{sphere}_status"),
                   log10=m.get(f"mu_{sphere}_log10"))
        if method != "splitting":
            out["evaluations"] = m.get(f"mu_{sphere}_splitting_evaluations")  # a failed splitting run's cost
    out["mc_errors"] = m.get(f"mu_{sphere}_mc_errors")  # errors plain sampling saw (also beside an exact rate)
    prefix = "attack" if sphere == "inner" else "attack_outer"
    out.update(distance=m.get(f"{prefix}_mean_distance"), se=m.get(f"{prefix}_mean_distance_se"),
               points=m.get(f"{prefix}_points"), failures=m.get(f"{prefix}_failures"),
               upper_bound=m.get(f"{prefix}_upper_bound"))
    return out


def _exact_distance(m: dict[str, Any], suffix: str) -> float | None:
    """The quad net's exact d(E) on one sphere (``suffix`` "" inner, "_outer"): ``inf`` where no
    point of the sphere has an error to reach (the measurement stores no mean and counts every point
    unreachable), ``None`` where there is no exact value (not a quad net)."""
    mean = m.get(f"exact_mean_distance{suffix}")
    if mean is None and (m.get(f"exact_unreachable{suffix}") or 0) > 0:
        return math.inf
    return mean


def _error_set(s: dict[str, Any]) -> str:
    """``errors`` when the sphere has a measured error set; ``no errors found`` when nothing saw one."""
    if s["method"] == "exact":
        return "errors" if s["mu"] > 0 else "no errors (exact)"
    saw = (s["mu"] or 0) > 0 or (s["points"] is not None and s["failures"] is not None and s["failures"] < s["points"])
    return "errors" if saw else "no errors found"


@dataclass(frozen=True)
class ResultRow:
    """One net at one checkpoint: its error rate and nearest-error distance on both spheres, against the bound.

    The inner-sphere columns keep their short names (``mu``, ``distance``); the outer sphere's carry
    ``_outer``. Distances on the outer sphere are chords of the sphere of radius ``outer_radius``,
    and its bound is ``outer_radius * d_cap``.
    """

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
    # -- added for the findings: the method's status and cost, both spheres, strict bounds, the selection
    outer_radius: float = 1.3
    accuracy_samples: int | None = None
    mu_status: str | None = None
    mu_evaluations: int | None = None
    error_set: str = ""
    distance_upper: float | None = None
    ratio_se: float | None = None
    exact_unreachable: int | None = None
    mu_outer_lower: float | None = None
    mu_outer_upper: float | None = None
    mu_outer_method: str = ""
    mu_outer_samples: int | None = None
    mu_outer_evaluations: int | None = None
    mu_outer_status: str | None = None
    mu_outer_log10: float | None = None
    error_set_outer: str = ""
    distance_outer: float | None = None
    distance_outer_se: float | None = None
    distance_outer_points: int | None = None
    distance_outer_failures: int | None = None
    distance_outer_upper: float | None = None
    optimal_distance_outer: float | None = None
    ratio_outer: float | None = None
    ratio_outer_se: float | None = None
    consistent_outer: int | None = None
    clt_mu_outer: float | None = None
    exact_distance_outer: float | None = None
    optimal_distance_low: float | None = None
    optimal_distance_high: float | None = None
    optimal_distance_outer_low: float | None = None
    optimal_distance_outer_high: float | None = None
    selected: int | None = None
    mu_mc_errors: int | None = None
    mu_outer_mc_errors: int | None = None
    #: the experiment's label of the training run when a model has several (tradeoff's ``extra_runs``,
    #: the defences' runs)
    run: str | None = None

    @classmethod
    def from_measurement(cls: type[Row], m: dict[str, Any], **extra: Any) -> Row:
        """The row of one measurement (a row of ``measurements.csv``); ``extra`` fills other fields."""
        radius = float(m["outer_radius"])
        inner, outer = _sphere(m, "inner"), _sphere(m, "outer")
        checks = {}
        for name, s, r in (("inner", inner, 1.0), ("outer", outer, radius)):
            complete = s["failures"] == 0  # a mean with failures is neither an upper bound nor unbiased
            checks[name] = theory.bound_check(s["mu"], s["lower"], s["distance"] if complete else None,
                                              s["se"], m["dim"], radius=r)
            checks[name + "_opt"] = theory.bound_check(s["mu"], s["lower"], s["distance"], s["se"], m["dim"],
                                                       radius=r)

        def ratio_se(s, c):
            return None if c.optimal_distance is None or s["se"] is None else s["se"] / c.optimal_distance

        ci, co = checks["inner_opt"], checks["outer_opt"]
        # the bound over mu's interval: d_cap decreases in mu, so the upper end of mu gives the low end
        span = {name: (theory.bound_check(s["upper"], None, None, None, m["dim"], radius=r).optimal_distance,
                       theory.bound_check(s["lower"], None, None, None, m["dim"], radius=r).optimal_distance)
                for name, s, r in (("inner", inner, 1.0), ("outer", outer, radius))}
        return cls(
            model=m["model"], dim=m["dim"], seed=m["seed"], learning_rate=m["learning_rate"],
            train_size=m["train_size"], step=m["step"], loss=m["loss"], accuracy=m["accuracy"],
            mu=inner["mu"], mu_lower=inner["lower"], mu_upper=inner["upper"], mu_method=inner["method"],
            mu_samples=inner["samples"], mu_log10=inner["log10"], mu_outer=outer["mu"],
            distance=inner["distance"], distance_se=inner["se"], distance_points=inner["points"],
            distance_failures=inner["failures"], exact_distance=_exact_distance(m, ""),
            clt_mu=m.get("clt_mu_inner"), optimal_distance=ci.optimal_distance, ratio=ci.ratio,
            consistent_with_bound=None if checks["inner"].consistent is None else int(checks["inner"].consistent),
            outer_radius=radius, accuracy_samples=m.get("accuracy_samples"), mu_status=inner["status"],
            mu_evaluations=inner["evaluations"], error_set=_error_set(inner), distance_upper=inner["upper_bound"],
            ratio_se=ratio_se(inner, ci), exact_unreachable=m.get("exact_unreachable"),
            mu_outer_lower=outer["lower"], mu_outer_upper=outer["upper"], mu_outer_method=outer["method"],
            mu_outer_samples=outer["samples"], mu_outer_evaluations=outer["evaluations"],
            mu_outer_status=outer["status"], mu_outer_log10=outer["log10"], error_set_outer=_error_set(outer),
            distance_outer=outer["distance"], distance_outer_se=outer["se"], distance_outer_points=outer["points"],
            distance_outer_failures=outer["failures"], distance_outer_upper=outer["upper_bound"],
            optimal_distance_outer=co.optimal_distance, ratio_outer=co.ratio, ratio_outer_se=ratio_se(outer, co),
            consistent_outer=None if checks["outer"].consistent is None else int(checks["outer"].consistent),
            clt_mu_outer=m.get("clt_mu_outer"), exact_distance_outer=_exact_distance(m, "_outer"),
            optimal_distance_low=span["inner"][0], optimal_distance_high=span["inner"][1],
            optimal_distance_outer_low=span["outer"][0], optimal_distance_outer_high=span["outer"][1],
            mu_mc_errors=inner["mc_errors"], mu_outer_mc_errors=outer["mc_errors"], **extra)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def as_json(self) -> dict[str, Any]:
        """:meth:`as_dict` for strict JSON: an infinite value (``exact_distance`` of a sphere without
        errors) becomes the string ``"inf"`` (``"-inf"``), as in the CSV; ``nan`` becomes ``None``."""
        return json_safe(self.as_dict())

    def worst_error(self) -> float | None:
        """The larger of the two spheres' error rates (``None`` if either is unmeasured)."""
        return None if self.mu is None or self.mu_outer is None else max(self.mu, self.mu_outer)


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


#: columns added after tables were committed: a table without one reads it at this value
LATER_COLUMNS = {"run": None}


def read_rows(path: str | Path, cls: type[Row] = ResultRow) -> list[Row]:
    """Read rows written by :func:`write_rows`; a missing column is an error naming the file and column
    (except those of :data:`LATER_COLUMNS`, read at their value)."""
    names = columns(cls)
    out = []
    for raw in read_csv(path):
        raw = {**LATER_COLUMNS, **raw}
        missing = [c for c in names if c not in raw]
        if missing:
            raise InputError(str(path), f"missing column {missing[0]!r} (expected {', '.join(names)})")
        out.append(cls(**{c: raw[c] for c in names}))
    return out


@dataclass(frozen=True)
class DefenceRow(ResultRow):
    """A :class:`ResultRow` of the ``defences`` experiment: the defence, its strength and the certified
    lower ends of the brackets ``[certified, distance]`` of d(E) on both spheres.

    ``certified``, ``certified_se``, ``certified_points``: mean certified radius over the inner
    sphere's attacked points (CROWN; the closed form for quad nets; empty for squeezed nets), its
    SE and count; ``certified_outer(_se)``: the same on the outer sphere's attacked points (label
    1); ``certify_seconds_per_point``: compiled wall time per point (both spheres, members
    together); ``stable_fraction(_se)``: mean fraction of provably stable hidden ReLUs on the RS
    ball around the inner points, ``unstable_relus``: the mean number of unstable ones per point
    (of ``hidden_units``); ``point_checks``, ``point_violations``: where the experiment reran the
    attack (every certified net, both spheres), points with a found error and how many of them have
    a certified radius above the attack's distance (0 expected: the certificate would be false).
    """

    defence: str = ""
    strength: float | None = None
    certified: float | None = None
    certified_se: float | None = None
    certified_points: int | None = None
    certified_outer: float | None = None
    certified_outer_se: float | None = None
    certified_method: str = ""
    certify_seconds_per_point: float | None = None
    stable_fraction: float | None = None
    stable_fraction_se: float | None = None
    unstable_relus: float | None = None
    hidden_units: int | None = None
    point_checks: int | None = None
    point_violations: int | None = None


@dataclass(frozen=True)
class DetectorRow:
    """The feature-squeezing detector guarding one net at one checkpoint (``defences`` experiment).

    A point is flagged by ``detector = "flip"`` when the prediction on the point and on its
    squeezed copy differ, by ``detector = "score"`` when the L1 distance of the two class-probability
    vectors exceeds ``threshold`` (calibrated on separate clean points for a false-alarm rate of
    at most ``target_false_alarm``; Xu et al. 2018). ``detected`` of ``adversarial`` attack outputs
    (found errors of both spheres, points already misclassified left out) are flagged, and
    ``false_alarms`` of ``clean`` uniform points of both spheres; rates with Clopper-Pearson
    intervals at 95%.
    """

    run: str
    model: str
    seed: int
    step: int
    bits: int
    detector: str
    threshold: float | None
    target_false_alarm: float | None
    adversarial: int
    detected: int
    detection: float | None
    detection_lower: float | None
    detection_upper: float | None
    clean: int
    false_alarms: int
    false_alarm: float | None
    false_alarm_lower: float | None
    false_alarm_upper: float | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TimingRow:
    """CROWN's certification time of one run's final checkpoint (``defences`` experiment), measured in
    ``repeats`` rounds that alternate between the runs compared, so that the machine's load falls on
    all of them alike.

    ``seconds_per_point_min`` / ``_median``: wall time of one round divided by ``members x points``
    (compiled program, compilation excluded); ``cpu_seconds_per_point_min``: the process's CPU
    time (all threads) per point in the fastest round; ``unstable_relus``: mean unstable hidden
    ReLUs per point on the RS ball over members and points, of ``hidden_units``.
    """

    run: str
    defence: str
    step: int
    members: int
    points: int
    repeats: int
    seconds_per_point_min: float
    seconds_per_point_median: float
    cpu_seconds_per_point_min: float
    unstable_relus: float | None
    hidden_units: int | None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

