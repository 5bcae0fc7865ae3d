"""spheres: the geometry of adversarial examples on two concentric spheres.

Reproduces and extends Gilmer et al. (2018), "Adversarial Spheres" (arXiv:1801.02774):
uniform data on spheres of radius 1 (label 0) and R = 1.3 (label 1) in R^d, trained
classifiers, their error-set measure mu(E) and nearest-error distance d(E), and the exact
isoperimetric (spherical cap) bound that ties the two together.

The public API, by layer (each module imports only from the layers above it in this list).
Attributes are loaded on first use (PEP 562), so ``import spheres`` is instant and JAX is imported
only by what needs it:

  maths     ``spheres.theory`` (exact cap bound: ``mean_distance_to_cap``, ``cap_threshold``, ...),
            ``spheres.geometry`` (sampling and distances on spheres, per example),
            ``spheres.stats`` (exact intervals, typed estimates), ``spheres.quadratic`` (the
            quadratic network solved exactly: ``error_rates``, ``mean_nearest_error_distance``),
            ``spheres.classifiers`` (the ``logit_fn(params, x)`` contract), ``spheres.analysis``
  nets      ``spheres.config`` (``load_config``), ``spheres.models``, ``spheres.train`` (the engine,
            ``make_trainer``), ``spheres.runs`` (``run_training``), ``spheres.rundir`` (the on-disk
            format, ``load_run``)
  measure   ``spheres.montecarlo``, ``spheres.splitting``, ``spheres.attacks``, ``spheres.slices``;
            the subpackage ``spheres.measure`` itself, whose ``pipeline`` measures a whole run
            (``spheres.measure_run``, ``spheres.MeasureConfig``)
  experiments  ``spheres.reproduce``

Shortcuts: ``load_config``, ``run_training``, ``load_run``, ``measure_run``, ``MeasureConfig``,
``InputError``.

Example (the README's; ``tests/test_api.py`` runs it as printed)::

    import numpy as np
    import spheres

    print(spheres.theory.mean_distance_to_cap(1e-2, 500))     # optimal d(E) at mu(E) = 1% in d = 500
    rates = spheres.quadratic.error_rates(np.linspace(0.55, 1.05, 500), 1.3)
    print(rates.inner, rates.outer)                             # exact error rates of an ellipsoid classifier
    cfg = spheres.load_config("experiments/configs/quick.toml")
    run = spheres.load_run(spheres.run_training(cfg, "runs/quick", progress=False))
    budget = spheres.MeasureConfig(mc_samples=20_000, attack_points=20, method="monte_carlo")
    rows = spheres.measure_run(run.path, budget, progress=False)  # one dict per model x checkpoint
    print(rows[-1]["mu_inner"], rows[-1]["attack_mean_distance"])
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    **{name: (f"spheres.maths.{name}", None)
       for name in ("theory", "geometry", "stats", "quadratic", "classifiers", "analysis")},
    **{name: (f"spheres.nets.{name}", None) for name in ("config", "models", "train", "runs", "rundir")},
    **{name: (f"spheres.measure.{name}", None) for name in ("montecarlo", "splitting", "attacks", "slices")},
    "measure": ("spheres.measure", None),
    "reproduce": ("spheres.experiments.reproduce", None),
    "load_config": ("spheres.nets.config", "load_config"),
    "run_training": ("spheres.nets.runs", "run_training"),
    "load_run": ("spheres.nets.rundir", "load_run"),
    "measure_run": ("spheres.measure.pipeline", "measure_run"),
    "MeasureConfig": ("spheres.measure.pipeline", "MeasureConfig"),
    "InputError": ("spheres.core.errors", "InputError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """Load a public module or function on first access (PEP 562)."""
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'spheres' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
