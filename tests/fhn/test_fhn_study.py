"""The FitzHugh–Nagumo study (meanfield.studies.fitzhugh_nagumo) and the notebook file."""

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from meanfield.studies.fitzhugh_nagumo import fitzhugh_nagumo, plot

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "06-fitzhugh-nagumo.ipynb"


@pytest.fixture(scope="module")
def small_study():
    return fitzhugh_nagumo(el_gammas=(1.0, 4.0), ch_gammas=(30.0, 300.0), n=300, t_final=3.0,
                           dt=0.05, saves=31, pde_t_final=0.2, pde_dt=0.05, nv=12, nw=10,
                           pde_n=300, pde_seeds=4)


def test_study_dataset_holds_both_pictures(small_study):
    ds = small_study
    assert ds.attrs["study"] == "fitzhugh_nagumo"
    assert ds["el_mean_v"].shape == (2, 31)
    assert ds["ch_mean_v"].shape == (2, 31, 2)
    assert ds["pde_ch_mean_v"].shape == (5, 2)
    assert ds["pde_el_marginal_v"].shape == (1, 12)
    # chemical: v sits at the balance voltages, variance ∝ 1/γ
    v_star = np.array(json.loads(ds.attrs["balance_voltages"]))
    gap = np.abs(ds["ch_mean_v"][:, -1].values - v_star)  # (γ, population): v* + O(1/γ)
    assert np.all(gap[-1] < gap[0])
    assert np.all(gap[-1] < 0.05)
    assert np.all(np.abs(np.array(json.loads(ds.attrs["ch_var_slope"])) + 1.0) < 0.2)
    # electrical: the network mean gets closer to the ODE as γ grows
    assert ds["el_error"][1] < ds["el_error"][0]
    # network bands: seed-to-seed standard errors of the ensemble mean, positive and small
    for kind in ("el", "ch"):
        se = ds[f"net_{kind}_var_v_se"].values[1:]
        assert np.all(se > 0)
        assert np.all(se < 0.1 * ds[f"net_{kind}_var_v"].values[1:])
        assert np.all(np.isfinite(ds[f"pde_{kind}_var_v_error"].values))
    assert json.loads(ds.attrs["pde_grids"]) == {"el": [12, 10], "ch": [12, 10]}
    assert ds.attrs["pde_max_mass_error"] < 1e-12
    assert ds.attrs["pde_min_density"] >= -1e-14
    assert "use about nv=" in ds.attrs["pde_warnings"]  # 12×10 cells: said, not hidden
    # the marginals of the PDE and the histograms of the network are both probability densities
    for kind in ("el", "ch"):
        dv = float(ds[f"{kind}_v"][1] - ds[f"{kind}_v"][0])
        assert np.allclose(ds[f"pde_{kind}_marginal_v"].sum(axis=-1) * dv, 1.0)
        assert np.allclose(ds[f"net_{kind}_hist_v"].sum(axis=-1) * dv, 1.0, atol=0.02)


def test_every_panel_is_labelled(small_study):
    fig = plot(small_study)
    axes = fig.get_axes()
    assert len(axes) == 8
    for ax in axes:
        assert ax.get_xlabel()
        assert ax.get_ylabel()
        assert ax.get_title()


def test_study_rejects_bad_gammas():
    with pytest.raises(ValueError, match="el_gammas"):
        fitzhugh_nagumo(el_gammas=(4.0, 1.0))


def test_notebook_is_stored_without_outputs_and_in_order():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") and cell.get("execution_count") is None
               for cell in nb.cells if cell.cell_type == "code")
    headings = [cell.source.splitlines()[0] for cell in nb.cells
                if cell.cell_type == "markdown" and cell.source.startswith("## ")]
    assert headings == ["## Parameters", "## Model", "## Solve", "## Analyse", "## Plot"]
