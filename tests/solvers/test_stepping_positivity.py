"""The positivity rule of the one stepping core (solvers.stepping), shared by every solver."""

from __future__ import annotations

import numpy as np

import meanfield as mf
import solvers
from solvers.kernels import finish_step_numpy
from solvers.limits import balance_points
from solvers.stepping import clip_allowed


def _off_centre(model, shift=0.3, spread=0.05):
    point = next(b for b in balance_points(model) if b.stable)
    return [lambda x, c=point.v[p] + shift, s=spread: np.exp(-((x - c) ** 2) / (2 * s * s))
            for p in range(model.P)]


def _run(model, **options):
    return solvers.solve(model, gamma=1e3, t_final=0.01, cells=400, rtol=1e-4,
                         initial=_off_centre(model), **options)


def test_bdf2_limits_within_the_local_error_and_else_falls_back_to_backward_euler(monkeypatch):
    import solvers.stepping as stepping

    model = mf.models.chemical()
    sol = _run(model)  # BDF2's right-hand side is negative in the fast-dropping tails
    assert sol.info["positivity_clips"] > 0.5 * sol.info["steps"]
    assert sol.info["positivity_fallbacks"] == 0
    assert sol.rho.min() >= 0
    monkeypatch.setattr(stepping, "clip_allowed", lambda *args: False)
    refused = _run(model, engine="python")  # (the compiled loop does not see the patch)
    assert refused.info["positivity_fallbacks"] > 50
    assert refused.info["positivity_clips"] == 0
    assert refused.rho.min() >= 0  # backward Euler from ρ_n ≥ 0 needs no limiting (M-matrix)
    np.testing.assert_allclose(refused.rho.sum(axis=2) * np.diff(refused.grid.edges)[0], 1.0,
                               atol=1e-12)
    np.testing.assert_allclose(refused.mean[-1], sol.mean[-1], atol=1e-3)


def test_limiting_is_kept_only_when_the_negative_mass_is_within_the_local_error():
    edges = np.linspace(-5.0, 5.0, 21)
    widths = np.diff(edges)
    z = (edges[1:] + edges[:-1]) / 2
    base = np.exp(-z**2 / 2)[None]
    base[0, -1] = 0.0
    weights = base * 0 + widths

    def decide(change):  # constant past (f_n = 0) and steps: the predictor is the past itself
        raw = base + change
        sums = finish_step_numpy(raw.copy(), base, 0.1, base, 0 * base, base, 1.0, 0.1,
                                 weights, widths)[3]
        return clip_allowed(sums, 1e-3, 1e-12, 2 / 5)  # (h + h1)/(3h + 2h1) for h = h1

    dip = np.zeros_like(base)
    dip[0, -1] = -1e-3
    assert not decide(dip)  # negative mass 5e-4 > (2/5)·5e-4 + 1e-6·M: redo with backward Euler
    assert decide(dip + 0.01 * base)  # the same dip inside a larger change: keep it limited
