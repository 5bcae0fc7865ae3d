"""``spheres quadratic`` through ``spheres.cli.main``: exact numbers, JSON contract, bad input."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from spheres.cli import main

KEYS = {"error_rate_inner", "error_rate_outer", "log10_error_rate_inner", "log10_error_rate_outer",
        "clt_error_rate_inner", "clt_error_rate_outer", "alphas_outside", "mean_distance", "mean_distance_se",
        "dim", "radius", "points"}


def _json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one object, one line
    return json.loads(out)


def test_two_level_spectrum_text_file(tmp_path, capsys):
    """150 alphas at 1.4, 350 at 0.7: inner error is an F tail (closed form); the outer sphere is
    error-free (every alpha >= 1/R^2)."""
    path = tmp_path / "alphas.txt"
    path.write_text(" ".join(["1.4"] * 150) + "\n" + "\n".join(["0.7"] * 350) + "\n")
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "40", "--seed", "3"])
    assert KEYS <= out.keys()
    assert (out["dim"], out["radius"], out["points"]) == (500, 1.3, 40)
    ref = stats.f.logsf(0.3 * 350 / (0.4 * 150), 150, 350) / math.log(10)
    assert out["log10_error_rate_inner"] == pytest.approx(ref, abs=1e-9)
    assert out["error_rate_inner"] == pytest.approx(10**ref, rel=1e-8)
    assert out["error_rate_outer"] == 0.0 and out["log10_error_rate_outer"] is None
    assert "log10_error_rate_outer" in out["notes"]
    assert out["alphas_outside"] == 150
    # the paper's estimate sits beside the exact value and differs from it (too low here)
    assert out["clt_error_rate_inner"] < 0.8 * out["error_rate_inner"]
    assert 0 < out["mean_distance"] < 2 and 0 < out["mean_distance_se"] < out["mean_distance"]


def test_npy_matches_text_and_seed_controls_points(tmp_path, capsys):
    alphas = np.linspace(0.3, 1.4, 30)
    np.save(tmp_path / "a.npy", alphas)
    (tmp_path / "a.txt").write_text("\n".join(repr(float(a)) for a in alphas))
    a = _json(capsys, ["quadratic", "--alphas", str(tmp_path / "a.npy"), "--points", "20"])
    b = _json(capsys, ["quadratic", "--alphas", str(tmp_path / "a.txt"), "--points", "20"])
    c = _json(capsys, ["quadratic", "--alphas", str(tmp_path / "a.txt"), "--points", "20", "--seed", "1"])
    assert a == b
    assert c["mean_distance"] != a["mean_distance"]
    assert c["error_rate_inner"] == a["error_rate_inner"]
    # two independent 20-point means of the same d(E) agree within their standard errors
    diff = abs(a["mean_distance"] - c["mean_distance"])
    assert diff < 5 * math.hypot(a["mean_distance_se"], c["mean_distance_se"])


def test_deep_tail_log10_stays_finite(tmp_path, capsys):
    """One alpha slightly above 1, the rest 0, d = 500: inner error ~1e-262 (Beta tail), far
    below what a float prints; log10 carries it."""
    from scipy import special

    path = tmp_path / "a.txt"
    path.write_text("1.1 " + "0 " * 499)
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "5"])
    ref = math.log10(special.betaincc(0.5, 249.5, 1 / 1.1))
    assert out["log10_error_rate_inner"] == pytest.approx(ref, abs=1e-8)
    assert out["alphas_outside"] == 500


def test_perfect_ellipsoid_reports_nulls_with_reasons(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text(" ".join(str(a) for a in np.linspace(0.6, 1.0, 50)))
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "3"])
    assert out["error_rate_inner"] == out["error_rate_outer"] == 0.0
    assert out["alphas_outside"] == 0
    assert out["mean_distance"] is None and out["mean_distance_se"] is None
    assert {"mean_distance", "mean_distance_se", "log10_error_rate_inner"} <= out["notes"].keys()
    # the CLT still claims errors: it is an estimate, reported as such
    assert out["clt_error_rate_inner"] > 0


def test_orientation_less_swaps_right_and_wrong(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text(" ".join(str(a) for a in np.linspace(0.3, 1.4, 20)))
    g = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "2"])
    less = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "2", "--orientation", "outer_if_less"])
    assert less["error_rate_inner"] == pytest.approx(1 - g["error_rate_inner"], abs=1e-12)
    assert less["error_rate_outer"] == pytest.approx(1 - g["error_rate_outer"], abs=1e-12)


def test_text_summary_labels_the_paper_estimate(tmp_path, capsys):
    path = tmp_path / "a.txt"
    path.write_text("1.2 0.5 0.8 0.9")
    assert main(["quadratic", "--alphas", str(path), "--points", "4"]) == 0
    out = capsys.readouterr().out
    assert "paper's estimate" in out and "exact" in out and "d(E)" in out


@pytest.mark.parametrize("content,flag", [
    (None, "--alphas"),                 # missing file
    ("", "--alphas"),                   # empty
    ("0.5", "--alphas"),                # d = 1
    ("0.5 nan 0.7", "--alphas"),        # non-finite
    ("0.5 inf", "--alphas"),
    ("0.5 -0.1 0.7", "--alphas"),       # negative
    ("0.5 abc", "--alphas"),            # not a number
])
def test_bad_alphas_exit_2_with_one_line(tmp_path, capsys, content, flag):
    path = tmp_path / "a.txt"
    if content is not None:
        path.write_text(content)
    assert main(["quadratic", "--alphas", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err


def test_bad_npy_files(tmp_path, capsys):
    np.save(tmp_path / "m.npy", np.ones((2, 3)))
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object))
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY not really")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x01")
    for name in ("m.npy", "o.npy", "junk.npy", "bin.txt"):
        assert main(["quadratic", "--alphas", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--alphas" in err


@pytest.mark.parametrize("flag,value", [("--radius", "1"), ("--radius", "0.9"), ("--radius", "nan"),
                                        ("--radius", "inf"), ("--points", "0"), ("--points", "-3"),
                                        ("--points", "2.5"), ("--seed", "-1")])
def test_bad_numbers_exit_2(tmp_path, capsys, flag, value):
    path = tmp_path / "a.txt"
    path.write_text("0.5 1.2")
    with pytest.raises(SystemExit) as exc:
        main(["quadratic", "--alphas", str(path), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err


def test_attack_is_graded_on_the_same_points(tmp_path, capsys):
    """The attack's distances are upper bounds of the exact ones, point by point, so its mean
    cannot fall below the exact mean (beyond float32 rounding); it should come close."""
    path = tmp_path / "a.txt"
    path.write_text(" ".join(str(a) for a in np.linspace(0.3, 1.4, 8)))
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "16", "--attack"])
    assert out["attack_failures"] == 0
    assert out["attack_mean_distance"] >= out["mean_distance"] - 1e-5
    assert out["attack_mean_distance"] == pytest.approx(out["mean_distance"], rel=0.02)
    assert out["attack_mean_distance_se"] > 0


@pytest.mark.slow
def test_splitting_estimates_sit_beside_the_exact_rates(tmp_path, capsys):
    """AMS intervals around the exact values; a sphere with no error region is not sampled."""
    path = tmp_path / "a.txt"
    path.write_text(" ".join(str(a) for a in np.linspace(0.7, 1.6, 6)))  # no alpha < 1/R^2
    out = _json(capsys, ["quadratic", "--alphas", str(path), "--points", "2", "--method", "splitting"])
    lo, hi = out["splitting_log10_ci_inner"]
    half = (hi - lo) / 2
    assert out["splitting_status_inner"] == "reached"
    assert abs(out["splitting_log10_error_rate_inner"] - out["log10_error_rate_inner"]) < 2 * half + 0.02
    assert out["error_rate_outer"] == 0.0
    assert out["splitting_status_outer"] == "not_run" and out["splitting_error_rate_outer"] is None
    assert "splitting_error_rate_outer" in out["notes"]
