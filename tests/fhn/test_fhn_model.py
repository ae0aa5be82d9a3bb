"""The FitzHugh–Nagumo model layer (meanfield.fhn): defaults, limits, validation."""

import json

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import meanfield as mf
from meanfield.fhn import (
    ChemicalCoupling,
    ElectricalCoupling,
    FhnModel,
    FhnPopulation,
    GaussianStart,
    fhn_chemical,
    fhn_electrical,
)


def test_exported_from_the_package():
    assert mf.fhn.fhn_electrical is fhn_electrical


def test_rest_state_is_an_equilibrium_and_regimes_differ():
    excitable = FhnPopulation()
    v, w = excitable.rest_state()
    assert np.allclose(excitable.ode()(0.0, np.array([v, w])), 0.0, atol=1e-12)
    assert v == pytest.approx(-1.19941, abs=1e-4)
    # oscillatory regime: a trajectory started at rest+kick keeps oscillating (limit cycle)
    osc = fhn_electrical().populations[0]
    sol = solve_ivp(osc.ode(), (0, 200), [-1.0, -0.5], t_eval=np.linspace(100, 200, 2001),
                    rtol=1e-8)
    assert sol.y[0].max() - sol.y[0].min() > 3.0
    sol = solve_ivp(excitable.ode(), (0, 200), [-1.0, -0.5], t_eval=[200.0], rtol=1e-8)
    assert np.allclose(sol.y[:, -1], [v, w], atol=1e-4)


def test_coupling_coefficients_are_affine_in_v():
    el = fhn_electrical(names=("A", "B"), g=[[1.0, 2.0], [0.5, 0.0]])
    K, R = el.coefficients(np.array([0.3, -1.0]))
    assert np.allclose(K, [3.0, 0.5])
    assert np.allclose(R, [0.3 - 2.0, 0.15])
    ch = fhn_chemical()
    m = np.array([0.2, 0.7])
    K, R = ch.coefficients(m)
    g = np.array(ch.coupling.g)
    v = 0.37
    direct = [sum(g[p, q] * (v - ch.coupling.reversal[q]) * m[q] for q in range(2))
              for p in range(2)]
    assert np.allclose(K * v - R, direct)


def test_balance_voltages_are_the_fixed_point():
    model = fhn_chemical()
    v = model.balance_voltages()
    s = np.array(model.readouts(list(v)))
    g, E = np.array(model.coupling.g), np.array(model.coupling.reversal)
    assert np.allclose(v, (g @ (E * s)) / (g @ s), atol=1e-12)
    assert np.allclose(model.balance_slopes(), g @ s)
    assert np.all((v > E.min()) & (v < E.max()))


def test_chemical_limit_solves_the_slow_w_equation():
    model = fhn_chemical()
    t = np.linspace(0.0, 20.0, 5)
    v, w = model.chemical_limit(t, [0.1, -0.2])
    pop = model.populations[0]
    sol = solve_ivp(lambda _t, y: [pop.drift_w(v[0, 0], y[0])], (0, 20), [0.1], t_eval=t,
                    rtol=1e-11, atol=1e-12)
    assert np.allclose(w[:, 0], sol.y[0], atol=1e-8)
    assert np.allclose(v, model.balance_voltages())


def test_to_json_round_trips_parameters():
    data = json.loads(fhn_chemical(sigma=(0.2, 0.4)).to_json())
    assert data["kind"] == "chemical"
    assert data["populations"][1]["sigma"] == 0.4


def test_current_may_be_given_per_population():
    chem = fhn_chemical(current=(0.3, 0.0))
    assert chem.param("current").tolist() == [0.3, 0.0]
    assert fhn_chemical(current=0.2).param("current").tolist() == [0.2, 0.2]
    elec = fhn_electrical(names=("A", "B"), g=[[1, 0.5], [0.5, 1]], current=np.array([0.5, -0.1]))
    assert elec.param("current").tolist() == [0.5, -0.1]
    assert fhn_electrical(regime="excitable").param("current").tolist() == [0.0]
    # the per-population current enters each population's drift
    pops = chem.populations
    assert pops[0].drift_v(0.0, 0.0) - pops[1].drift_v(0.0, 0.0) == pytest.approx(0.3)


@pytest.mark.parametrize(("build", "error", "match"), [
    (lambda: FhnPopulation(epsilon=0.0), ValueError, "epsilon=0.0"),
    (lambda: FhnPopulation(sigma=-1.0), ValueError, "sigma=-1.0"),
    (lambda: FhnPopulation(a="x"), TypeError, "a has type str"),
    (lambda: FhnPopulation(name=""), ValueError, "name"),
    (lambda: fhn_electrical(regime="bursting"), ValueError, "regime='bursting'"),
    (lambda: fhn_chemical(g=[[1.0, -2.0], [1.0, 1.0]]), ValueError, "g=-2.0"),
    (lambda: fhn_chemical(reversal=(1.0, 2.0, 3.0)), ValueError, "reversal"),
    (lambda: fhn_chemical(slope=0.0), ValueError, "slope"),
    (lambda: fhn_electrical(names="V"), TypeError, "names"),
    (lambda: FhnModel((FhnPopulation("A"), FhnPopulation("A")), ElectricalCoupling([[1, 1], [1, 1]])),
     ValueError, "distinct"),
    (lambda: FhnModel((FhnPopulation(),), ElectricalCoupling([[1, 1], [1, 1]])),
     ValueError, "coupling"),
    (lambda: FhnModel((FhnPopulation(),), "gap"), TypeError, "coupling"),
    (lambda: fhn_electrical().balance_voltages(), ValueError, "chemical"),
    (lambda: GaussianStart(v_std=-0.1), ValueError, "v_std"),
    (lambda: ChemicalCoupling([[1.0]], [0.0], [0.0], [1.0, 2.0]), ValueError, "slope"),
    (lambda: fhn_chemical(current=(0.3, 0.0, 0.1)), ValueError, r"current=\(0\.3, 0\.0, 0\.1\)"),
    (lambda: fhn_chemical(current=(0.3, float("nan"))), ValueError, "current=nan"),
    (lambda: fhn_electrical(current="0.3"), TypeError, "current has type str"),
    (lambda: fhn_electrical(names=("A", "B"), current=[0.1]), ValueError, "current=\\[0.1\\]"),
])
def test_bad_input_is_rejected_with_its_name(build, error, match):
    with pytest.raises(error, match=match):
        build()
