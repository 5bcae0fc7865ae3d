"""Reproduce the paper's findings: every experiment from one config, resumable, figures from saved results.

Experiments (PAPER.md section 7; each is a table of ``experiments/configs/reproduce*.toml``):

``bound``
    The exact isoperimetric bound against d and against mu (no training).
``quadratic``
    The quadratic network trained on a fixed set of N points: its alpha_i (histogram with the
    band [1/R^2, 1]), how many lie outside, exact inner and outer error rates beside the paper's
    CLT estimate, and the exact d(E).
``tradeoff``
    Fig. 4: each architecture trained on several training-set sizes (and online); at every
    checkpoint the inner-sphere mu(E) (exact for the quad net; Monte Carlo, or splitting where
    Monte Carlo sees too few errors) and d(E) from the on-manifold attack, against the exact cap
    bound.
``dimsweep``
    The same measurements across dimensions: the collapse d(E) sqrt(d) against Phi^-1(1 - mu),
    the ratio d(E) / d_cap(mu, d), and the fitted exponent of d(E) in d at matched error rate.
``slices``
    Two-dimensional slices through a trained network's decision boundary (two random directions;
    a random point and its adversarial direction; two adversarial directions).

Every training run is a resumable run directory (:mod:`spheres.nets.runs`), every measurement a
resumable per-checkpoint cell (:mod:`spheres.measure.pipeline`), and every remaining piece of work a
:class:`~spheres.core.cells.CellStore` cell, so ``spheres reproduce`` killed at any moment and run
again continues where it stopped. Tables are written first; figures are drawn from them.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from spheres.nets.config import ExperimentConfig, TaskConfig, TrainConfig, build_section, check_int, parse_model_name
from spheres.core.errors import InputError
from spheres.core.io import read_csv, write_csv_atomic, write_json_atomic
from spheres.measure.pipeline import MeasureConfig

EXPERIMENTS = ("bound", "quadratic", "tradeoff", "dimsweep", "slices")


# ---------------------------------------------------------------------------- configuration


def _check(build: Callable[[], Any], rename: dict[str, str]) -> None:
    """Run a validating constructor; re-raise its InputError under this config's own field name."""
    try:
        build()
    except InputError as err:
        raise InputError(rename.get(err.field, err.field), err.detail) from None


def _check_task(dim: int, radius: float) -> None:
    _check(lambda: TaskConfig(dim=dim, outer_radius=radius), {"task.dim": "dim", "task.outer_radius": "outer_radius"})


def _check_grid(seeds, train_sizes) -> None:
    _check(lambda: TrainConfig(seeds=tuple(seeds), train_sizes=tuple(train_sizes)),
           {"train.seeds": "seeds", "train.train_sizes": "train_sizes"})


def _check_models(models) -> None:
    if not isinstance(models, tuple) or not models:
        raise InputError("models", "must be a non-empty list of model names")
    for m in models:
        if not isinstance(m, str):
            raise InputError("models", f"model names are strings, got {m!r}")
        _check(lambda: parse_model_name(m.format(dim=16)), {"model.name": "models"})


def _freeze_rates(obj: Any, name: str = "model_learning_rates") -> None:
    """Turn the ``{model: learning_rate}`` table into a sorted tuple of pairs (hashable, frozen), validated."""
    value = getattr(obj, name)
    items = value.items() if isinstance(value, dict) else value
    try:
        pairs = tuple(sorted((str(k), v) for k, v in items))
    except (TypeError, ValueError):
        raise InputError(name, "must be a table of model name = learning rate") from None
    for model, lr in pairs:
        if model not in obj.models:
            raise InputError(f"{name}.{model}", f"not one of models {list(obj.models)}")
        _check(lambda: Recipe(learning_rate=lr), {"learning_rate": f"{name}.{model}"})
    object.__setattr__(obj, name, pairs)


def _learning_rate(obj: Any, model: str) -> float:
    return dict(obj.model_learning_rates).get(model, obj.recipe.learning_rate)


@dataclass(frozen=True)
class Recipe:
    """Training recipe shared by the experiments' runs (Adam, sigmoid cross-entropy)."""

    steps: int = 1_000_000
    batch_size: int = 50
    learning_rate: float = 1e-4
    checkpoints: int = 12
    chunk_steps: int = 10_000

    def __post_init__(self):
        _check(lambda: self.train_config((0,), (0,)),
               {f"train.{k}": k for k in ("steps", "batch_size", "checkpoints", "chunk_steps")}
               | {"train.learning_rates": "learning_rate"})

    def train_config(self, seeds: tuple[int, ...], train_sizes: tuple[int, ...]) -> TrainConfig:
        return TrainConfig(steps=self.steps, batch_size=self.batch_size, learning_rates=(self.learning_rate,),
                           train_sizes=tuple(train_sizes), seeds=tuple(seeds), checkpoints=self.checkpoints,
                           chunk_steps=self.chunk_steps)


@dataclass(frozen=True)
class TradeoffConfig:
    """Fig. 4: ``models`` x ``train_sizes`` (0 = online) x ``seeds`` at dimension ``dim``."""

    dim: int = 500
    outer_radius: float = 1.3
    models: tuple[str, ...] = ("quad-w1000", "relu-w1000-d2", "relu-w2000-d8")
    train_sizes: tuple[int, ...] = (0, 1000, 5623, 31623, 177828, 1000000)
    seeds: tuple[int, ...] = (0,)
    recipe: Recipe = field(default_factory=Recipe)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    #: per-model learning rates overriding ``recipe.learning_rate`` (TOML table ``{model = lr}``)
    model_learning_rates: Any = ()

    def __post_init__(self):
        _check_task(self.dim, self.outer_radius)
        _check_grid(self.seeds, self.train_sizes)
        _check_models(self.models)
        _freeze_rates(self)


@dataclass(frozen=True)
class DimSweepConfig:
    """Dimension sweep. A model name may contain ``{dim}`` (e.g. ``quad-w{dim}``: width = d)."""

    dims: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048)
    outer_radius: float = 1.3
    models: tuple[str, ...] = ("quad-w{dim}", "relu-w1000-d2")
    train_sizes: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0, 1, 2)
    recipe: Recipe = field(default_factory=Recipe)
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    #: per-model (template) learning rates overriding ``recipe.learning_rate``
    model_learning_rates: Any = ()

    def __post_init__(self):
        if not isinstance(self.dims, tuple) or len(self.dims) < 2:
            raise InputError("dims", "must list at least 2 dimensions")
        for d in self.dims:
            _check_task(d, self.outer_radius)
        if len(set(self.dims)) != len(self.dims):
            raise InputError("dims", "dimensions must be distinct")
        _check_grid(self.seeds, self.train_sizes)
        _check_models(self.models)
        _freeze_rates(self)


@dataclass(frozen=True)
class QuadraticExperimentConfig:
    """The quadratic network on a fixed training set of ``train_size`` points (the paper: 10^6 at d = 500)."""

    dim: int = 500
    outer_radius: float = 1.3
    width: int = 1000
    train_size: int = 1_000_000
    seed: int = 0
    points: int = 500
    recipe: Recipe = field(default_factory=Recipe)

    def __post_init__(self):
        _check_task(self.dim, self.outer_radius)
        check_int("width", self.width, 1)
        check_int("train_size", self.train_size, 0)
        _check_grid((self.seed,), (self.train_size,))
        check_int("points", self.points, 2)


@dataclass(frozen=True)
class SlicesConfig:
    """Slices through the tradeoff experiment's ``model`` trained on ``train_size`` points (0 = online)."""

    model: str = "relu-w1000-d2"
    train_size: int = 0
    seed: int = 0
    resolution: int = 201
    extent: float = 1.6

    def __post_init__(self):
        check_int("resolution", self.resolution, 3)
        if isinstance(self.extent, bool) or not isinstance(self.extent, (int, float)) or not 0 < self.extent < 100:
            raise InputError("extent", f"must be a number in (0, 100), got {self.extent!r}")


@dataclass(frozen=True)
class ReproduceConfig:
    """All experiments; ``experiments`` lists which run, in order."""

    experiments: tuple[str, ...] = EXPERIMENTS
    quadratic: QuadraticExperimentConfig = field(default_factory=QuadraticExperimentConfig)
    tradeoff: TradeoffConfig = field(default_factory=TradeoffConfig)
    dimsweep: DimSweepConfig = field(default_factory=DimSweepConfig)
    slices: SlicesConfig = field(default_factory=SlicesConfig)

    def __post_init__(self):
        if not isinstance(self.experiments, tuple) or not self.experiments:
            raise InputError("experiments", f"must be a non-empty list of: {', '.join(EXPERIMENTS)}")
        for name in self.experiments:
            if name not in EXPERIMENTS:
                raise InputError("experiments", f"unknown experiment {name!r}; allowed: {', '.join(EXPERIMENTS)}")
        if "slices" in self.experiments:
            if self.slices.model not in self.tradeoff.models:
                raise InputError("slices.model", f"must be one of tradeoff.models {list(self.tradeoff.models)}")
            if self.slices.train_size not in self.tradeoff.train_sizes:
                raise InputError("slices.train_size", f"must be one of tradeoff.train_sizes "
                                 f"{list(self.tradeoff.train_sizes)}")
            if self.slices.seed not in self.tradeoff.seeds:
                raise InputError("slices.seed", f"must be one of tradeoff.seeds {list(self.tradeoff.seeds)}")


_NESTED = {"recipe": Recipe, "measure": MeasureConfig, "quadratic": QuadraticExperimentConfig,
           "tradeoff": TradeoffConfig, "dimsweep": DimSweepConfig, "slices": SlicesConfig}


def _from_table(cls, table: Any, section: str):
    if not isinstance(table, dict):
        raise InputError(section or "config", "must be a table")
    kwargs = {}
    for key, value in table.items():
        if key in _NESTED and any(f.name == key for f in dataclasses.fields(cls)):
            kwargs[key] = _from_table(_NESTED[key], value, f"{section}.{key}" if section else key)
        else:
            kwargs[key] = value
    return build_section(cls, kwargs, section)


def load_reproduce_config(path: str | Path) -> ReproduceConfig:
    """Load and validate a reproduction config (TOML); errors name the field."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError("--config", f"cannot read {str(path)!r}: {err.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError("--config", f"malformed TOML in {str(path)!r}: {err}") from None
    return _from_table(ReproduceConfig, data, "")


# ---------------------------------------------------------------------------- helpers


def _log(msg: str) -> None:
    print(msg, flush=True)


def _experiment_config(dim: int, radius: float, model: str, recipe: Recipe, seeds, train_sizes,
                       learning_rate: float | None = None) -> ExperimentConfig:
    if learning_rate is not None:
        recipe = dataclasses.replace(recipe, learning_rate=learning_rate)
    return ExperimentConfig(task=TaskConfig(dim=dim, outer_radius=radius), model=parse_model_name(model),
                            train=recipe.train_config(tuple(seeds), tuple(train_sizes)))


def _train_and_measure(cfg: ExperimentConfig, run_dir: Path, mcfg: MeasureConfig, progress: bool) -> list[dict]:
    from spheres.measure.pipeline import measure_run
    from spheres.nets.runs import run_training

    run_training(cfg, run_dir, progress=progress)
    return measure_run(run_dir, mcfg, progress=progress)


def _bound_columns(mu: float | None, lower: float | None, distance: float | None, se: float | None,
                   dim: int) -> dict[str, Any]:
    """The cap bound at the measured mu, the ratio, and whether the point is consistent with the bound.

    d_cap is decreasing in mu, so the most generous bound within the interval is d_cap(mu_lower);
    a point is inconsistent when distance - 2 SE exceeds it.
    """
    from spheres.maths import theory

    out: dict[str, Any] = {"optimal_distance": None, "ratio": None, "consistent_with_bound": None}
    if mu is None or not 0 < mu < 1:
        return out
    opt = float(theory.mean_distance_to_cap(mu, dim))
    out["optimal_distance"] = opt
    if distance is None:
        return out
    out["ratio"] = distance / opt
    generous = float(theory.max_mean_distance(dim)) if not lower or lower <= 0 else float(
        theory.mean_distance_to_cap(lower, dim))
    out["consistent_with_bound"] = int(distance - 2 * (se or 0.0) <= generous)
    return out


def result_row(row: dict[str, Any]) -> dict[str, Any]:
    """One tidy results row from a measurement row: the inner-sphere mu (exact for the quad net),
    the attack's d(E), and the cap bound at that mu."""
    if row.get("exact_mu_inner") is not None:
        mu = lower = upper = float(row["exact_mu_inner"])
        method, samples = "exact", None
    else:
        mu, lower, upper = row["mu_inner"], row["mu_inner_lower"], row["mu_inner_upper"]
        method, samples = row["mu_inner_method"], row["mu_inner_samples"]
    out = {
        "model": row["model"], "dim": row["dim"], "seed": row["seed"], "learning_rate": row["learning_rate"],
        "train_size": row["train_size"], "step": row["step"], "loss": row["loss"], "accuracy": row["accuracy"],
        "mu": mu, "mu_lower": lower, "mu_upper": upper, "mu_method": method, "mu_samples": samples,
        "mu_log10": row.get("exact_mu_inner_log10") if method == "exact" else row.get("mu_inner_log10"),
        "mu_outer": row.get("exact_mu_outer", row["mu_outer"]),
        "distance": row["attack_mean_distance"], "distance_se": row["attack_mean_distance_se"],
        "distance_points": row["attack_points"], "distance_failures": row["attack_failures"],
        "exact_distance": row.get("exact_mean_distance"), "clt_mu": row.get("clt_mu_inner"),
    }
    out.update(_bound_columns(mu, lower, out["distance"], out["distance_se"], row["dim"]))
    return out


# ---------------------------------------------------------------------------- experiments


def run_bound(cfg: ReproduceConfig, out: Path, progress: bool) -> dict[str, Any]:
    from spheres.plotting.bound import make_bound_figures

    paths = make_bound_figures(out)
    return {"figures": [str(p) for p in paths if str(p).endswith(".png")],
            "tables": [str(p) for p in paths if str(p).endswith(".csv")], "summary": {}}


def run_quadratic(cfg: ReproduceConfig, out: Path, progress: bool) -> dict[str, Any]:
    import jax

    from spheres.maths import quadratic
    from spheres.nets.models import quadratic_weights
    from spheres.plotting.quadratic import draw_alphas
    from spheres.nets.runs import load_run, run_training

    q = cfg.quadratic
    exp = _experiment_config(q.dim, q.outer_radius, f"quad-w{q.width}", q.recipe, (q.seed,), (q.train_size,))
    run_dir = out / "run"
    run_training(exp, run_dir, progress=progress)
    run = load_run(run_dir)
    variables = jax.tree.map(lambda a: np.asarray(a[0]), run.load_variables(run.checkpoint_steps[-1]))
    dec = quadratic.alphas_from_weights(*quadratic_weights(variables))
    write_csv_atomic(out / "alphas.csv", [{"alpha": float(a)} for a in dec.alphas])
    exact = quadratic.error_rates(dec.alphas, q.outer_radius, dec.orientation)
    clt = quadratic.clt_error_rates(dec.alphas, q.outer_radius, dec.orientation)
    dist = quadratic.mean_nearest_error_distance(dec.alphas, jax.random.key(q.seed), 1.0, n_points=q.points,
                                                 orientation=dec.orientation)
    metrics = [r for r in run.metrics if r["step"] == run.checkpoint_steps[-1]][0]
    summary = {
        "dim": q.dim, "width": q.width, "radius": q.outer_radius, "train_size": q.train_size,
        "steps": run.checkpoint_steps[-1], "learning_rate": q.recipe.learning_rate,
        "train_loss": metrics["loss"], "train_accuracy": metrics["accuracy"],
        "orientation": dec.orientation.value,
        "alphas_outside": quadratic.count_outside(dec.alphas, q.outer_radius),
        "alphas_below": int(np.sum(dec.alphas < 1 / q.outer_radius**2)), "alphas_above": int(np.sum(dec.alphas > 1)),
        "alpha_min": float(dec.alphas.min()), "alpha_max": float(dec.alphas.max()),
        "exact_mu_inner": exact.inner, "exact_mu_outer": exact.outer,
        "exact_mu_inner_log10": _finite(exact.log10_inner), "exact_mu_outer_log10": _finite(exact.log10_outer),
        "clt_mu_inner": _finite(clt.inner), "clt_mu_outer": _finite(clt.outer),
        "exact_mean_distance": _finite(dist.mean), "exact_mean_distance_se": _finite(dist.se),
        "exact_distance_points": dist.n, "exact_distance_unreachable": dist.n_unreachable,
    }
    summary["optimal_distance_at_exact_mu"] = _bound_columns(exact.inner, exact.inner, None, None,
                                                             q.dim)["optimal_distance"]
    write_json_atomic(out / "summary.json", summary)
    figs = draw_alphas(out / "alphas.csv", out / "summary.json", out / "quadratic_alphas.png")
    return {"figures": [str(p) for p in figs], "tables": [str(out / "alphas.csv"), str(out / "summary.json")],
            "summary": summary}


def _finite(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def run_tradeoff(cfg: ReproduceConfig, out: Path, progress: bool) -> dict[str, Any]:
    from spheres.plotting.tradeoff import draw_tradeoff

    t = cfg.tradeoff
    rows = []
    for model in t.models:
        _log(f"[tradeoff] {model}: {len(t.train_sizes) * len(t.seeds)} networks at d = {t.dim}, "
             f"{t.recipe.steps} steps")
        exp = _experiment_config(t.dim, t.outer_radius, model, t.recipe, t.seeds, t.train_sizes,
                                 _learning_rate(t, model))
        rows += [result_row(r) for r in _train_and_measure(exp, out / "runs" / model, t.measure, progress)]
    write_csv_atomic(out / "results.csv", rows)
    figs = draw_tradeoff(out / "results.csv", out / "tradeoff.png")
    return {"figures": [str(p) for p in figs], "tables": [str(out / "results.csv")], "summary": _summarise(rows)}


def _summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    checked = [r for r in rows if r["consistent_with_bound"] is not None]
    # ratios where the net is past chance on the inner sphere (mu < 1/2); at larger mu most attacked
    # points are already misclassified and d(E) is a mean of mostly zeros
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None and r["mu"] < 0.5]
    mus = [r["mu"] for r in rows if r["mu"]]
    return {"points": len(rows), "points_with_bound": len(checked),
            "points_above_bound": sum(1 for r in checked if not r["consistent_with_bound"]),
            "points_with_attack_failures": sum(1 for r in rows if (r["distance_failures"] or 0) > 0),
            "ratio_median": float(np.median(ratios)) if ratios else None,
            "ratio_min": min(ratios) if ratios else None, "ratio_max": max(ratios) if ratios else None,
            "smallest_mu": min(mus) if mus else None}


def run_dimsweep(cfg: ReproduceConfig, out: Path, progress: bool) -> dict[str, Any]:
    from spheres.maths.analysis import dimension_exponent
    from spheres.plotting.dimsweep import draw_dimsweep

    s = cfg.dimsweep
    rows = []
    for dim in s.dims:
        for template in s.models:
            model = template.format(dim=dim)
            _log(f"[dimsweep] d = {dim}, {model}: {len(s.seeds) * len(s.train_sizes)} networks, {s.recipe.steps} steps")
            exp = _experiment_config(dim, s.outer_radius, model, s.recipe, s.seeds, s.train_sizes,
                                     _learning_rate(s, template))
            for r in _train_and_measure(exp, out / "runs" / f"d{dim}-{model}", s.measure, progress):
                row = result_row(r)
                row["family"] = template
                rows.append(row)
    write_csv_atomic(out / "results.csv", rows)

    def fit(sel: list[dict[str, Any]]) -> dict[str, Any]:
        ok = [r for r in sel if r["mu"] and 0 < r["mu"] < 0.5 and r["distance"] and r["distance_failures"] == 0
              and r["distance_se"]]
        if len({r["dim"] for r in ok}) < 2 or len(ok) < 3:
            return {"exponent": None, "exponent_se": None, "n": len(ok),
                    "note": "too few usable points (need 0 < mu < 0.5, d(E) found for every point, >= 2 dims)"}
        f = dimension_exponent([r["dim"] for r in ok], [r["mu"] for r in ok], [r["distance"] for r in ok],
                               [r["distance_se"] for r in ok])
        return {"exponent": f.slope, "exponent_se": f.slope_se, "n": f.n}

    fits = {"models": {m: fit([r for r in rows if r["family"] == m]) for m in s.models}, "all": fit(rows),
            "law": "d(E) = A (c Phi(c) + phi(c)) d^exponent, c = Phi^-1(1 - mu); -0.5 is the 1/sqrt(d) law"}
    write_json_atomic(out / "fit.json", fits)
    figs = draw_dimsweep(out / "results.csv", out / "fit.json", out / "dimsweep_collapse.png",
                         out / "dimsweep_ratio.png")
    return {"figures": [str(p) for p in figs], "tables": [str(out / "results.csv"), str(out / "fit.json")],
            "summary": {**_summarise(rows), "fit": fits}}


def run_slices(cfg: ReproduceConfig, out: Path, progress: bool) -> dict[str, Any]:
    from spheres.core.cells import CellStore
    from spheres.plotting.slices import draw_slices

    store = CellStore(out)
    store.run("slices", lambda: _compute_slices(cfg, out))
    figs = draw_slices(out / "slices.npz", out / "slices.png")
    return {"figures": [str(p) for p in figs], "tables": [str(out / "slices.npz")], "summary": {}}


def _compute_slices(cfg: ReproduceConfig, out: Path) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp

    from spheres.measure import attacks
    from spheres.maths.geometry import sample_sphere
    from spheres.core.io import write_bytes_atomic
    from spheres.nets.models import make_logit_fn
    from spheres.nets.runs import load_run
    from spheres.measure.slices import decision_slice

    sc, t = cfg.slices, cfg.tradeoff
    source = out.parent / "tradeoff" / "runs" / sc.model
    if not (source / "config.toml").is_file():
        raise InputError("slices", f"no trained {sc.model} in {source}; run the tradeoff experiment first")
    run = load_run(source)
    member = next(m["member"] for m in run.members if m["train_size"] == sc.train_size and m["seed"] == sc.seed)
    step = run.checkpoint_steps[-1]
    variables = jax.tree.map(lambda a: jnp.asarray(a[member]), run.load_variables(step))
    logit_fn = make_logit_fn(run.config.model, t.dim)
    key = jax.random.key(sc.seed)
    k_points, k_dirs = jax.random.split(key)
    # a few candidate starting points; keep the first two whose nearest error the attack finds
    xs = jax.vmap(lambda k: sample_sphere(k, t.dim))(jax.random.split(k_points, 16))
    res = attacks.attack(logit_fn, variables, xs, 0)
    found = np.flatnonzero(np.asarray(res.found) & ~np.asarray(res.initially_wrong))
    if found.size < 2:
        raise InputError("slices", f"the attack found errors from only {found.size} of 16 points of {sc.model}; "
                                   "cannot draw the adversarial slices")
    i, j = found[:2]
    x1, y1, x2, y2 = xs[i], res.point[i], xs[j], res.point[j]
    g = jax.random.normal(k_dirs, (2, t.dim))
    planes = [
        ("two random directions", g[0], g[1], []),
        ("random point and its adversarial direction", x1, y1 - x1, [x1, y1]),
        ("two adversarial directions", y1 - x1, y2 - x2, []),
    ]
    arrays: dict[str, np.ndarray] = {"radius": np.asarray(t.outer_radius)}
    for k, (title, a, b, marks) in enumerate(planes):
        sl = decision_slice(logit_fn, variables, a, b, extent=sc.extent, resolution=sc.resolution)
        arrays[f"coords_{k}"] = np.asarray(sl.coords)
        arrays[f"logits_{k}"] = np.asarray(sl.logits)
        arrays[f"title_{k}"] = np.asarray(title)
        if marks:
            arrays[f"points_{k}"] = np.asarray(jnp.stack(marks) @ sl.basis.T)
    import io as _io

    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(out / "slices.npz", buf.getvalue())
    return {"model": sc.model, "member": int(member), "step": int(step),
            "attack_distances": [float(res.distance[i]), float(res.distance[j])]}


def curated_name(experiment: str, path: str | Path) -> str:
    """File name of a result in the curated figures directory: prefixed by its experiment unless it
    already says it (``results.csv`` of tradeoff -> ``tradeoff_results.csv``)."""
    base = Path(path).name
    return base if experiment == "bound" or base.startswith(experiment) else f"{experiment}_{base}"


RUNNERS: dict[str, Callable[[ReproduceConfig, Path, bool], dict[str, Any]]] = {
    "bound": run_bound, "quadratic": run_quadratic, "tradeoff": run_tradeoff, "dimsweep": run_dimsweep,
    "slices": run_slices,
}


def reproduce(cfg: ReproduceConfig, out: str | Path, progress: bool = True,
              figures_dir: str | Path | None = None, command: str = "spheres reproduce",
              config_path: str = "") -> dict[str, Any]:
    """Run every experiment of ``cfg`` into ``out/<experiment>/`` (resumable); return the summaries.

    With ``figures_dir``, each experiment's figures and tables are copied there as well, with a
    ``README.md`` generated from the saved results (the curated set under ``figures/``).
    """
    out = Path(out)
    report: dict[str, Any] = {}
    for name in cfg.experiments:
        start = time.monotonic()
        _log(f"== {name}")
        result = RUNNERS[name](cfg, out / name, progress)
        result["seconds"] = round(time.monotonic() - start, 1)
        report[name] = result
        if figures_dir is not None:
            dest = Path(figures_dir)
            dest.mkdir(parents=True, exist_ok=True)
            for p in result["figures"] + result["tables"]:
                shutil.copyfile(p, dest / curated_name(name, p))
    write_json_atomic(out / "summary.json", report)
    if figures_dir is not None:
        from spheres.core.io import write_text_atomic

        write_text_atomic(Path(figures_dir) / "README.md", figures_readme(report, out, config_path, command))
    return report


# ---------------------------------------------------------------------------- figures/README.md

_DESCRIPTIONS = {
    "bound": [
        ("bound_vs_dim.png", "The exact optimal d(E) (mean chord distance to the nearest error when the errors form "
         "a spherical cap, the worst case by Levy's isoperimetric inequality) against the dimension at "
         "mu = 1e-2, 1e-4, 1e-8, with the asymptotic form Phi^-1(1 - mu)/sqrt(d): the 1/sqrt(d) law."),
        ("tradeoff_curve.png", "The exact optimal d(E) against the error rate mu for d = 50, 500, 5000: every "
         "classifier lies on or below the curve of its dimension."),
    ],
    "quadratic": [("quadratic_alphas.png", "The quadratic network trained on a fixed set: histogram of its "
                   "alpha_i with the band [1/R^2, 1] (the net is perfect on both spheres iff every alpha_i lies in "
                   "it), and its exact error rates beside the paper's CLT estimate.")],
    "tradeoff": [("tradeoff.png", "Fig. 4 of the paper: every trained net at every checkpoint, placed by its "
                  "inner-sphere error rate mu(E) (exact for the quad net; Monte Carlo, or splitting where Monte "
                  "Carlo sees too few errors) and its d(E) (on-manifold attack), against the exact cap bound.")],
    "dimsweep": [
        ("dimsweep_collapse.png", "d(E) sqrt(d) against Phi^-1(1 - mu(E)) for every dimension: if d(E) shrinks like "
         "1/sqrt(d) at fixed error rate, all dimensions fall on one curve."),
        ("dimsweep_ratio.png", "d(E) divided by the bound at the net's own error rate, against d."),
    ],
    "slices": [("slices.png", "Two-dimensional slices through a trained net's decision boundary: two random "
                "directions; a random point and its adversarial direction; two adversarial directions.")],
}


def _sci(x: Any, digits: int = 2) -> str:
    if x is None:
        return "-"
    x = float(x)
    if x == 0:
        return "0"
    return f"{x:.{digits}e}" if abs(x) < 1e-3 or abs(x) >= 1e4 else f"{x:.{digits + 1}g}"


def _tradeoff_table(rows: list[dict[str, Any]]) -> list[str]:
    last = {}
    for r in rows:
        key = (r["model"], r["train_size"], r["seed"])
        if key not in last or r["step"] > last[key]["step"]:
            last[key] = r
    lines = ["| model | N | seed | step | mu(E) [95% interval] | method | d(E) +- SE (failures) | optimal d(E) at mu | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (model, n, seed), r in sorted(last.items(), key=lambda kv: (kv[0][0], kv[0][1] or 10**12, kv[0][2])):
        interval = "" if r["mu_method"] == "exact" else f" [{_sci(r['mu_lower'])}, {_sci(r['mu_upper'])}]"
        dist = "-" if r["distance"] is None else f"{r['distance']:.4f} +- {_sci(r['distance_se'], 1)}"
        lines.append(f"| {model} | {n or 'online'} | {seed} | {r['step']} | {_sci(r['mu'])}{interval} | {r['mu_method']} "
                     f"| {dist} ({r['distance_failures']}) | {_sci(r['optimal_distance'], 3)} | {_sci(r['ratio'], 2)} |")
    return lines


def _findings(report: dict[str, Any]) -> list[str]:
    """Plain-language findings, each computed from the saved summaries (no number is typed in)."""
    out = []
    for name in ("tradeoff", "dimsweep"):
        s = report.get(name, {}).get("summary")
        if not s:
            continue
        out.append(f"{name}: {s['points_with_bound'] - s['points_above_bound']} of {s['points_with_bound']} measured "
                   f"points lie at or below the exact cap bound within 2 SE (the bound is a theorem; a point above it "
                   f"would be a bug). Where mu < 1/2 the nets reach a median {_sci(s['ratio_median'])} of the largest "
                   f"d(E) any classifier with their error rate can have (range {_sci(s['ratio_min'])} to "
                   f"{_sci(s['ratio_max'])})" + (": trained nets sit close to the optimal curve, as in the paper."
                                                   if (s["ratio_median"] or 0) >= 0.5 else
                                                   ": well below the optimal curve, unlike the paper's nets."))
        if s["points_with_attack_failures"]:
            out.append(f"{name}: at {s['points_with_attack_failures']} of {s['points']} points the attack found no "
                       "error from some starting points (within its budget); their d(E) is a mean over the other "
                       "points and is drawn hollow, so it can understate the distance.")
        fit = s.get("fit", {}).get("all")
        if fit and fit.get("exponent") is not None:
            z = (fit["exponent"] + 0.5) / fit["exponent_se"]
            out.append(f"dimsweep: d(E) scales like d^({fit['exponent']:.3f} +- {fit['exponent_se']:.3f}) at matched "
                       f"error rate ({fit['n']} points), {abs(z):.1f} standard errors from the 1/sqrt(d) law's -1/2.")
    t = report.get("tradeoff", {}).get("summary")
    if t and t.get("smallest_mu") is not None:
        out.append(f"tradeoff: the smallest error rate reached is {_sci(t['smallest_mu'])}. The paper's nets, trained "
                   "for 10^6 steps, went below 1e-7 (Monte Carlo saw no error); at the budgets of this run most nets "
                   "stop at larger error rates, so the figure covers the upper part of the paper's curve.")
    q = report.get("quadratic", {}).get("summary")
    if q:
        ratio = (q["clt_mu_inner"] / q["exact_mu_inner"]) if q.get("clt_mu_inner") and q.get("exact_mu_inner") else None
        out.append(f"quadratic: {q['alphas_outside']} of {q['dim']} alphas lie outside [1/R^2, 1] (the paper, after 10^6 "
                   f"steps: 394 of 500), with exact inner error rate {_sci(q['exact_mu_inner'])} and outer "
                   f"{_sci(q['exact_mu_outer'])} after {q['steps']} steps."
                   + (f" The paper's CLT estimate of the inner rate is {ratio:.2g} times the exact value." if ratio else ""))
    return out


def figures_readme(report: dict[str, Any], out: Path, config_path: str, command: str) -> str:
    """The text of ``figures/README.md``: what each figure shows, the command that made it, and the
    key numbers, all read from the saved results of this run."""
    lines = ["# Figures", "",
             f"Made by `{command}` (config `{config_path}`). The files here are copied from the run's results "
             "directory; every number below is read from the saved tables, not typed in. Re-running the command "
             "regenerates all of it.", ""]
    findings = _findings(report)
    if findings:
        lines += ["## What this run shows (computed from the tables below)", ""] + [f"- {f}" for f in findings] + [""]
    for name, res in report.items():
        lines.append(f"## {name}")
        lines.append("")
        for fig, text in _DESCRIPTIONS[name]:
            lines += [f"![{fig}]({fig})", "", f"**{fig}**: {text}", ""]
        s = res.get("summary", {})
        if name == "quadratic" and s:
            lines += ["| quantity | value |", "| --- | --- |"]
            for key, label in [("dim", "dimension d"), ("width", "width h"), ("train_size", "training points N"),
                               ("steps", "Adam steps"), ("learning_rate", "learning rate"),
                               ("train_accuracy", "training accuracy"), ("alphas_outside", "alphas outside [1/R^2, 1]"),
                               ("alphas_below", "  below 1/R^2"), ("alphas_above", "  above 1"),
                               ("exact_mu_inner", "exact inner error rate"), ("clt_mu_inner", "paper's CLT estimate, inner"),
                               ("exact_mu_outer", "exact outer error rate"), ("clt_mu_outer", "paper's CLT estimate, outer"),
                               ("exact_mean_distance", "exact d(E) (inner sphere)"),
                               ("optimal_distance_at_exact_mu", "optimal d(E) at that error rate")]:
                value = s.get(key)
                text = _sci(value, 3) if isinstance(value, float) else str(value)
                if key == "exact_mean_distance" and value is not None:
                    text += f" +- {_sci(s['exact_mean_distance_se'], 1)} ({s['exact_distance_points']} points)"
                lines.append(f"| {label} | {text} |")
            lines.append("")
        if name in ("tradeoff", "dimsweep") and s:
            lines += [f"{s['points']} points (nets x checkpoints). Points above the bound beyond 2 SE: "
                      f"**{s['points_above_bound']}** of {s['points_with_bound']} checked (a point above it would be "
                      f"a bug). d(E)/optimal where mu < 1/2: median {_sci(s['ratio_median'])}, range [{_sci(s['ratio_min'])}, "
                      f"{_sci(s['ratio_max'])}]. Smallest error rate reached: {_sci(s['smallest_mu'])}. Points where "
                      f"the attack found no error from some starting points (their mean is over the rest): "
                      f"{s['points_with_attack_failures']}.", ""]
            rows = read_csv(out / name / "results.csv")
            if name == "tradeoff":
                lines += ["Last checkpoint of every net:", ""] + _tradeoff_table(rows) + [""]
            else:
                fit = s["fit"]
                lines += ["Fitted exponent beta in d(E) = A (c Phi(c) + phi(c)) d^beta (matched error rate; -1/2 is "
                          "the 1/sqrt(d) law):", "", "| models | beta | SE | points |", "| --- | --- | --- | --- |"]
                for label, f in [*fit["models"].items(), ("all", fit["all"])]:
                    lines.append(f"| {label} | {_sci(f['exponent'], 3)} | {_sci(f['exponent_se'], 2)} | {f['n']} |")
                lines.append("")
        lines.append(f"Tables: {', '.join('`' + curated_name(name, p) + '`' for p in res['tables'])}.")
        lines.append("")
    return "\n".join(lines)
