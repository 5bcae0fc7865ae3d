"""Attribution figures from a small synthetic attributions.csv: PNGs written, identical input gives identical
bytes, missing columns and steps are input errors naming them."""

import numpy as np
import pytest

from spheres.core.errors import InputError
from spheres.core.io import write_csv_atomic
from spheres.plotting.attributions import ALIGNMENTS, draw_alignment, draw_bands


def _table(path, drop=()):
    rng = np.random.default_rng(0)
    rows = []
    for step in (10, 100, 1000):
        for member in (0, 1):
            row = {"member": member, "step": step, "bands": 3,
                   "off_distance": 0.1 + 0.01 * step ** 0.5, "off_distance_se": 0.01,
                   "spread_normal_spread": 0.01 / (1 + member), "spread_normal_spread_se": 0.001}
            for col, _ in ALIGNMENTS:
                row[col], row[f"{col}_se"] = float(rng.uniform(0.3, 1.0)), 0.02
            for j in range(3):
                row[f"band{j}_size"], row[f"band{j}_name"] = 2, f"alpha {j}"
                for rep in ("independent", "same_sphere"):
                    row[f"shapley_{rep}_band{j}"] = float(rng.normal())
                    row[f"shapley_{rep}_band{j}_se"] = 0.1
            rows.append({k: v for k, v in row.items() if k not in drop})
    write_csv_atomic(path, rows)
    return path


def test_figures_are_deterministic_pngs(tmp_path):
    table = _table(tmp_path / "attributions.csv")
    for draw in (draw_alignment, lambda t, o: draw_bands(t, o), lambda t, o: draw_bands(t, o, "same_sphere", 10)):
        a, b = draw(table, tmp_path / "a.png"), draw(table, tmp_path / "b.png")
        data = a.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data == b.read_bytes()


@pytest.mark.parametrize("column", ["off_grad_alignment_se", "spread_normal_spread"])
def test_missing_alignment_column_is_named(tmp_path, column):
    table = _table(tmp_path / "t.csv", drop=(column,))
    with pytest.raises(InputError, match=column):
        draw_alignment(table, tmp_path / "x.png")


def test_band_figure_errors_name_the_problem(tmp_path):
    table = _table(tmp_path / "t.csv", drop=("shapley_independent_band1_se",))
    with pytest.raises(InputError, match="shapley_independent_band1_se"):
        draw_bands(table, tmp_path / "x.png")
    with pytest.raises(InputError, match="step"):
        draw_bands(table, tmp_path / "x.png", "same_sphere", step=7)
    with pytest.raises(InputError, match="replacement"):
        draw_bands(table, tmp_path / "x.png", "zeros")
