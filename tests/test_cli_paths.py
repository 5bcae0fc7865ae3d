"""Unwritable output paths: every command that writes says which path and why, exits 2, writes nothing."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from spheres.cli import main
from spheres.cli._common import check_output_dir
from spheres.core.errors import InputError
from spheres.nets import runs
from spheres.nets.config import config_from_dict

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "experiments" / "configs" / "quick.toml"

TINY = {"task": {"dim": 3}, "model": {"arch": "relu", "width": 4, "depth": 1, "batch_norm": True},
        "train": {"steps": 40, "batch_size": 8, "learning_rates": [0.01], "train_sizes": [0, 16],
                  "seeds": [0, 1], "checkpoints": 4, "chunk_steps": 9}}


def _writable(path: Path) -> bool:
    try:
        (path / "probe").mkdir()
    except OSError:
        return False
    (path / "probe").rmdir()
    return True


@pytest.fixture
def readonly(tmp_path):
    """A folder nobody (root included) can write to: mode 0555, or immutable when running as root."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    if _writable(folder) and shutil.which("chattr"):
        immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    if _writable(folder):
        folder.chmod(0o755)
        pytest.skip("cannot make a read-only folder here (root without CAP_LINUX_IMMUTABLE)")
    yield folder
    if immutable:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    folder.chmod(0o755)


def _one_line_error(capsys, argv, *needles):
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_train_out_under_a_readonly_folder(capsys, readonly):
    out = readonly / "run"
    line = _one_line_error(capsys, ["train", "--config", str(QUICK), "--out", str(out), "--quiet"],
                           "spheres train: error: --out", str(out), "permission denied")
    assert "read-only or immutable" in line
    assert list(readonly.iterdir()) == []


def test_train_out_in_proc(capsys):
    _one_line_error(capsys, ["train", "--config", str(QUICK), "--out", "/proc/x", "--quiet"],
                    "--out", "'/proc/x'", "does not allow creating")
    assert not Path("/proc/x").exists()


def test_demo_out_is_a_file(capsys, tmp_path):
    target = tmp_path / "figures.png"
    target.write_bytes(b"not a folder")
    _one_line_error(capsys, ["demo", "--out", str(target)], "spheres demo: error: --out", str(target),
                    "is a file, not a directory")
    assert target.read_bytes() == b"not a folder" and list(tmp_path.iterdir()) == [target]
    _one_line_error(capsys, ["demo", "--out", str(target / "sub")], "is a file, not a directory")


def test_demo_and_reproduce_under_a_readonly_folder(capsys, readonly):
    _one_line_error(capsys, ["demo", "--out", str(readonly / "figs")], "--out", "permission denied")
    _one_line_error(capsys, ["reproduce", "--quick", "--out", str(readonly / "r")], "--out", "permission denied")
    _one_line_error(capsys, ["reproduce", "--quick", "--out", str(readonly.parent / "r"), "--figures",
                             str(readonly / "f")], "--figures", "permission denied")
    assert list(readonly.iterdir()) == [] and not (readonly.parent / "r").exists()


def test_measure_a_readonly_run(capsys, tmp_path):
    run_dir = tmp_path / "run"
    runs.run_training(config_from_dict(TINY), run_dir, progress=False)
    before = sorted(p.name for p in run_dir.iterdir())
    run_dir.chmod(0o555)
    immutable = False
    try:
        if _writable(run_dir):
            immutable = subprocess.run(["chattr", "+i", str(run_dir)], capture_output=True).returncode == 0
        if _writable(run_dir):
            pytest.skip("cannot make a read-only folder here")
        _one_line_error(capsys, ["measure", str(run_dir), "--mc-samples", "100", "--attack-points", "2"],
                        "spheres measure: error: RUN_DIR", str(run_dir / "measure"), "permission denied")
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(run_dir)], check=True)
        run_dir.chmod(0o755)
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_check_output_dir_writes_nothing(tmp_path):
    assert check_output_dir(tmp_path / "a" / "b", "--out") == tmp_path / "a" / "b"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InputError, match="broken symbolic link"):
        check_output_dir(tmp_path / "link" / "x", "--out")
    assert os.listdir(tmp_path) == ["link"]
