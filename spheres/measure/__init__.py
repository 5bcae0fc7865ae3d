"""Layer 3, ``measure``: measurements of trained (or reference) classifiers.

Every measurement of one model takes ``(key, logit_fn, params, cfg)`` and returns a typed
estimate from :mod:`spheres.maths.stats`: ``montecarlo`` (error rates with exact intervals),
``splitting`` (rare error rates), ``attacks`` (nearest errors on or off the sphere), ``slices``
(2-D sections of a decision boundary). ``pipeline`` measures every model and checkpoint of a run.
"""
