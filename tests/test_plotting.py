"""Result figures: drawn from saved files, byte-identical for identical input, clear errors on bad input,
and the small pure pieces they rely on (collapse coordinates, the above-the-bound check, the alpha band)."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from spheres.maths import theory
from spheres.maths.analysis import cap_profile
from spheres.core.errors import InputError
from spheres.core.io import write_csv_atomic, write_json_atomic
from spheres.plotting import dimsweep, quadratic, slices, tradeoff
from spheres.plotting.dimsweep import (collapse_coordinates, draw_dimsweep, jitter_width, model_families,
                                       seed_jitter)
from spheres.plotting.quadratic import band_membership, draw_alphas
from spheres.plotting.slices import draw_slices
from spheres.plotting.tradeoff import draw_tradeoff

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- synthetic inputs
# Deterministic, cap-like tables: d(E) a fixed fraction of the exact bound, error rates log-spaced.

@functools.cache
def _tradeoff_table(dim: int = 100) -> tuple[dict, ...]:
    rows = []
    for m, (model, frac) in enumerate((("quad-w1000", 0.9), ("relu-w1000-d2", 0.7))):
        for n in (0, 100, 10_000):
            for k, step in enumerate((10, 100, 1000)):
                mu = float(10.0 ** (-0.5 - 1.5 * k - 0.3 * m))
                opt = float(theory.mean_distance_to_cap(mu, dim))
                mu_o = float(10.0 ** (-1 - 1.2 * k - 0.5 * m))
                opt_o = 1.3 * float(theory.mean_distance_to_cap(mu_o, dim))
                rows.append(dict(model=model, dim=dim, seed=0, train_size=n, step=step, outer_radius=1.3,
                                 selected=int(k > 0), mu=mu, mu_lower=mu / 2,
                                 mu_upper=min(2 * mu, 0.99), mu_method="monte_carlo", distance=frac * opt,
                                 distance_se=0.01 * opt, distance_failures=int(k == 2), optimal_distance=opt,
                                 consistent_with_bound=1, mu_outer=mu_o, mu_outer_lower=mu_o / 2,
                                 mu_outer_upper=2 * mu_o, distance_outer=frac * opt_o, distance_outer_se=0.01 * opt_o,
                                 distance_outer_failures=int(k == 1), consistent_outer=1))
    rows[1]["mu"] = None  # unmeasurable: left off and counted
    rows.append(dict(rows[2], step=2000, mu=0.0, mu_lower=0.0, mu_upper=1e-4))  # no error seen: an arrow
    return tuple(rows)


def _tradeoff_rows() -> list[dict]:
    return [dict(r) for r in _tradeoff_table()]


@functools.cache
def _dimsweep_table() -> tuple[dict, ...]:
    rows = []
    for model, frac in (("quad-w{dim}", 0.9), ("relu-w1000-d2", 0.7)):
        for dim in (16, 64, 256):
            for seed in (0, 1):
                for k, step in enumerate((100, 1000)):
                    mu = float(10.0 ** (-1 - 2 * k - seed))
                    opt = float(theory.mean_distance_to_cap(mu, dim))
                    rows.append(dict(model=model.format(dim=dim), family=model, dim=dim, seed=seed, step=step, mu=mu, mu_lower=mu / 2,
                                     mu_upper=2 * mu, distance=frac * opt, distance_se=0.02 * opt,
                                     distance_failures=int(dim == 64 and seed == 1), optimal_distance=opt, ratio=frac,
                                     selected=int(k == 1 or seed == 0)))
    return tuple(rows)


def _dimsweep_rows() -> list[dict]:
    return [dict(r) for r in _dimsweep_table()]


FIT = {"families": {"quad-w{dim}": {"law": {"slope": 0.01, "slope_se": 0.02, "z": 0.5, "n": 6}, "matched": []},
                    "relu-w1000-d2": {"law": {"slope": -0.04, "slope_se": 0.02, "z": -2.0, "n": 6}, "matched": []}}}
ALPHAS = np.linspace(0.3, 1.3, 50)
SUMMARY = {"radius": 1.3, "alphas_outside": int(np.sum(~band_membership(ALPHAS, 1.3))), "dim": 50,
           "exact_mu_inner": 3.1e-5, "exact_mu_outer": 2.2e-8, "clt_mu_inner": 2.2e-5, "clt_mu_outer": 1.4e-6,
           "exact_mean_distance": 0.16, "train_size": 1000, "steps": 500}


def _slice_arrays() -> dict[str, np.ndarray]:
    coords = np.linspace(-1.6, 1.6, 41)
    s, t = np.meshgrid(coords, coords)
    out = {"radius": np.array(1.3)}
    for k in range(3):
        out[f"coords_{k}"] = coords
        out[f"logits_{k}"] = np.hypot(s, t) - 1.15 + 0.1 * k * np.exp(-((s - 1) ** 2 + t**2) / 0.02)
        out[f"title_{k}"] = np.array(f"plane {k}")
    out["points_1"] = np.array([[1.0, 0.0], [1.0, 0.1]])
    return out


@pytest.fixture
def inputs(tmp_path):
    p = {
        "tradeoff": write_csv_atomic(tmp_path / "tradeoff.csv", _tradeoff_rows()),
        "dimsweep": write_csv_atomic(tmp_path / "dimsweep.csv", _dimsweep_rows()),
        "fit": write_json_atomic(tmp_path / "fit.json", FIT),
        "alphas": write_csv_atomic(tmp_path / "alphas.csv", [{"alpha": float(a)} for a in ALPHAS]),
        "summary": write_json_atomic(tmp_path / "summary.json", SUMMARY),
        "slices": tmp_path / "slices.npz",
    }
    np.savez(p["slices"], **_slice_arrays())
    return p


def _draw_all(p, out) -> list:
    return (draw_tradeoff(p["tradeoff"], out / "tradeoff.png")
            + draw_dimsweep(p["dimsweep"], p["fit"], out / "collapse.png", out / "ratio.png")
            + draw_alphas(p["alphas"], p["summary"], out / "alphas.png")
            + draw_slices(p["slices"], out / "slices.png"))


# ----------------------------------------------------------------------------- the figures

def test_every_figure_is_a_png_and_identical_input_gives_identical_bytes(inputs, tmp_path):
    first = _draw_all(inputs, tmp_path / "a")
    second = _draw_all(inputs, tmp_path / "b")
    assert [p.name for p in first] == ["tradeoff.png", "collapse.png", "ratio.png", "alphas.png", "slices.png"]
    for a, b in zip(first, second):
        data = a.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 20_000, a.name
        assert data == b.read_bytes(), f"{a.name} differs between two draws of the same input"
    # nothing but the figures (no temporary files left behind by the atomic writes)
    assert sorted(q.name for q in (tmp_path / "a").iterdir()) == sorted(p.name for p in first)
    # and the bytes do depend on the data
    rows = _tradeoff_rows()
    rows[0]["distance"] *= 0.5
    other = draw_tradeoff(write_csv_atomic(tmp_path / "other.csv", rows), tmp_path / "other.png")[0]
    assert other.read_bytes() != first[0].read_bytes()


# ----------------------------------------------------------------------------- bad input

_DRAWERS = {
    "tradeoff": lambda p, o: draw_tradeoff(p["tradeoff"], o / "t.png"),
    "dimsweep": lambda p, o: draw_dimsweep(p["dimsweep"], p["fit"], o / "c.png", o / "r.png"),
    "fit": lambda p, o: draw_dimsweep(p["dimsweep"], p["fit"], o / "c.png", o / "r.png"),
    "alphas": lambda p, o: draw_alphas(p["alphas"], p["summary"], o / "a.png"),
    "summary": lambda p, o: draw_alphas(p["alphas"], p["summary"], o / "a.png"),
    "slices": lambda p, o: draw_slices(p["slices"], o / "s.png"),
}


@pytest.mark.parametrize("which", sorted(_DRAWERS))
def test_a_missing_file_is_an_input_error_naming_it(inputs, tmp_path, which):
    inputs[which] = tmp_path / f"missing_{which}.bin"
    with pytest.raises(InputError, match=f"missing_{which}.bin: .*not found"):
        _DRAWERS[which](inputs, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize("draw, column", [
    (lambda p, o: draw_tradeoff(p, o / "t.png"), "distance"),
    (lambda p, o: draw_tradeoff(p, o / "t.png"), "mu_upper"),
    (lambda p, o: draw_dimsweep(p, o / "fit.json", o / "c.png", o / "r.png"), "optimal_distance"),
])
def test_a_missing_column_is_an_input_error_naming_file_and_column(tmp_path, draw, column):
    rows = _tradeoff_rows() if column != "optimal_distance" else _dimsweep_rows()
    for r in rows:
        del r[column]
    path = write_csv_atomic(tmp_path / "table.csv", rows)
    write_json_atomic(tmp_path / "fit.json", FIT)
    with pytest.raises(InputError, match=rf"table\.csv: column '{column}'"):
        draw(path, tmp_path)


def test_alphas_bad_inputs(tmp_path, inputs):
    wrong = write_csv_atomic(tmp_path / "wrong.csv", [{"beta": 1.0}])
    with pytest.raises(InputError, match=r"wrong\.csv: column 'alpha'"):
        draw_alphas(wrong, inputs["summary"], tmp_path / "x.png")
    summary = dict(SUMMARY)
    del summary["clt_mu_outer"]
    s = write_json_atomic(tmp_path / "s.json", summary)
    with pytest.raises(InputError, match=r"s\.json: key 'clt_mu_outer'"):
        draw_alphas(inputs["alphas"], s, tmp_path / "x.png")
    s = write_json_atomic(tmp_path / "r.json", dict(SUMMARY, radius=0.9))
    with pytest.raises(InputError, match=r"r\.json: key 'radius'"):
        draw_alphas(inputs["alphas"], s, tmp_path / "x.png")


def test_non_numbers_and_mixed_dimensions_are_input_errors(tmp_path):
    rows = _tradeoff_rows()
    rows[3]["distance"] = "oops"
    bad = write_csv_atomic(tmp_path / "bad.csv", rows)
    with pytest.raises(InputError, match=r"bad\.csv: column 'distance'.*row 4"):
        draw_tradeoff(bad, tmp_path / "x.png")
    rows = _tradeoff_rows()
    rows[0]["dim"] = 7
    mixed = write_csv_atomic(tmp_path / "mixed.csv", rows)
    with pytest.raises(InputError, match=r"mixed\.csv: column 'dim'"):
        draw_tradeoff(mixed, tmp_path / "x.png")


def test_fit_json_without_families_is_an_input_error(tmp_path, inputs):
    fit = write_json_atomic(tmp_path / "fit2.json", {"models": FIT["families"]})
    with pytest.raises(InputError, match=r"fit2\.json: key 'families'"):
        draw_dimsweep(inputs["dimsweep"], fit, tmp_path / "c.png", tmp_path / "r.png")


@pytest.mark.parametrize("drop", ["radius", "coords_0", "title_0"])
def test_slices_missing_key_is_an_input_error(tmp_path, drop):
    arrays = _slice_arrays()
    del arrays[drop]
    np.savez(tmp_path / "s.npz", **arrays)
    with pytest.raises(InputError, match=rf"s\.npz: key '{drop}'"):
        draw_slices(tmp_path / "s.npz", tmp_path / "x.png")


def test_slices_wrong_shape_is_an_input_error(tmp_path):
    arrays = _slice_arrays()
    arrays["logits_2"] = arrays["logits_2"][:, :-1]
    np.savez(tmp_path / "s.npz", **arrays)
    with pytest.raises(InputError, match=r"s\.npz: key 'logits_2'.*\(41, 41\)"):
        draw_slices(tmp_path / "s.npz", tmp_path / "x.png")


def test_empty_table_is_an_input_error(tmp_path):
    (tmp_path / "empty.csv").write_text("model,dim\n")
    with pytest.raises(InputError, match=r"empty\.csv.*no rows"):
        draw_tradeoff(tmp_path / "empty.csv", tmp_path / "x.png")


def test_plotting_modules_do_not_use_pyplot():
    for mod in (tradeoff, dimsweep, quadratic, slices):
        with open(mod.__file__, encoding="utf-8") as fh:
            source = fh.read()
        assert "pyplot" not in source, mod.__name__


# ----------------------------------------------------------------------------- the mathematics they draw

@pytest.mark.parametrize("mu", [0.3, 1e-2, 1e-6])
def test_caps_collapse_onto_the_large_d_profile_at_rate_one_over_d(mu):
    """d(cap) sqrt(d) - (c Phi(c) + phi(c)) is O(1/d): its product with d settles to a constant, and
    the collapse coordinate c is Phi^{-1}(1 - mu)."""
    dims = np.array([500, 5000, 50000])
    mus = np.full(3, mu)
    c, y = collapse_coordinates(mus, theory.mean_distance_to_cap(mus, dims), dims)
    np.testing.assert_allclose(c, theory.asymptotic_distance(mus, dims) * np.sqrt(dims), rtol=1e-12)
    gap_times_d = (y - cap_profile(mus)) * dims
    assert abs(gap_times_d[2] - gap_times_d[1]) < 0.03 * abs(gap_times_d[2])
    assert abs(gap_times_d[1] - gap_times_d[0]) < 0.3 * abs(gap_times_d[2])


def test_seed_jitter_is_centred_distinct_and_within_its_width():
    n_seeds, n_models, width = 3, 2, 0.1
    s, m = np.meshgrid(np.arange(n_seeds), np.arange(n_models))
    decades = np.log10(seed_jitter(s.ravel(), n_seeds, m.ravel(), n_models, width))
    assert np.unique(decades).size == n_seeds * n_models
    assert abs(decades.mean()) < 1e-12
    np.testing.assert_allclose([decades.min(), decades.max()], [-width / 2, width / 2], rtol=1e-12)


def test_jitter_never_makes_neighbouring_dimensions_overlap():
    for dims in ([16, 32, 64], [6, 10], [100, 101], [500]):
        w = jitter_width(np.array(dims), 3)
        assert 0 < w <= 3 * dimsweep.JITTER_DECADES
        if len(dims) > 1:
            assert w < np.min(np.diff(np.log10(dims)))  # the spreads of neighbours are disjoint


def test_band_membership_is_the_closed_interval_from_one_over_r_squared_to_one():
    r = 1.3
    lo = 1 / r**2
    alpha = np.array([lo, np.nextafter(lo, 0), 1.0, np.nextafter(1.0, 2), 0.0, -0.5, 0.8])
    assert band_membership(alpha, r).tolist() == [True, False, True, False, False, False, True]


def test_summary_json_is_read_without_evaluation(tmp_path, inputs):
    """A string where a number belongs is rejected, not evaluated."""
    s = tmp_path / "evil.json"
    s.write_text(json.dumps(dict(SUMMARY, exact_mu_inner="__import__('os')")))
    with pytest.raises(InputError, match=r"evil\.json: key 'exact_mu_inner'"):
        draw_alphas(inputs["alphas"], s, tmp_path / "x.png")


def test_models_whose_name_changes_with_d_are_one_family():
    rows = _dimsweep_rows()
    fams = model_families(rows)
    assert set(fams) == {"quad-w{dim}", "relu-w1000-d2"}
    assert {r["model"] for r in rows if r["family"] == "quad-w{dim}"} == {"quad-w16", "quad-w64", "quad-w256"}
    for r in rows:
        del r["family"]
    assert set(model_families(rows)) == {"quad-w16", "quad-w64", "quad-w256", "relu-w1000-d2"}


def test_wrapped_notes_never_split_a_mathtext_span():
    from spheres.plotting._common import wrap

    note = "Not shown: 6 of 16 rows without a measured $0 < \\mu(E) < 1$ and d(E). " * 5
    lines = wrap(note, 37).splitlines()
    assert len(lines) > 5
    assert all(line.count("$") % 2 == 0 for line in lines)
    assert " ".join(lines) == note.strip()
