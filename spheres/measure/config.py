"""Settings shared by the measurements: the sphere vocabulary, compiled-program reuse, the run budgets.

* **Spheres** are named one way everywhere: ``sphere = "inner"`` (radius 1, true class 0, its
  errors are points called "outer") or ``"outer"`` (radius ``R``, the task's ``outer_radius``,
  true class 1, its errors are points called "inner"). A config that measures one sphere holds
  ``sphere`` and ``outer_radius``; its radius and label follow (:func:`sphere_radius`,
  :func:`sphere_label`).
* **Compiled measurements** (``make_monte_carlo``, ``make_splitting``, ``make_attack``) are
  explicit objects: a measurement compiled for a config's shape-setting fields (its ``STATIC``
  tuple) is reused for another config only through ``with_config``, which checks those fields
  (:func:`same_static`).
* :class:`MeasureConfig`: the budgets with which :func:`spheres.measure.pipeline.measure_run`
  measures every model and checkpoint of a run (its fields are the ``spheres measure`` flags).

>>> sphere_radius("outer", 1.3), sphere_label("outer")
(1.3, 1)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from spheres.core.errors import InputError
from spheres.maths.geometry import INNER_RADIUS
from spheres.core.config import check_float, check_int

#: the two spheres of the task, in the order inner (label 0), outer (label 1)
SPHERES = ("inner", "outer")
#: error-rate methods of a run measurement
METHODS = ("auto", "monte_carlo", "splitting")


def check_sphere(sphere: Any, outer_radius: Any) -> None:
    """Raise :class:`InputError` unless ``sphere`` is "inner"/"outer" and ``outer_radius`` a finite number > 0."""
    if sphere not in SPHERES:
        raise InputError("sphere", f"must be 'inner' or 'outer', got {sphere!r}")
    try:
        r = float(outer_radius)
    except (TypeError, ValueError):
        raise InputError("outer_radius", f"must be a number, got {outer_radius!r}") from None
    if not (r > 0 and math.isfinite(r)):
        raise InputError("outer_radius", f"must be a finite number > 0, got {outer_radius!r}")


def sphere_radius(sphere: str, outer_radius: float) -> float:
    """Radius of ``sphere``: 1 for "inner", ``outer_radius`` for "outer"."""
    return float(INNER_RADIUS) if sphere == "inner" else float(outer_radius)


def sphere_label(sphere: str) -> int:
    """True class of the points of ``sphere``: 0 for "inner", 1 for "outer"."""
    return SPHERES.index(sphere)


def same_static(old: Any, new: Any) -> Any:
    """``new`` if it is a config of the type of ``old`` with the same shape-setting fields (``STATIC``).

    Raises:
      InputError: naming the first shape-setting field that differs.
    """
    if type(new) is not type(old):
        raise InputError("config", f"need a {type(old).__name__}, got {type(new).__name__}")
    changed = [f for f in type(old).STATIC if getattr(old, f) != getattr(new, f)]
    if changed:
        raise InputError(changed[0], f"a compiled measurement keeps its shape-setting fields "
                                     f"{', '.join(type(old).STATIC)}; build a new one to change {changed[0]}")
    return new


@dataclass(frozen=True)
class MeasureConfig:
    """Budgets of a run measurement (validated; errors name the command-line flag).

    Attributes:
      mc_samples: Monte Carlo samples per sphere per model.
      attack_points: inner-sphere points attacked per model (d(E) sample size).
      method: "auto" (Monte Carlo, splitting where it sees < ``min_errors`` errors),
        "monte_carlo" or "splitting" (always, on both spheres).
      min_errors: the "auto" switch-over count.
      splitting_particles: particles per splitting run.
      splitting_repeats: independent splitting runs per estimate (the interval comes from their spread).
      splitting_max_levels: level cap (half the particles die per level, so rates below about
        2^-max_levels are reported as out of reach, never as a number).
      attack_restarts: rounds of restarts for points whose attack found no error: each round starts
        the ascent from a random great-circle move of the point (``restart_jitter`` of the radius,
        growing with the round) with ``restart_budget`` times the ascent budget; 0 disables them.
      restart_budget: factor on the ascent budget of a restart (>= 1).
      restart_jitter: chord of the first restart's move, as a fraction of the radius, in (0, 1].
      max_other_error: the rare-event budget (splitting in "auto", attack restarts) is spent on a
        sphere only for models whose Monte Carlo error rate on the OTHER sphere is at most this, in
        (0, 1] (1: always). A net that calls almost everything one class has a tiny error rate on that
        class's sphere for free (docs/science.md section 8); splitting it climbs to the level cap and
        restarting its attack finds nothing, both at the highest cost, and neither tells anything. Its
        Monte Carlo numbers (with their upper bound) stay, its attack failures stay counted (a strict
        upper bound, drawn hollow), and the status says so.
      split_exact: in "auto", split also where the net's rates are known exactly (the quad net,
        :mod:`spheres.maths.quadratic`; True, the default, keeps splitting there as a check of it).
        False spends nothing there: the exact rate is the number every table reports anyway.
      seed: measurement seed.
      steps: checkpoint steps to measure (empty: all saved checkpoints).
    """

    mc_samples: int = 100_000
    attack_points: int = 100
    method: str = "auto"
    min_errors: int = 10
    splitting_particles: int = 500
    splitting_repeats: int = 8
    splitting_max_levels: int = 200
    attack_restarts: int = 2
    restart_budget: int = 4
    restart_jitter: float = 0.1
    max_other_error: float = 1.0
    split_exact: bool = True
    seed: int = 0
    steps: tuple[int, ...] = ()

    def __post_init__(self):
        for name, lo in (("mc_samples", 1), ("attack_points", 2), ("min_errors", 1), ("splitting_particles", 10),
                         ("splitting_repeats", 1), ("splitting_max_levels", 1), ("attack_restarts", 0),
                         ("restart_budget", 1), ("seed", 0)):
            check_int("--" + name.replace("_", "-"), getattr(self, name), lo)
        check_float("--restart-jitter", self.restart_jitter, 0.0, lo_open=True, hi=1.0)
        check_float("--max-other-error", self.max_other_error, 0.0, lo_open=True, hi=1.0)
        if not isinstance(self.split_exact, bool):
            raise InputError("split_exact", f"must be true or false, got {self.split_exact!r}")
        if self.method not in METHODS:
            raise InputError("--method", f"unknown method {self.method!r}; allowed: {', '.join(METHODS)}")

    #: fields added after measurements were first saved: left out of :meth:`settings` at their
    #: defaults, and compared against these defaults where a saved settings file lacks them
    LATER_FIELDS = {"max_other_error": 1.0, "split_exact": True}
    #: command-line flags that are not ``--`` + the field name
    FLAGS = {"split_exact": "--no-split-exact"}

    def settings(self) -> dict[str, Any]:
        """The settings that determine the numbers (``steps`` only selects which checkpoints)."""
        d = dataclasses.asdict(self)
        d.pop("steps")
        for name, default in self.LATER_FIELDS.items():
            if d[name] == default:
                d.pop(name)
        return d
