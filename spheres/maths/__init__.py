"""Layer 1, ``maths``: pure functions, float64 where it matters; no models, no files.

``geometry`` (sampling, projections, distances on spheres), ``theory`` (exact cap bound),
``stats`` (exact intervals, the typed estimates every measurement returns), ``quadratic`` (the
quadratic network solved exactly), ``classifiers`` (the ``logit_fn(params, x)`` contract and
reference classifiers with exact answers), ``analysis`` (fits).
"""
