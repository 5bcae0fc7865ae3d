"""Strict, fast, deterministic test harness (STYLE.md practice 12).

- Several host CPU devices, so sharding tests can compare sharded and unsharded runs.
  (Must be set before jax is imported anywhere.)
- Rank promotion raises: silent broadcasting is a bug.
- One hypothesis profile: no deadline, derandomised, no database, few examples.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("spheres", deadline=None, derandomize=True, database=None, max_examples=12,
                          print_blob=False)
settings.load_profile("spheres")

#: dimensions hypothesis may draw: a small fixed set so jit compiles once per dimension
DIMS = (2, 3, 7, 50)
