#!/usr/bin/env bash
# Time a preset's training and measurement on this machine's accelerator and write a JSON record.
#   benchmarks/gpu_full.sh                 # sample mode: every ensemble of the full preset, 200 steps each
#   benchmarks/gpu_full.sh --run           # the whole full preset (spheres reproduce --full), timed
#   benchmarks/gpu_full.sh --smoke         # tiny sizes on CPU: checks the script (about a minute)
# Options are those of benchmarks/gpu_full.py (--preset, --steps, --out, --workdir); the record goes to
# results/gpu_full.json unless --out says otherwise. Needs the jax wheel of the accelerator in the
# environment (e.g. `pip install "jax[cuda12]==<the pinned jax version>"`); PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
# Let XLA take GPU memory as it needs it rather than 75% up front (several programs share the device).
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"
exec "$PYTHON" -m benchmarks.gpu_full "$@"
