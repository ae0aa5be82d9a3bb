"""The shared figure dispatcher: every study dataset gets its figure from ``ds.study.plot()``."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import meanfield as mf  # noqa: E402
from meanfield import studies  # noqa: E402
from meanfield.studies import plotting  # noqa: E402
from meanfield.studies.network import double_limit  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_limit() -> xr.Dataset:
    return double_limit(mf.models.chemical(), (0.0, 1.0), ns=(20, 80), seeds=(0,),
                        t_final=0.05, dt=5e-3)


def _png(figure: Figure, path) -> bytes:
    figure.savefig(path, dpi=40)
    return path.read_bytes()


def test_double_limit_plots_through_the_accessor(tiny_limit, tmp_path) -> None:
    figure = tiny_limit.study.plot()
    assert isinstance(figure, Figure)
    # one row of three panels per population, every panel labelled
    axes = figure.get_axes()
    assert len(axes) == 3 * 2
    assert all(ax.get_xlabel() == "agents per population n" and ax.get_title() for ax in axes)
    assert axes[0].get_xscale() == "log" and axes[0].get_yscale() == "log"
    assert figure.get_suptitle() == "double limit γ = γ(n), n → ∞"
    slopes = json.loads(tiny_limit.attrs["fitted_slopes"])["balance_residual"]
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == [f"{s}: slope {slopes[s]['E']:.2f}" for s in ("alpha=0", "alpha=1")]
    # the first panel shows ∫|h_E| dμ_n itself: γ = n pulls the agents to the balance manifold
    line = axes[0].get_lines()[1].get_ydata()
    np.testing.assert_array_equal(line, tiny_limit["balance_residual"].values[1, :, 0])
    assert line[1] < line[0] / 3
    data = _png(figure, tmp_path / "double_limit.png")
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    assert isinstance(studies.plot(tiny_limit), Figure)
    plotting.close(figure)


def test_fitzhugh_nagumo_plots_through_the_accessor(tmp_path) -> None:
    from meanfield.studies.fitzhugh_nagumo import fitzhugh_nagumo

    ds = fitzhugh_nagumo(el_gammas=(1.0, 4.0), ch_gammas=(30.0, 300.0), n=100, t_final=2.0,
                         dt=0.05, saves=11, pde_t_final=0.2, pde_dt=0.1, nv=8, nw=8, pde_n=200)
    figure = ds.study.plot()
    assert isinstance(figure, Figure) and len(figure.get_axes()) == 8
    assert figure.get_axes()[0].get_title() == "electrical: the mean follows the ODE"
    assert _png(figure, tmp_path / "fhn.png")[:8] == PNG_SIGNATURE
    plotting.close(figure)


def test_truncation_study_layout_plots_through_the_accessor(tmp_path) -> None:
    import matplotlib.pyplot as plt

    gam = np.array([1e2, 1e3])
    err = np.array([[[1e-2, 2e-2], [1e-3, 2e-3]]])
    ds = xr.Dataset({"mean_error": (("order", "gamma", "population"), err),
                     "var_error": (("order", "gamma", "population"), err / 10)},
                    coords={"order": [0], "gamma": gam, "population": ["E", "I"]},
                    attrs={"study": "rescaled_truncation", "parameters": json.dumps({"tau": 2.0}),
                           "fitted_slopes": json.dumps({"mean_K0_E": -1.0})})
    figure = ds.study.plot()
    assert isinstance(figure, Figure) and len(figure.get_axes()) == 2
    assert _png(figure, tmp_path / "truncation.png")[:8] == PNG_SIGNATURE
    plt.close(figure)  # that module draws with pyplot


def test_network_convergence_keeps_the_convergence_figure(tmp_path) -> None:
    from meanfield.studies.network import network_convergence

    ds = network_convergence(mf.models.linear_ou(), 5.0, ns=(100, 400), seeds=(0,),
                             t_final=0.05, dt=5e-3, cells=200)
    figure = ds.study.plot(title="W1 to the PDE")
    assert isinstance(figure, Figure) and figure.get_suptitle() == "W1 to the PDE"
    assert [ax.get_title() for ax in figure.get_axes()] == ["w1", "mean", "var"]
    assert figure.get_axes()[0].get_xlabel() == "agents per population n"
    assert _png(figure, tmp_path / "network.png")[:8] == PNG_SIGNATURE
    plotting.close(figure)


def test_bad_datasets_rejected(tiny_limit) -> None:
    with pytest.raises(ValueError, match=r"kwargs=\['title'\] is not allowed: no options: the "
                                         "double_limit figure takes none"):
        tiny_limit.study.plot(title="x")
    with pytest.raises(TypeError, match="ds has type dict"):
        plotting.plot({"study": "double_limit"})
    with pytest.raises(ValueError, match=r"ds=\[\] is not allowed: a study dataset \(study "
                                         "double_limit, fitzhugh_nagumo, rescaled_truncation"):
        plotting.plot(xr.Dataset(attrs={"study": "unknown"}))
    with pytest.raises(ValueError, match="ds='double_limit' is not allowed: a convergence study"):
        tiny_limit.study.slopes()
