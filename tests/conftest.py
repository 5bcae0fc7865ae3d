"""Strict, fast, deterministic test harness (STYLE.md practice 12).

- Several host CPU devices, so sharding tests can compare sharded and unsharded runs.
  (Must be set before jax is imported anywhere.)
- Rank promotion raises: silent broadcasting is a bug.
- One hypothesis profile: no deadline, derandomised, no database, few examples.
- A persistent XLA compilation cache shared by the test workers (``build/jax-cache``, or
  ``$SPHERES_TEST_JAX_CACHE``; ``none`` turns it off): most of the suite's time is compiling small
  programs, many of them the same in several tests. A cached executable is the one XLA would build
  (the key holds the program, the compile options and the versions), so no number changes; a cold
  cache saves about a fifth of the CPU time, a warm one about half.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
os.environ.setdefault("MPLBACKEND", "Agg")
# JAX reads its options from JAX_* variables, so the commands the tests start inherit the cache too
_CACHE = os.environ.get("SPHERES_TEST_JAX_CACHE",
                        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build", "jax-cache"))
if _CACHE != "none":
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

import jax  # noqa: E402
from hypothesis import settings  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile("spheres", deadline=None, derandomize=True, database=None, max_examples=12,
                          print_blob=False)
settings.load_profile("spheres")

#: dimensions hypothesis may draw: a small fixed set so jit compiles once per dimension
DIMS = (2, 3, 7, 50)
