"""Layer 3, ``measure``: measurements of trained (or reference) classifiers.

Every measurement of ONE model has the same shape::

    measure(key, logit_fn, params, cfg) -> estimate

``key`` a ``jax.random.key``; ``logit_fn(params, x)`` any per-example classifier (``x`` of shape
``(d,)``, "outer" iff the logit is > 0); ``cfg`` the measurement's frozen config, validated on
construction, naming a sphere as ``sphere="inner"|"outer"`` with the task's ``outer_radius``
(:mod:`spheres.measure.config`); the estimate a typed result of :mod:`spheres.maths.stats`
(value, interval, the sample size named as what it counts, method, status):

=================  ==============================  =================================================
module             config                          estimate
=================  ==============================  =================================================
``montecarlo``     ``MonteCarloConfig``            ``SphereRates`` of ``RateEstimate`` (both spheres)
``splitting``      ``SplittingConfig``             ``LogRateEstimate`` (one sphere, rare rates)
``attacks``        ``AttackConfig``                ``DistanceEstimate`` (d(E), nearest errors)
=================  ==============================  =================================================

Each module's factory (``make_monte_carlo``, ``make_splitting``, ``make_attack``) returns the
compiled measurement as an object the caller keeps (no hidden compile caches); its ``program``
is the pure per-model function that the pipeline batches over the models of a run with one
``jax.vmap`` or ``jax.lax.map`` (:mod:`spheres.measure.pipeline`). ``slices`` evaluates 2-D
sections of a decision boundary (deterministic, no estimate). A new measurement is one module
with a config, a factory and ``measure``, plus its columns in the pipeline.
"""
