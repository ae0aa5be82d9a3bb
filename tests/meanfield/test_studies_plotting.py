"""The shared figure dispatcher: every study dataset gets its figure from ``ds.study.plot()``."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import xarray as xr
from layout_checks import assert_clean_layout, line_times  # tests/meanfield
from matplotlib.figure import Figure

import meanfield as mf
import solvers
from meanfield import (
    demo,
    studies,
)
from meanfield.studies import (
    plotting,
    plotting_states,
    plotting_transient,
)
from meanfield.studies.convergence import stationary_predictions
from meanfield.studies.network import double_limit

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
    assert axes[0].get_xscale() == "log"
    assert axes[0].get_yscale() == "log"
    assert figure.get_suptitle() == "double limit γ = γ(n), n → ∞"
    slopes = json.loads(tiny_limit.attrs["fitted_slopes"])["balance_residual"]
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == [f"{s}: slope {slopes[s]['E']:.2f}" for s in ("alpha=0", "alpha=1")]
    # the first panel shows ∫|h_E| dμ_n itself: γ = n pulls the agents to the balance manifold
    line = axes[0].get_lines()[1].get_ydata()
    np.testing.assert_array_equal(line, tiny_limit["balance_residual"].values[1, :, 0])
    assert line[1] < line[0] / 3
    assert_clean_layout(figure)
    data = _png(figure, tmp_path / "double_limit.png")
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 1000
    assert isinstance(studies.plot(tiny_limit), Figure)
    plotting.close(figure)


def test_fitzhugh_nagumo_plots_through_the_accessor(tmp_path) -> None:
    from meanfield.studies.fitzhugh_nagumo import fitzhugh_nagumo

    ds = fitzhugh_nagumo(el_gammas=(1.0, 4.0), ch_gammas=(30.0, 300.0), n=100, t_final=2.0,
                         dt=0.05, saves=11, pde_t_final=0.2, pde_dt=0.1, nv=8, nw=8, pde_n=200)
    figure = ds.study.plot()
    assert isinstance(figure, Figure)
    assert len(figure.get_axes()) == 8
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
    assert isinstance(figure, Figure)
    assert len(figure.get_axes()) == 2
    assert _png(figure, tmp_path / "truncation.png")[:8] == PNG_SIGNATURE
    plt.close(figure)  # that module draws with pyplot


def test_network_convergence_keeps_the_convergence_figure(tmp_path) -> None:
    from meanfield.studies.network import network_convergence

    ds = network_convergence(mf.models.linear_ou(), 5.0, ns=(100, 400), seeds=(0,),
                             t_final=0.05, dt=5e-3, cells=200)
    figure = ds.study.plot(title="W1 to the PDE")
    assert isinstance(figure, Figure)
    assert figure.get_suptitle() == "W1 to the PDE"
    assert [ax.get_title() for ax in figure.get_axes()] == ["w1", "mean", "var"]
    assert figure.get_axes()[0].get_xlabel() == "agents per population n"
    assert_clean_layout(figure)
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


# ----------------------------------------------------------------- figures a paper would print
CB_SAFE = set(plotting.OKABE_ITO) | {"k", "0.3", "0.4", "0.5", "white"}


@pytest.fixture(scope="module")
def chemical_predictions() -> dict:
    return stationary_predictions(mf.models.chemical())


@pytest.fixture(scope="module")
def fast_transient():
    """γ = 1000 from the model's initial density through the initial layer (coarse on purpose)."""
    import warnings

    model = mf.models.chemical()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 200 cells do not resolve the final width
        return solvers.solve(model, gamma=1000.0, t_final=0.02, cells=200,
                             save_at=demo.transient_times(1000.0, 0.02))


def test_log_times_cover_the_initial_layer() -> None:
    times = plotting_transient.log_times(1000.0, 1.0)
    assert times[0] == 0.0
    assert times[-1] == 1.0
    np.testing.assert_allclose(times[1], 1e-4)
    np.testing.assert_allclose(np.diff(np.log10(times[1:])), 0.25)  # 4 a decade
    assert np.count_nonzero((times > 0) & (times < 5e-3)) == 7
    with pytest.raises(ValueError, match=r"gamma=-1\.0 is not allowed"):
        plotting_transient.log_times(-1.0, 1.0)


def test_frames_keep_every_time_or_say_which() -> None:
    t = np.array([0.0, 0.05, 0.2, 0.5, 1.0, 2.0])
    index, note = plotting_transient.frames(t, 14)
    assert index.tolist() == list(range(6))
    assert note is None
    index, note = plotting_transient.frames(np.linspace(0, 1, 101), 5)
    assert index.tolist() == [0, 25, 50, 75, 100]
    assert note == "showing 5 of 101 saved times, evenly spread"


def test_demo_transient_figure_shows_the_initial_layer(fast_transient, chemical_predictions,
                                                       tmp_path) -> None:
    figure = demo.transient_figure(fast_transient, chemical_predictions["v"])
    assert_clean_layout(figure)
    snapshots = figure.get_axes()[0]
    layer = [(t, y) for t, y in line_times(snapshots) if 0 < t < 5 / 1000.0]
    distinct = [y for k, (_, y) in enumerate(layer)
                if all(not np.allclose(y, z, equal_nan=True, rtol=1e-3) for _, z in layer[:k])]
    assert len(distinct) >= 4, [t for t, _ in layer]
    # every saved time is drawn (none dropped silently)
    assert [t for t, _ in line_times(snapshots)] == pytest.approx(fast_transient.t.tolist(),
                                                                  rel=0.05)  # labels: 2 digits
    written = plotting.save(figure, tmp_path / "transient", formats=("png", "pdf"))
    assert [p.suffix for p in written] == [".png", ".pdf"]
    assert written[0].read_bytes()[:8] == PNG_SIGNATURE
    assert written[1].read_bytes()[:5] == b"%PDF-"
    plotting.close(figure)


def test_transient_figure_of_a_dataset_draws_all_requested_times(fast_transient) -> None:
    ds = fast_transient.to_xarray().isel(t=[0, 2, 4, 6, 8])
    figure = plotting.plot(ds, name="chemical")
    axes = figure.get_axes()
    assert "chemical" in figure.get_suptitle()
    assert "γ = 1000" in figure.get_suptitle()
    assert len(line_times(axes[0])) == 5
    # panels: snapshots, log-density image (+ colorbar), mean ± sd, per population
    assert [ax.get_xscale() for ax in axes[:3]] == ["linear", "log", "log"]
    assert_clean_layout(figure)
    many = fast_transient.to_xarray()
    figure = plotting_transient.transient_figure(many, max_frames=4)
    assert figure.legends[0].get_title().get_text() == \
        f"showing 4 of {many.sizes['t']} saved times, evenly spread"
    assert_clean_layout(figure)
    with pytest.raises(ValueError, match=r"balance=.* is not allowed: 2 balance voltages"):
        plotting_transient.transient_figure(many, balance=[0.0])


@pytest.fixture(scope="module")
def bistable_states():
    return solvers.stationary_states(mf.models.chemical_single(), gamma=2.5, cells=150)


def test_stationary_figure_dashes_the_unstable_state(bistable_states) -> None:
    assert [s.stable for s in bistable_states] == [True, False, True]
    figure = plotting_states.stationary_figure(bistable_states, name="chemical_single")
    assert_clean_layout(figure)
    (ax,) = figure.get_axes()
    lines = [line for line in ax.get_lines() if line.get_label().startswith("state")]
    assert [line.get_linestyle() for line in lines] == ["-", "--", "-"]
    assert "state 1, unstable" in lines[1].get_label()
    assert {line.get_color() for line in lines} <= CB_SAFE
    assert figure.get_suptitle().startswith("chemical_single: stationary states at γ = 2.5")
    plotting.close(figure)


def test_stationary_dataset_of_the_command_line_keeps_stability(bistable_states) -> None:
    from meanfield.studies.tasks import stationary_dataset

    ds = stationary_dataset(bistable_states, mf.models.chemical_single())
    figure = plotting.plot(ds, name="chemical_single")
    labels = [t.get_text() for t in figure.get_axes()[0].get_legend().get_texts()]
    assert [lab.split(" (")[0] for lab in labels] == ["state 0, stable", "state 1, unstable",
                                                       "state 2, stable"]
    assert_clean_layout(figure)


def test_bifurcation_figure_marks_folds() -> None:
    model = mf.models.chemical_single()
    branches = solvers.continuation(model, np.linspace(1.5, 3.5, 21), cells=100)
    figure = plotting_states.bifurcation_figure(branches, name="chemical_single")
    assert_clean_layout(figure)
    (ax,) = figure.get_axes()
    styles = {line.get_linestyle() for line in ax.get_lines() if len(line.get_xdata()) > 1}
    assert {"-", "--"} <= styles  # stable and unstable parts
    folds = [line for line in ax.get_lines() if line.get_marker() == "x"]
    # the model is bistable between γ ≈ 1.9 and 3.1 (models.chemical_single): two folds
    assert len(folds) == 2
    assert sorted(float(np.ravel(f.get_xdata())[0]) for f in folds) == pytest.approx(
        [1.95, 3.1], abs=0.1)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["stable", "unstable", "fold"]
    with pytest.raises(ValueError, match="quantity='skew' is not allowed"):
        plotting_states.bifurcation_figure(branches, quantity="skew")


def test_collapse_figure_approaches_the_gaussian(chemical_predictions) -> None:
    model = mf.models.chemical()
    pred = chemical_predictions
    shown = {}
    for gamma in (10.0, 1000.0):
        states = solvers.stationary_states(model, gamma=gamma, cells=1500, stability=False)
        state = min(states, key=lambda s: np.abs(s.mean - pred["v"]).max())
        shown[gamma] = (state.x, state.rho)
    figure = plotting_states.collapse_figure(shown, v=pred["v"], A=pred["A"], D=pred["D"],
                                             names=model.names, name="chemical")
    assert_clean_layout(figure)
    ax = figure.get_axes()[0]
    (coarse, fine, gaussian) = ax.get_lines()[:3]

    def gap(line):
        z, q = line.get_xdata(), line.get_ydata()
        return np.max(np.abs(q - np.interp(z, gaussian.get_xdata(), gaussian.get_ydata())))

    # the rescaled density tends to N(0, D/A) with a gap ~ γ^(-1/2) (its shift μ/√γ): a factor
    # √100 = 10 from γ = 10 to γ = 1000
    assert 0.07 < gap(fine) / gap(coarse) < 0.15
    assert gap(fine) < 0.03
    assert ax.get_xlabel() == "rescaled voltage √γ (x − v_E)"


def test_convergence_figure_marks_unresolved_points(chemical_predictions) -> None:
    ds = studies.gamma_convergence(mf.models.chemical(), [10.0, 100.0, 1000.0], cells=800)
    assert ds["resolved"].values.all()  # 800 cells resolve gamma = 1000 (300 would not)
    figure = plotting.convergence_figure(ds, name="chemical")
    assert "unresolved (excluded from fit)" not in [
        t.get_text() for t in figure.get_axes()[0].get_legend().get_texts()]
    assert_clean_layout(figure)
    flagged = ds.assign(resolved=("gamma", np.array([True, True, False])))
    figure = plotting.convergence_figure(flagged, name="chemical")
    assert_clean_layout(figure)
    ax = figure.get_axes()[0]
    assert "unresolved (excluded from fit)" in [t.get_text() for t in ax.get_legend().get_texts()]
    hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
    assert [float(line.get_xdata()[0]) for line in hollow] == [1000.0, 1000.0]
    # the predicted line goes through the best-resolved point (γ = 100), not the hollow one
    guide = next(line for line in ax.get_lines() if line.get_label().startswith("predicted"))
    errors = ds["errors"].sel(quantity="mean", gamma=100.0).values
    np.testing.assert_allclose(guide.get_ydata()[1], np.exp(np.log(errors).mean()), rtol=1e-12)


def test_concentration_figure_layout(chemical_predictions) -> None:
    model = mf.models.chemical()
    shown = {}
    for gamma in (1.0, 100.0):
        state = solvers.stationary_states(model, gamma=gamma, cells=400, stability=False)[0]
        shown[gamma] = (state.x, state.rho)
    figure = plotting.concentration_figure(shown, model.names, balance=chemical_predictions["v"])
    assert_clean_layout(figure)


def test_save_rejects_unknown_formats(tmp_path) -> None:
    figure = Figure()
    with pytest.raises(ValueError, match=r"formats=\('svg',\) is not allowed: a non-empty "
                                         "sequence of png, pdf"):
        plotting.save(figure, tmp_path / "x", formats=("svg",))


def test_bifurcation_figure_marks_unresolved_states_hollow() -> None:
    """#13: continuation states a grid does not resolve are hollow and named in the legend."""
    model = mf.models.linear_ou()
    with pytest.warns(mf.ResolutionWarning, match=r"concentration width.*cells=\d+"):
        branches = solvers.continuation(model, [1.0, 10.0, 1e3, 1e4], cells=120, stability=False)
    (branch,) = branches
    np.testing.assert_array_equal(branch.resolved, [True, True, False, False])
    figure = plotting_states.bifurcation_figure(branches, xscale="log")
    assert_clean_layout(figure)
    for ax in figure.get_axes():
        hollow = [line for line in ax.get_lines() if line.get_markerfacecolor() == "white"]
        assert [line.get_xdata().tolist() for line in hollow] == [[1e3, 1e4]]
        assert "unresolved (ResolutionWarning)" in [
            t.get_text() for t in ax.get_legend().get_texts()]
    plotting.close(figure)


def test_titles_carry_the_model_name(bistable_states, tmp_path) -> None:
    """A ``Model`` has no name: titles take the ``name`` passed, else the dataset's recorded
    ``model_name``, else the populations."""
    from meanfield.studies.tasks import stationary_dataset

    ds = stationary_dataset(bistable_states, mf.models.chemical_single())
    assert ds.study.plot().get_suptitle().startswith("model (E): stationary states")
    path = tmp_path / "states.nc"
    ds.assign_attrs({plotting.MODEL_NAME_ATTR: "chemical_single"}).to_netcdf(path)
    with xr.open_dataset(path) as named:
        title = named.study.plot().get_suptitle()
        assert title.startswith("chemical_single: stationary states at γ = 2.5")
        assert named.study.plot(name="bistable").get_suptitle().startswith("bistable: ")
    with pytest.raises(TypeError, match=r"name has type int \(3\): expected a string"):
        ds.study.plot(name=3)
    branches = solvers.continuation(mf.models.chemical_single(), [2.0, 2.5], cells=100,
                                    stability=False)
    figure = branches[0].plot(others=branches[1:], name="chemical_single")
    assert figure.get_suptitle().startswith("chemical_single: stationary states against γ")
    shown = {2.5: (bistable_states[0].x, bistable_states[0].rho)}
    figure = plotting.concentration_figure(shown, ("E",), name="chemical_single")
    assert figure.get_suptitle().startswith("chemical_single: densities concentrate")
    assert plotting.concentration_figure(shown, ("E",)).get_suptitle().startswith("Densities")
