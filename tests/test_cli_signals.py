"""Ctrl-C and SIGTERM on the real ``spheres`` program: the documented status every time, never a crash.

Each test starts ``python -m spheres.cli`` as a child process, waits until it has reached a given
moment (importing JAX, compiling the warm-up, training, measuring), sends the signal and checks:
exit status 130 (SIGINT) or 143 (SIGTERM), one "interrupted" line, no traceback, no segfault, a
prompt exit, and a run directory that still loads and resumes. (Before the fix the process printed
"interrupted" and then died with SIGSEGV, status 139, in about half the tries.)
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spheres.nets import rundir, runs
from spheres.nets.config import config_from_dict

ROOT = Path(__file__).resolve().parents[1]

#: long enough that every moment is reached well before the end (about 1 min of training alone)
LONG = """
[task]
dim = 20

[model]
arch = "relu"
width = 32
depth = 1
batch_norm = false

[train]
steps = 400000
batch_size = 16
learning_rates = [0.01]
train_sizes = [0]
seeds = [0, 1]
checkpoints = 6
chunk_steps = 500
"""

TINY = {"task": {"dim": 3}, "model": {"arch": "relu", "width": 4, "depth": 1, "batch_norm": True},
        "train": {"steps": 40, "batch_size": 8, "learning_rates": [0.01], "train_sizes": [0, 16],
                  "seeds": [0, 1], "checkpoints": 4, "chunk_steps": 9}}


def _spawn(tmp_path: Path, argv: list[str], name: str):
    log = tmp_path / f"{name}.log"
    sink = open(log, "wb")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("XLA_FLAGS", None)  # one CPU device, as a user has
    child = subprocess.Popen([sys.executable, "-m", "spheres.cli", *argv], stdout=sink, stderr=subprocess.STDOUT,
                             cwd=ROOT, env=env)
    sink.close()
    return child, log


def _wait(child, log: Path, ready, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert child.poll() is None, f"child ended before {what}: {log.read_text()}"
        assert time.monotonic() < deadline, f"child never reached {what}: {log.read_text()}"
        time.sleep(0.01)


def _imports_jax(pid: int) -> bool:
    """The child is inside ``main`` (handlers installed) and loading JAX's native library."""
    try:
        return "jaxlib" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def _interrupt(child, log: Path, sig=signal.SIGINT, within: float = 30.0) -> tuple[int, str, float]:
    t0 = time.monotonic()
    child.send_signal(sig)
    try:
        code = child.wait(timeout=within)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
        pytest.fail(f"no exit within {within} s of the signal: {log.read_text()}")
    return code, log.read_text(), time.monotonic() - t0


def _check_interrupted(code: int, text: str, command: str, expect: int = 130) -> None:
    assert code == expect, f"exit status {code} (139 = segfault), output:\n{text}"
    assert f"spheres {command}: interrupted; finished work is saved" in text, text
    assert "Traceback" not in text and "Segmentation" not in text, text


def _train_argv(tmp_path: Path, out: Path) -> list[str]:
    cfg = tmp_path / "long.toml"
    cfg.write_text(LONG)
    return ["train", "--config", str(cfg), "--out", str(out), "--no-progress", "--verbose"]


def _moment(tmp_path: Path, moment: str, i: int, sig=signal.SIGINT) -> None:
    """Start training (or measuring), interrupt it at ``moment``, check status and files."""
    if moment == "measuring":
        run_dir = tmp_path / f"measured{i}"
        runs.run_training(config_from_dict(TINY), run_dir, progress=False)
        argv = ["measure", str(run_dir), "--mc-samples", "400000", "--attack-points", "200", "--method",
                "monte_carlo", "--no-progress"]
        child, log = _spawn(tmp_path, argv, f"{moment}{i}")
        _wait(child, log, (run_dir / "measure" / "settings.json").exists, "measuring")
        code, text, took = _interrupt(child, log, sig)
        _check_interrupted(code, text, "measure", 128 + sig)
        assert not (run_dir / "measurements.csv").exists()  # the final name only when complete
        assert took < 15, f"took {took:.1f} s to stop"
        return
    out = tmp_path / f"{moment}{i}"
    child, log = _spawn(tmp_path, _train_argv(tmp_path, out), f"{moment}{i}")
    if moment == "importing":
        _wait(child, log, lambda: _imports_jax(child.pid), "importing JAX")
    elif moment == "compiling":
        _wait(child, log, lambda: "compiling" in log.read_text(), "compiling")
    elif moment == "training":
        _wait(child, log, lambda: rundir.checkpoint_path(out, 1).exists(), "the first checkpoint")
    code, text, took = _interrupt(child, log, sig)
    _check_interrupted(code, text, "train", 128 + sig)
    if moment == "training":
        run = rundir.load_run(out)  # the interrupted run is a valid, resumable run
        assert 1 <= run.step < run.config.train.steps and 1 in run.checkpoint_steps
        assert took < 15, f"took {took:.1f} s to stop"  # within a chunk (500 small steps)
    else:
        assert not (out / rundir.STATE_DIR).exists()


def test_interrupt_during_compilation_exits_130(tmp_path):
    """The quick variant: the moment that crashed most often (before the first checkpoint)."""
    _moment(tmp_path, "compiling", 0)


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["importing", "compiling", "training", "measuring"])
def test_interrupt_at_every_moment_repeatedly(tmp_path, moment):
    for i in range(3):
        _moment(tmp_path, moment, i)


@pytest.mark.slow
def test_sigterm_exits_143(tmp_path):
    _moment(tmp_path, "training", 0, signal.SIGTERM)


@pytest.mark.slow
def test_interrupted_measurement_resumes(tmp_path):
    """After an interrupt the same command completes the table; the partial table is only ever
    under the partial name."""
    _moment(tmp_path, "measuring", 0)
    run_dir = tmp_path / "measured0"
    argv = ["measure", str(run_dir), "--mc-samples", "400000", "--attack-points", "200", "--method",
            "monte_carlo", "--no-progress"]
    done = subprocess.run([sys.executable, "-m", "spheres.cli", *argv], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    assert done.returncode == 0, done.stderr
    assert (run_dir / "measurements.csv").exists() and not (run_dir / "measurements.partial.csv").exists()


# ------------------------------------------------------------------------------------------------
# SIGKILL (no handler runs, no cleanup) at a moment when finished cells exist, then the same command
# again: the tables equal those of an uninterrupted run byte for byte, and the cells finished before
# the kill are neither rewritten nor recomputed.

#: Monte Carlo budgets large enough that a checkpoint takes a visible fraction of a second
MEASURE_FLAGS = ["--mc-samples", "50000", "--attack-points", "10", "--method", "monte_carlo", "--no-progress"]


def _to_the_end(tmp_path: Path, argv: list[str], name: str, timeout: float = 600.0) -> str:
    """Run the command in a child exactly as :func:`_spawn` does, to completion; return its output."""
    child, log = _spawn(tmp_path, argv, name)
    try:
        code = child.wait(timeout=timeout)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert code == 0, log.read_text()
    return log.read_text()


def _kill_when(tmp_path: Path, argv: list[str], ready, what: str) -> None:
    """Start the command, SIGKILL it as soon as ``ready()``, and check it died of the signal."""
    child, log = _spawn(tmp_path, argv, "killed")
    try:
        _wait(child, log, ready, what, timeout=300.0)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, log.read_text()


def _stamps(paths) -> dict[str, tuple[int, bytes]]:
    """Modification time (ns) and bytes of every file, by path."""
    return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in paths}


def _cells(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "measure" / "cells").glob("*.json"))


@pytest.mark.slow  # three child processes, each importing JAX and compiling the measurement
def test_sigkill_during_measure_then_rerun_equals_uninterrupted(tmp_path):
    import shutil
    source = tmp_path / "run"
    runs.run_training(config_from_dict(TINY), source, progress=False)  # 4 checkpoints: 4 cells
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    shutil.copytree(source, killed)
    shutil.copytree(source, reference)

    _kill_when(tmp_path, ["measure", str(killed), *MEASURE_FLAGS], lambda: len(_cells(killed)) >= 1,
               "the first finished cell")
    finished = _stamps(_cells(killed))
    assert 1 <= len(finished) < 4, "the kill must land while checkpoints remain to be measured"
    assert not (killed / "measurements.csv").exists()

    _to_the_end(tmp_path, ["measure", str(killed), *MEASURE_FLAGS], "resumed")
    _to_the_end(tmp_path, ["measure", str(reference), *MEASURE_FLAGS], "reference")
    # finished cells were loaded, not recomputed: same bytes, same modification time
    assert {p: v for p, v in _stamps(_cells(killed)).items() if p in finished} == finished
    assert [p.read_bytes() for p in _cells(killed)] == [p.read_bytes() for p in _cells(reference)]
    assert len(_cells(killed)) == 4
    for table in ("measurements.csv", "results.csv"):
        assert (killed / table).read_bytes() == (reference / table).read_bytes(), table
    assert not (killed / "measurements.partial.csv").exists()


#: one experiment of ``spheres reproduce`` with two runs (d = 6 and 10) of two measured checkpoints each
SWEEP = """
experiments = ["dimsweep"]
[dimsweep]
dims = [6, 10]
models = ["quad-w{dim}"]
[dimsweep.train]
steps = 200
learning_rates = [1e-2]
seeds = [0, 1]
checkpoints = 2
chunk_steps = 200
[dimsweep.measure]
mc_samples = 4000
attack_points = 8
method = "monte_carlo"
"""


@pytest.mark.slow  # three child processes, each training and measuring two runs
def test_sigkill_during_reproduce_then_rerun_equals_uninterrupted(tmp_path):
    config = tmp_path / "sweep.toml"
    config.write_text(SWEEP)
    killed, reference = tmp_path / "killed", tmp_path / "reference"

    def argv(out):
        return ["reproduce", "--config", str(config), "--out", str(out), "--no-progress"]

    def cells(out):
        return sorted((out / "dimsweep" / "runs").glob("*/measure/cells/*.json"))

    def saved(out):  # every finished piece of work: checkpoints, train states, measured cells
        return sorted(p for p in (out / "dimsweep" / "runs").rglob("*") if p.is_file() and p.name != ".lock")

    _kill_when(tmp_path, argv(killed), lambda: len(cells(killed)) >= 1, "the first measured checkpoint")
    finished = _stamps(cells(killed)) | _stamps(p for p in saved(killed) if "checkpoints" in p.parts)
    assert 1 <= len(cells(killed)) < 4 and not (killed / "dimsweep" / "results.csv").exists()

    _to_the_end(tmp_path, argv(killed), "resumed")
    _to_the_end(tmp_path, argv(reference), "reference")
    assert {p: v for p, v in _stamps(saved(killed)).items() if p in finished} == finished
    assert len(cells(killed)) == 4
    rel = lambda out: {str(p.relative_to(out)): p.read_bytes() for p in saved(out)}  # noqa: E731
    assert rel(killed) == rel(reference)  # runs, checkpoints and cells: the same bytes
    for table in ("results.csv", "fit.json"):
        assert (killed / "dimsweep" / table).read_bytes() == (reference / "dimsweep" / table).read_bytes(), table
