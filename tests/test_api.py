"""The library as a researcher uses it: ``import spheres`` is lazy and documented, the README example
runs as printed, ``--help`` and ``--version`` never import JAX."""

import importlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

import spheres

ROOT = Path(__file__).resolve().parents[1]

#: The README's Python example, exactly as printed there.
EXAMPLE = '''\
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
'''


def _python(code: str, cwd: Path = ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_public_names_resolve_to_the_layered_modules():
    expect = {"theory": "spheres.maths.theory", "quadratic": "spheres.maths.quadratic",
              "geometry": "spheres.maths.geometry", "stats": "spheres.maths.stats",
              "montecarlo": "spheres.measure.montecarlo", "attacks": "spheres.measure.attacks",
              "splitting": "spheres.measure.splitting", "train": "spheres.nets.train",
              "models": "spheres.nets.models", "runs": "spheres.nets.runs", "rundir": "spheres.nets.rundir",
              "measure": "spheres.measure", "reproduce": "spheres.experiments.reproduce"}
    for name, module in expect.items():
        assert getattr(spheres, name) is importlib.import_module(module), name
    assert spheres.theory.mean_distance_to_cap is importlib.import_module("spheres.maths.theory").mean_distance_to_cap
    assert spheres.quadratic.error_rates is importlib.import_module("spheres.maths.quadratic").error_rates
    assert spheres.measure_run is importlib.import_module("spheres.measure.pipeline").measure_run
    assert spheres.run_training is spheres.runs.run_training and spheres.load_run is spheres.rundir.load_run
    for name in spheres.__all__:
        assert getattr(spheres, name) is not None, name
        assert name in dir(spheres)
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        spheres.nonsense  # noqa: B018


def test_import_is_lazy_and_version_matches_the_package():
    out = _python("import sys, spheres; print(spheres.__version__); "
                  "print(sorted(m for m in ('jax', 'scipy', 'numpy', 'flax') if m in sys.modules))")
    assert out.returncode == 0, out.stderr
    version, loaded = out.stdout.splitlines()
    assert loaded == "[]"
    assert version == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    cli = subprocess.run([sys.executable, "-m", "spheres.cli", "--version"], cwd=ROOT, capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)
    assert cli.returncode == 0 and cli.stdout.strip() == f"spheres {version}"


@pytest.mark.parametrize("argv", [["--help"], ["bound", "--help"], ["quadratic", "--help"], ["train", "--help"],
                                  ["measure", "--help"], ["demo", "--help"], ["reproduce", "--help"]])
def test_help_never_imports_jax_or_scipy(argv):
    out = _python("import sys\nfrom spheres import cli\ntry:\n    cli.main(%r)\nexcept SystemExit as e:\n"
                  "    assert e.code == 0, e.code\nprint('LOADED', sorted(m for m in ('jax', 'scipy', 'matplotlib', "
                  "'flax') if m in sys.modules))" % (argv,))
    assert out.returncode == 0, out.stderr
    assert "usage: spheres" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "LOADED []"


def test_the_docstring_shows_the_same_example():
    import textwrap

    assert textwrap.indent(EXAMPLE, "    ") in spheres.__doc__


def test_example_first_lines_are_exact():
    """The maths half of the README example, checked against closed forms (the rest trains: slow test)."""
    assert round(float(spheres.theory.mean_distance_to_cap(1e-2, 500)), 5) == 0.10418  # docs/science.md section 3
    rates = spheres.quadratic.error_rates(np.linspace(0.55, 1.05, 500), 1.3)
    assert 0 < rates.outer < rates.inner < 1e-100


@pytest.mark.slow
def test_readme_example_runs_as_printed(tmp_path):
    (tmp_path / "experiments" / "configs").mkdir(parents=True)
    shutil.copy(ROOT / "experiments" / "configs" / "quick.toml", tmp_path / "experiments" / "configs")
    out = _python(EXAMPLE, cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert round(float(lines[0]), 5) == 0.10418
    inner, outer = map(float, lines[1].split())
    assert 0 < outer < inner < 1e-100
    mu, dist = map(float, lines[2].split())
    assert 0 <= mu < 0.5 and 0 < dist < 1.5
    assert (tmp_path / "runs" / "quick" / "measurements.csv").is_file()
