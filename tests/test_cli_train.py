"""``spheres train`` through ``spheres.cli.main``: bad input exits 2 writing nothing; a run killed
with SIGKILL and restarted ends bit-for-bit like an uninterrupted run."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from spheres.nets import rundir, runs
from spheres.cli import main

TINY = """
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


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def files(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != rundir.LOCK_FILE}


@pytest.mark.parametrize("edit, field, allowed", [
    (('arch = "relu"', 'arch = "cnn"'), "model.arch", "allowed: relu, quad"),
    (('arch = "relu"\nwidth = 4\ndepth = 1\nbatch_norm = true', 'name = "resnet50"'), "model.name",
     "allowed: quad-w1000"),
    (("width = 4", "width = 0"), "model.width", ">= 1"),
    (("depth = 1", "depth = -2"), "model.depth", ">= 1"),
    (("steps = 40", "steps = 0"), "train.steps", ">= 1"),
    (("batch_size = 8", "batch_size = -1"), "train.batch_size", ">= 1"),
    (("dim = 3", "dim = 1"), "task.dim", ">= 2"),
    (("outer_radius = 1.3", "outer_radius = 1.0"), "task.outer_radius", "> 1"),
    (("outer_radius = 1.3", "outer_radius = 0.5"), "task.outer_radius", "> 1"),
    (("learning_rates = [0.01]", "learning_rates = [-0.01]"), "train.learning_rates", "> 0"),
    (("dim = 3", "dim = 3\ndims = 4"), "task.dims", "allowed keys: dim, outer_radius"),
    (("width = 4", "width = 4\nwidht = 5"), "model.widht", "allowed keys: arch, batch_norm, depth, name, random_masks, squeeze_bits, squeeze_range, width"),
    (("[train]", "[training]"), "training", "allowed tables: task, model, train"),
    (("[task]", "[task"), "--config", "malformed TOML"),
    (("steps = 40", "steps = 40\nsteps = 41"), "--config", "malformed TOML"),
])
def test_bad_config_one_line_exit_2_nothing_written(tmp_path, capsys, edit, field, allowed):
    old, new = edit
    assert old in TINY
    cfg = write(tmp_path, TINY.replace(old, new))
    out = tmp_path / "out"
    assert main(["train", "--config", str(cfg), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and captured.out == ""
    assert lines[0].startswith(f"spheres train: error: {field}: ")
    assert allowed in lines[0]
    assert not out.exists()


def test_missing_config_file(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "--config", str(tmp_path / "nope.toml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--config: cannot read" in err[0] and "nope.toml" in err[0]
    assert not out.exists()


@pytest.mark.parametrize("argv", [["train", "--out", "x"], ["train", "--config", "c.toml"],
                                  ["train", "--config", "c.toml", "--out", "x", "--steps", "3"]])
def test_bad_flags_exit_2(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spheres") and "error:" in err[0]


def test_train_rerun_and_mismatch(tmp_path, capsys):
    cfg = write(tmp_path, TINY)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert str(out) in captured.out and "complete" in captured.out and "16 rows" in captured.out
    # --no-progress: no bar; the one plan line (with the warm-up's estimate) on stderr
    plan = captured.err.strip().splitlines()
    assert len(plan) == 1 and plan[0].startswith("spheres train: plan: 4 nets relu-w4-d1-bn x 40 steps at d = 3: about ")
    assert "resumable" in plan[0]
    before = files(out)
    # finished: a no-op that says so
    assert main(["train", "--config", str(cfg), "--out", str(out)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert files(out) == before
    # a different config: exit 2 naming the field, nothing written
    other = write(tmp_path, TINY.replace("seeds = [0, 1]", "seeds = [0, 2]"), "other.toml")
    assert main(["train", "--config", str(other), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spheres train: error: train.seeds: ") and "[0, 1]" in err[0]
    assert files(out) == before


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal(tmp_path, monkeypatch, capsys):
    cfg = write(tmp_path, TINY)
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "a")]) == 0
    bar = sys.stderr.getvalue()
    assert "40/40" in bar and "step" in bar
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert sys.stderr.getvalue().startswith("spheres train: plan: ") and sys.stderr.getvalue().count("\n") == 1
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "c"), "--quiet"]) == 0
    assert sys.stderr.getvalue() == ""
    capsys.readouterr()


# Run the real command in a child process, slowed down between chunks so that the parent can
# kill it mid-run; the kill lands at whatever point the child has reached (training, writing).
_CHILD = textwrap.dedent("""
    import sys, time
    from spheres.nets import rundir, runs
    real = runs.run_training
    def slowed(*a, on_chunk=None, **k):
        def chunk(step):
            time.sleep(0.15)
            if on_chunk is not None:
                on_chunk(step)
        return real(*a, on_chunk=chunk, **k)
    runs.run_training = slowed
    from spheres.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path, capsys):
    cfg = write(tmp_path, TINY)  # the config of the other tests: this process has compiled it already
    killed = tmp_path / "killed"
    argv = ["train", "--config", str(cfg), "--out", str(killed), "--no-progress"]
    log = tmp_path / "child.log"
    with open(log, "wb") as sink:
        child = subprocess.Popen([sys.executable, "-c", _CHILD, *argv], stdout=sink, stderr=sink,
                                 env=dict(os.environ))
    deadline = time.monotonic() + 60
    try:
        # kill right after the SECOND checkpoint file appears: mid-chunk, before its state is saved
        while len(list((killed / rundir.CHECKPOINT_DIR).glob("*.msgpack"))) < 2:
            assert child.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "child made no progress"
            time.sleep(0.005)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    partial = runs.load_run(killed)
    assert 0 < partial.step < partial.config.train.steps
    # restart with the same command; compare with an uninterrupted run
    assert main(argv) == 0
    assert "resuming" in capsys.readouterr().err
    reference = tmp_path / "reference"
    assert main(["train", "--config", str(cfg), "--out", str(reference), "--no-progress"]) == 0
    assert files(killed) == files(reference)
