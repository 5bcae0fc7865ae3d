"""Attributions of a trained run: every member x checkpoint, resumable (``RUN/attributions.csv``).

For every checkpoint step of a run directory (:mod:`spheres.nets.runs`) and every ensemble member,
the measurements of :mod:`spheres.measure.attributions` on ``points`` labelled points of the task
(both spheres, shared by all members of a step):

* gradient alignment ``cos(grad f(x), x/||x||)``;
* the boundary normal at the on-sphere (``on_*``) and off-sphere (``off_*``) nearest errors: its
  cosine to the radial direction, its angle, and the alignment of the gradient at ``x`` with it;
* boundary smoothness from ``starts`` attack starts per point (``spread_*``), and the correlation
  across points between the normal spread and the gradient's alignment with those normals;
* IG (origin baseline), BSM and BIG, against the radial ideal on the same path and against each other;
* for quad nets, exact values (``exact_*``, :func:`spheres.measure.attributions.quadratic_exact_boundary`)
  on the same points and the cosine between the attack's normal and the exact normal;
* band Shapley values for both replacements (``shapley_same_sphere_*``, ``shapley_independent_*``):
  the quad net's eigen-directions grouped by alpha, coordinate blocks for other nets; the
  hybrid error of each single-band coalition, with the Bayes error of a classifier that sees
  only that band's ``k`` coordinates beside the independent replacement's (a lower bound for it).

Every mean comes with its standard error (``*_se``) and the number of values averaged (``*_n``);
points where an attack found nothing, or that were already misclassified, are counted out.

Randomness: the key of step ``s`` is ``fold_in(key(seed), s)``, split into the points, the spread
starts and the Shapley pairs; all members of a step see the same draws (paired comparisons).
The per-point measurements of all members are ONE compiled program (vmapped over points, then
over members) and the Shapley worths of both replacements another, built once per run by
:func:`make_run_attribution` and used for every checkpoint; compiling them costs far more than
running them at the budgets of the presets.

Results are saved per checkpoint as cells (``RUN/attributions/cells/``,
:func:`spheres.core.cells.run_step_cells`) and the table is rewritten atomically after each, so an
interrupted measurement resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from spheres.core.cells import CellStore, check_settings, run_step_cells
from spheres.core.errors import InputError
from spheres.maths import quadratic, theory
from spheres.maths.geometry import sample_batch
from spheres.measure import attributions as attr
from spheres.measure.attacks import MATMUL_PRECISION, AttackSchedule
from spheres.nets.config import ExperimentConfig, check_int
from spheres.nets.models import make_logit_fn, quadratic_weights
from spheres.nets.runs import Run, load_run

ATTRIBUTE_DIR = "attributions"
SETTINGS_FILE = "settings.json"
TABLE_FILE = "attributions.csv"


@dataclass(frozen=True)
class AttributeConfig:
    """Budgets of an attribution measurement (validated; errors name the command-line flag).

    Attributes:
      points: labelled points per checkpoint (both spheres, shared by the members).
      ig_steps: quadrature nodes of IG and BIG.
      starts: attack starts per point for the boundary spread (``>= 2``).
      start_angle: angle in radians between a point and each of its starts.
      bands: number of direction bands for the Shapley values (1 to 10; ``2^bands`` coalitions).
      shapley_samples: pairs per Shapley estimate.
      seed: measurement seed.
      steps: checkpoint steps to measure (empty: all saved checkpoints).
    """

    points: int = 64
    ig_steps: int = 32
    starts: int = 4
    start_angle: float = 0.05
    bands: int = 4
    shapley_samples: int = 1024
    seed: int = 0
    steps: tuple[int, ...] = ()

    def __post_init__(self):
        for name, lo in (("points", 4), ("ig_steps", 1), ("starts", 2), ("bands", 1), ("shapley_samples", 2),
                         ("seed", 0)):
            check_int("--" + name.replace("_", "-"), getattr(self, name), lo)
        if self.bands > attr.MAX_BANDS:
            raise InputError("--bands", f"must be an integer in [1, {attr.MAX_BANDS}], got {self.bands}")
        if not (isinstance(self.start_angle, (int, float)) and 0 < self.start_angle < math.pi / 2):
            raise InputError("--start-angle", f"must lie in (0, pi/2) radians, got {self.start_angle!r}")

    def settings(self) -> dict[str, Any]:
        """The settings that determine the numbers (``steps`` only selects which checkpoints)."""
        d = dataclasses.asdict(self)
        d.pop("steps")
        return d


class RunAttribution(NamedTuple):
    """The compiled attribution measurements of the models of one run, built once by
    :func:`make_run_attribution` and used for all its checkpoints.

    Attributes:
      logit_fn: the run's ``logit_fn(variables, x)`` (:func:`spheres.nets.models.make_logit_fn`).
      points: ``jit`` of ``(variables (M, ...), keys (n,), xs (n, d), ys (n,)) -> (scalars, on_points,
        on_normals)``: every per-point measurement (:func:`spheres.measure.attributions.point_attributions`
        and :func:`~spheres.measure.attributions.boundary_spread`) vmapped over points and then over
        the models; ``scalars`` maps each field name to ``(M, n)``, the on-sphere nearest errors and
        their normals are ``(M, n, d)``.
      shapley: the coalition worths of both replacements in one program
        (:func:`spheres.measure.attributions.make_shapley_worths`), used through ``worths_models``.
    """

    logit_fn: Callable
    points: Callable
    shapley: attr.ShapleyWorths


def make_run_attribution(cfg: ExperimentConfig, acfg: AttributeConfig,
                         attack: AttackSchedule = AttackSchedule()) -> RunAttribution:
    """Build the attribution measurements of every model of a run with config ``cfg`` (compiled lazily)."""
    dim = cfg.task.dim
    logit_fn = make_logit_fn(cfg.model, dim)
    ig_steps, starts, start_angle = acfg.ig_steps, acfg.starts, float(acfg.start_angle)

    def one(params, key, x, y):
        with jax.default_matmul_precision(MATMUL_PRECISION):
            pa = attr.point_attributions(logit_fn, params, x, y, attack, ig_steps)
            sp = attr.boundary_spread(key, logit_fn, params, x, y, starts, start_angle, attack)
        scalars = {name: getattr(pa, name) for name in _POINT_FIELDS}
        for side, bn in (("on", pa.on), ("off", pa.off)):
            scalars.update({f"{side}_{f}": getattr(bn, f) for f in _NORMAL_FIELDS})
        scalars.update({f"spread_{f}": getattr(sp, f) for f in _SPREAD_FIELDS})
        return scalars, pa.on.point, pa.on.normal

    points = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0, 0, 0)), in_axes=(0, None, None, None)))
    return RunAttribution(logit_fn=logit_fn, points=points,
                          shapley=attr.make_shapley_worths(logit_fn, dim, cfg.task.outer_radius))


_POINT_FIELDS = ("grad_radial", "ig_ideal", "ig_grad", "ig_gap", "bsm_ideal", "bsm_grad", "bsm_radial_x",
                 "big_ideal", "big_ig", "big_grad", "big_gap")
_NORMAL_FIELDS = ("found", "initially_wrong", "valid", "distance", "radial", "radial_angle", "grad_alignment")
_SPREAD_FIELDS = ("n_found", "normal_spread", "position_spread", "ratio", "grad_alignment", "radial")
_COUNT_FIELDS = ("on_found", "on_initially_wrong", "on_valid", "off_found", "off_initially_wrong", "off_valid",
                 "spread_n_found")


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _mean_columns(name: str, values: np.ndarray, valid: np.ndarray | None = None) -> dict[str, Any]:
    est = attr.summarize(values, valid)
    return {name: _finite(est.mean), f"{name}_se": _finite(est.se), f"{name}_n": est.n}


def _correlation_columns(name: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Pearson correlation with its large-sample SE ``(1 - r^2)/sqrt(n - 3)`` (Fisher) and count."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())
    if n < 4 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return {name: None, f"{name}_se": None, f"{name}_n": n}
    r = float(np.corrcoef(a[ok], b[ok])[0, 1])
    return {name: r, f"{name}_se": (1 - r * r) / math.sqrt(n - 3), f"{name}_n": n}


def _bands(run: Run, variables: Any, n_bands: int) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]]]:
    """Per-member bases ``(M, d, d)``, the shared ``band_of`` and per-member band names."""
    cfg = run.config
    dim, n_members = cfg.task.dim, len(run.members)
    if cfg.model.arch == "quad":
        bases, names = [], []
        for i in range(n_members):
            dec = quadratic.alphas_from_weights(*quadratic_weights(jax.tree.map(lambda a: np.asarray(a[i]), variables)))
            b = attr.eigen_bands(dec.alphas, dec.rotation, n_bands)
            bases.append(b.basis)
            names.append(b.names)
        return np.stack(bases), b.band_of, names
    b = attr.coordinate_bands(dim, n_bands)
    return np.broadcast_to(b.basis, (n_members, dim, dim)), b.band_of, [b.names] * n_members


def attribute_step(run: Run, step: int, acfg: AttributeConfig,
                   measurement: RunAttribution | None = None) -> list[dict[str, Any]]:
    """All attribution measurements of one checkpoint: one row (dict of scalars) per member.

    Args:
      run: the run; step: a saved checkpoint step; acfg: budgets.
      measurement: the run's compiled measurements (built here when not given; pass the one from
        :func:`make_run_attribution` to reuse it over checkpoints).
    """
    cfg = run.config
    dim, radius = cfg.task.dim, cfg.task.outer_radius
    m = measurement if measurement is not None else make_run_attribution(cfg, acfg)
    variables = jax.tree.map(jnp.asarray, run.load_variables(step))
    key = jax.random.fold_in(jax.random.key(acfg.seed), step)
    k_points, k_spread, k_shapley = jax.random.split(key, 3)
    xs, ys = sample_batch(k_points, acfg.points, dim, radius)
    scalars, on_points, on_normals = m.points(variables, jax.random.split(k_spread, acfg.points), xs, ys)
    scalars = {k: np.asarray(v) for k, v in scalars.items()}
    on_points, on_normals = np.asarray(on_points, np.float64), np.asarray(on_normals, np.float64)

    bases, band_of, band_names = _bands(run, variables, acfg.bands)
    masks = attr.coalition_masks(band_of, acfg.bands)
    sizes = np.bincount(band_of, minlength=acfg.bands)
    shapley_keys = jax.random.split(k_shapley, acfg.shapley_samples)
    worths = m.shapley.worths_models(variables, shapley_keys, bases, masks)
    shapley = {rep: [attr.shapley_from_worths(worth[i], wrong[i], sizes, rep) for i in range(len(run.members))]
               for rep, (worth, wrong) in worths.items()}
    bayes = np.atleast_1d(theory.bayes_error_k_coordinates(sizes, dim, radius).overall)

    rows = []
    for i, member in enumerate(run.members):
        metric = next((r for r in run.metrics if r["member"] == i and r["step"] == step), {})
        row: dict[str, Any] = {**member, "model": cfg.model.name, "dim": dim, "outer_radius": radius, "step": step,
                               "loss": metric.get("loss"), "accuracy": metric.get("accuracy"), "points": acfg.points}
        s = {k: v[i] for k, v in scalars.items()}
        for c in _COUNT_FIELDS:
            row[f"{c}_count" if c != "spread_n_found" else "spread_starts_found"] = int(np.sum(s[c]))
        row["spread_starts"] = acfg.points * acfg.starts
        row.update(_mean_columns("grad_radial", s["grad_radial"]))
        for side in ("on", "off"):
            for f in ("distance", "radial", "radial_angle", "grad_alignment"):
                row.update(_mean_columns(f"{side}_{f}", s[f"{side}_{f}"], s[f"{side}_valid"]))
        for f in ("normal_spread", "position_spread", "ratio", "grad_alignment", "radial"):
            row.update(_mean_columns(f"spread_{f}", s[f"spread_{f}"]))
        row.update(_correlation_columns("spread_alignment_corr", s["spread_normal_spread"],
                                        s["spread_grad_alignment"]))
        for f in ("ig_ideal", "ig_grad", "ig_gap"):
            row.update(_mean_columns(f, s[f]))
        for f in ("bsm_ideal", "bsm_grad", "bsm_radial_x", "big_ideal", "big_ig", "big_grad", "big_gap"):
            row.update(_mean_columns(f, s[f], s["off_valid"]))
        if cfg.model.arch == "quad":
            row.update(_exact_columns(jax.tree.map(lambda a: np.asarray(a[i]), variables), np.asarray(xs),
                                      np.asarray(ys), on_points[i], on_normals[i], s["on_valid"]))
        row["bands"] = acfg.bands
        for j in range(acfg.bands):
            row[f"band{j}_size"] = int(sizes[j])
            row[f"band{j}_name"] = band_names[i][j]
        for rep in attr.REPLACEMENTS:
            res = shapley[rep][i]
            row[f"shapley_{rep}_n"] = res.n
            for tag, idx in (("all", 2**acfg.bands - 1), ("none", 0)):
                row[f"worth_{rep}_{tag}"] = float(res.worth[idx])
                row[f"worth_{rep}_{tag}_se"] = _finite(res.worth_se[idx])
            for j in range(acfg.bands):
                row[f"shapley_{rep}_band{j}"] = float(res.values[j])
                row[f"shapley_{rep}_band{j}_se"] = _finite(res.se[j])
                errors = int(res.errors[1 << j])
                row[f"hybrid_error_{rep}_band{j}_only"] = errors / res.n
                row[f"hybrid_error_{rep}_band{j}_only_count"] = errors
        for j in range(acfg.bands):
            row[f"bayes_error_band{j}_only"] = _finite(bayes[j])
        rows.append(row)
    return rows


def _exact_columns(variables: Any, xs: np.ndarray, ys: np.ndarray, on_points: np.ndarray, on_normals: np.ndarray,
                   on_valid: np.ndarray) -> dict[str, Any]:
    """Exact boundary of one quad net on the step's points, and how the attack's normals compare."""
    exact = attr.quadratic_exact_boundary(*quadratic_weights(variables), xs, ys)
    ok = exact.reachable
    both = ok & np.asarray(on_valid, bool)
    cos = np.sum(on_normals * exact.normal, axis=1)
    return {**_mean_columns("exact_on_distance", exact.distance, ok),
            **_mean_columns("exact_on_radial", exact.radial, ok),
            **_mean_columns("exact_on_grad_alignment", exact.grad_alignment, ok),
            **_mean_columns("on_normal_exact_cos", cos, both),
            **_mean_columns("on_point_exact_gap", np.linalg.norm(on_points - exact.point, axis=1), both)}


def attribute_run(run_dir: str | Path, acfg: AttributeConfig = AttributeConfig(), progress: bool = True,
                  on_step: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Attribution measurements of every (selected) checkpoint of a run; resumable.

    Returns all rows (one per member x checkpoint), also written to ``RUN/attributions.csv``.

    Args:
      run_dir: a run directory written by ``spheres train``.
      acfg: budgets.
      progress: a progress bar over checkpoints (only on a terminal).
      on_step: called with each step after it is saved (tests use it to interrupt).
    Raises:
      InputError: missing or corrupt run, unknown checkpoint step, settings that differ from an
        earlier partial measurement.
    """
    run = load_run(run_dir)
    steps = run.select_steps(acfg.steps)
    if acfg.bands > run.config.task.dim:
        raise InputError("--bands", f"must be at most the dimension {run.config.task.dim}, got {acfg.bands}")
    root = run.path / ATTRIBUTE_DIR
    check_settings(root / SETTINGS_FILE, acfg.settings())
    measurement = make_run_attribution(run.config, acfg)
    # the table is rewritten under its final name after every checkpoint (no partial name)
    return run_step_cells(CellStore(root), steps, lambda step: attribute_step(run, step, acfg, measurement),
                          run.path / TABLE_FILE, progress=progress, desc=f"attribute {run.config.model.name}",
                          on_step=on_step)
