"""Long runs say what they will do: plan lines, --dry-run, --quiet/--verbose, log lines off a
terminal, the partial-table marker of ``spheres measure`` and the advice for a damaged checkpoint."""

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spheres.cli import main
from spheres.nets import rundir, runs
from spheres.nets.config import config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]

TINY = {"task": {"dim": 3}, "model": {"arch": "relu", "width": 4, "depth": 1, "batch_norm": True},
        "train": {"steps": 40, "batch_size": 8, "learning_rates": [0.01], "train_sizes": [0, 16],
                  "seeds": [0, 1], "checkpoints": 4, "chunk_steps": 9}}

TINY_TOML = """
[task]
dim = 3
outer_radius = 1.3

[model]
arch = "relu"
width = 4
depth = 1
batch_norm = true

[train]
steps = 40
batch_size = 8
learning_rates = [0.01]
train_sizes = [0, 16]
seeds = [0, 1]
checkpoints = 4
chunk_steps = 9
"""

CHEAP = ["--mc-samples", "2000", "--attack-points", "4", "--method", "monte_carlo"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("plans") / "run"
    runs.run_training(config_from_dict(TINY), out, progress=False)
    return out


def test_measure_flag_defaults_are_the_library_defaults():
    import dataclasses

    from spheres.cli import measure
    from spheres.measure import pipeline

    assert measure.METHODS == pipeline.METHODS
    assert measure.DEFAULTS == {k: v for k, v in dataclasses.asdict(pipeline.MeasureConfig()).items() if k != "steps"}


def test_format_seconds_and_plan_line():
    plan = runs.TrainingPlan(model="relu-w1000-d2", members=6, steps=1_000_000, dim=500, done=0,
                             seconds_per_step=0.111, compile_seconds=3.0, devices=1)
    assert plan.remaining_seconds == pytest.approx(111_000)
    assert plan.line() == ("6 nets relu-w1000-d2 x 1,000,000 steps at d = 500: about 31 h on this machine "
                           "(1 device); resumable (re-run the same command after an interruption)")
    resumed = plan.__class__(**{**plan.__dict__, "done": 400_000})
    assert "about 18 h" in resumed.line() and "resuming at step 400,000" in resumed.line()
    done = plan.__class__(**{**plan.__dict__, "done": 1_000_000})
    assert "nothing to do" in done.line()


@pytest.mark.slow
def test_plan_estimate_is_the_measured_step_time(tmp_path):
    """The warm-up's estimate predicts the real run within a factor of 5 (plus 2 s): loose, because
    the test machine may be shared and its load change between the warm-up and the run."""
    import time

    cfg = config_from_dict({**TINY, "train": {**TINY["train"], "steps": 3000, "chunk_steps": 1000}})
    plan = runs.plan_training(cfg, tmp_path / "run")
    assert plan.done == 0 and plan.seconds_per_step > 0 and plan.compile_seconds > 0
    assert list(tmp_path.iterdir()) == []  # planning writes nothing
    t0 = time.perf_counter()
    runs.run_training(cfg, tmp_path / "run", progress=False)
    took = time.perf_counter() - t0
    assert plan.remaining_seconds / 5 < took < 5 * plan.remaining_seconds + 2.0
    assert plan.chunks == len(runs.chunk_boundaries(cfg.train)) and plan.seconds_per_chunk > 0


def test_train_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY_TOML)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--dry-run"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("spheres train: plan: 4 nets relu-w4-d1-bn x 40 steps at d = 3: about")
    assert not (tmp_path / "run").exists()


def test_train_logs_progress_off_a_terminal(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(TINY_TOML)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--log-every", "1e-9"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("spheres train: plan: ")
    steps = [line for line in err[1:] if " spheres train: step " in line]
    assert len(steps) == len(runs.chunk_boundaries(load_config(cfg).train))  # one per chunk at this interval
    assert steps[-1].split(" spheres train: ")[1].startswith("step 40/40 (100%), mean loss ")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "quiet"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--log-every", "0"]) == 2
    assert "--log-every" in capsys.readouterr().err


@pytest.mark.slow  # default-suite budget; the contract is also checked by a cheaper test
def test_measure_plan_dry_run_and_partial_marker(tiny_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    assert main(["measure", str(run_dir), *CHEAP, "--dry-run"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("spheres measure: plan: 4 models relu-w4-d1-bn x 4 checkpoints at d = 3: Monte Carlo "
                          "2,000 samples per sphere, 4 attack points, method monte_carlo: about ")
    assert not (run_dir / "measure").exists() and not (run_dir / "measurements.csv").exists()

    # interrupted after the first checkpoint: the table exists only under the partial name
    from spheres.measure import pipeline

    class Stop(Exception):
        pass

    def stop(step):
        raise Stop

    with pytest.raises(Stop):
        pipeline.measure_run(run_dir, pipeline.MeasureConfig(mc_samples=2000, attack_points=4,
                                                             method="monte_carlo"), progress=False, on_step=stop)
    assert (run_dir / pipeline.PARTIAL_TABLE_FILE).exists() and not (run_dir / pipeline.TABLE_FILE).exists()
    assert main(["measure", str(run_dir), *CHEAP, "--log-every", "1e-9", "--verbose"]) == 0
    captured = capsys.readouterr()
    assert "1 of 4 checkpoints already measured" in captured.err
    assert "checkpoint 4/4 (step 40) measured" in captured.err
    assert (run_dir / pipeline.TABLE_FILE).exists() and not (run_dir / pipeline.PARTIAL_TABLE_FILE).exists()
    assert main(["measure", str(run_dir), *CHEAP, "--quiet", "--json"]) == 0
    assert capsys.readouterr().err == ""


def test_truncated_checkpoint_names_the_file_and_how_to_recreate_it(tiny_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    path = rundir.checkpoint_path(run_dir, 40)
    path.write_bytes(path.read_bytes()[:50])  # truncated, as by a full disk
    assert main(["measure", str(run_dir), *CHEAP]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the plan and the checkpoints measured
    assert err.startswith(f"spheres measure: error: {path}: corrupt or truncated")
    assert "re-creates it bit for bit" in err and "spheres train --config" in err
    assert "delete the run directory" not in err


def test_advice_recreates_the_checkpoint_bit_for_bit(tiny_run, tmp_path):
    """The advice works: training the saved config into a new directory gives the same file."""
    new = tmp_path / "new"
    runs.run_training(load_config(tiny_run / rundir.CONFIG_FILE), new, progress=False)
    assert rundir.checkpoint_path(new, 40).read_bytes() == rundir.checkpoint_path(tiny_run, 40).read_bytes()


@pytest.mark.slow
def test_readme_measure_command_takes_seconds(tmp_path):
    """The README's commands: train the quick run, then measure it with the README's budgets, in
    seconds of CPU time (CPU, not wall, time: the test machine may be shared)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)
    quick = ROOT / "experiments" / "configs" / "quick.toml"
    readme = [line for line in quick.read_text().splitlines() if "spheres measure runs/quick" in line]
    assert len(readme) == 1
    measure_argv = readme[0].split("spheres ", 1)[1].split("#")[0].split()
    run_dir = tmp_path / "runs" / "quick"
    train = subprocess.run([sys.executable, "-m", "spheres.cli", "train", "--config", str(quick), "--out",
                            str(run_dir), "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [str(run_dir) if a == "runs/quick" else a for a in measure_argv]
    done = subprocess.run([sys.executable, "-m", "spheres.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 30, f"{cpu:.1f} s of CPU time"
    assert "80 rows" in done.stdout
