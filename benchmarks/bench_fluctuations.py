"""Fluctuation theory: timing of the stationary prediction, and the network acceptance study.

    python benchmarks/bench_fluctuations.py               # timing at P·M = 800
    python benchmarks/bench_fluctuations.py --acceptance  # prediction vs network ensembles

Measured once (prediction on resolved grids, one seed of 800 τ_c per case): every
``n·Var(m_q)`` within 2.3 standard errors (|z| ≤ 2.26 over 18 cases, n = 10³ and 10⁴,
γ = 1, 10, 100, chemical_single / chemical / current_balanced); correlation times within
1.3 of their (10–20 %) standard errors — longer runs are needed to show 10 %.

Timing: ``solvers.fluctuations`` at P·M = 800 (E/I chemical model, 400 cells, given state;
target ≤ 2 s) with the dense and the resolvent method, and the resolvent method at
P·M = 10 000 (beyond the dense limit), each against one dense LU of size 800 measured in the
same run (printed ratio). Measured on a shared 2-core machine: at P·M = 800 dense 0.57 s
(23 LUs) and resolvent 0.27 s (11 LUs), both within the 2 s target; the resolvent at
P·M = 10 000 took 15 s (633 LUs: about 2000 frequencies, each a Thomas sweep in a Python loop
over the cells vectorised over frequencies), and 2.9 s (256 LUs) since the sweeps are compiled
(:mod:`solvers.fluctuations_numba`; 2026-12-02).

Acceptance: for each model and γ, ``n·Var(m_q)`` and the correlation time of ``m_q`` from
seeded networks (``scheme="ou"``, ``dt = τ_c/50``, started from the stationary state, time
averages over ``800 τ_c`` per seed) beside the prediction: z-scores (batch-means standard
errors) and relative errors of the correlation time (integrated autocorrelation up to 6 τ_c).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import scipy.linalg as sla

import meanfield as mf
import solvers


def _lu_time(size: int, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(size, size))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sla.lu_factor(matrix)
        times.append(time.perf_counter() - start)
    return min(times)


def timing() -> None:
    """Dense and resolvent predictions at P·M = 800, the resolvent at P·M = 10 000, each
    against one dense LU of size 800 timed just before it (interleaved)."""
    model = mf.models.chemical()
    state = next(s for s in solvers.stationary_states(model, gamma=10.0, cells=400) if s.stable)
    big = next(s for s in solvers.stationary_states(model, gamma=10.0, cells=5000) if s.stable)
    solvers.fluctuations(model, 10.0, state=state)  # warm-up
    for label, st, method in (("dense", state, "dense"), ("resolvent", state, "resolvent"),
                              ("resolvent", big, "resolvent")):
        lu = _lu_time(800)
        start = time.perf_counter()
        fl = solvers.fluctuations(model, 10.0, state=st, method=method)
        elapsed = time.perf_counter() - start
        verdict = "meets" if elapsed <= 2.0 else "misses"
        print(f"fluctuations ({label}) at P·M={fl.info['size']}: {elapsed:.3f} s = "
              f"{elapsed / lu:.0f} dense LUs of size 800 ({lu:.4f} s each, same run); "
              f"{verdict} the 2 s target at P·M = 800" if fl.info["size"] == 800 else
              f"fluctuations ({label}) at P·M={fl.info['size']}: {elapsed:.3f} s = "
              f"{elapsed / lu:.0f} dense LUs of size 800 ({lu:.4f} s each, same run)",
              flush=True)


def _series_stats(y: np.ndarray, spacing: float, tau_c: float, n: int) -> tuple[float, ...]:
    """n·Var and integrated autocorrelation time with batch-means standard errors."""
    y = y - y.mean()
    batches = y[: y.size // 20 * 20].reshape(20, -1)
    var_b = n * np.mean(batches**2, axis=1)
    window = round(6 * tau_c / spacing)
    taus = []
    for b in batches:
        c0 = np.mean(b * b)
        acf = np.array([np.mean(b[k:] * b[: b.size - k]) / c0 for k in range(window + 1)])
        taus.append(spacing * (acf.sum() - 0.5 * (acf[0] + acf[-1])))
    taus = np.array(taus)
    return (var_b.mean(), var_b.std(ddof=1) / np.sqrt(20), taus.mean(),
            taus.std(ddof=1) / np.sqrt(20))


def acceptance(cases: list[tuple[str, float, int]]) -> None:
    for name, gamma, n in cases:
        model = getattr(mf.models, name)()
        cells = 1200 if model.P == 1 else 900  # resolves the dynamics (correlation times)
        state = next(s for s in solvers.stationary_states(model, gamma=gamma, cells=cells)
                     if s.stable)
        fl = solvers.fluctuations(model, gamma, state=state, observables="m")
        tau_c = float(np.max(fl.correlation_time["m"]))
        dt, spacing = tau_c / 50, tau_c / 5
        T = 800 * tau_c
        start = time.perf_counter()
        net = solvers.simulate_network(model, gamma=gamma, n=n, t_final=T, dt=dt, seed=11,
                                       initial=state, scheme="ou",
                                       save_at=np.arange(0, T * (1 - 1e-12), spacing))
        wall = time.perf_counter() - start
        for q in range(model.P):
            var, se, tau, tau_se = _series_stats(net.m[:, q], spacing,
                                                 float(fl.correlation_time["m"][q]), n)
            pred, pred_tau = fl.m_var[q], fl.correlation_time["m"][q]
            print(f"{name:17s} γ={gamma:<5g} n={n:<6d} q={q}: n·Var(m) net {var:.4e} ± {se:.1e}"
                  f" pred {pred:.4e} z={(var - pred) / se:+.2f} | τ_c net {tau:.4f} ± "
                  f"{tau_se:.4f} pred {pred_tau:.4f} rel.err {(tau - pred_tau) / pred_tau:+.3f}"
                  f" ({wall:.0f} s)", flush=True)


if __name__ == "__main__":
    if "--acceptance" in sys.argv:
        acceptance([(m, g, 1000) for m in ("chemical_single", "chemical", "current_balanced")
                    for g in (1.0, 10.0, 100.0)] + [("chemical_single", 10.0, 10_000),
                                                    ("chemical", 10.0, 10_000)])
    else:
        timing()
