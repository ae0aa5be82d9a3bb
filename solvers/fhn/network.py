r"""The n-agent network of FitzHugh–Nagumo agents ``(v, w)`` (docs/mathematics.md §8, :mod:`meanfield.fhn`).

Agent ``i`` of population ``p`` (coupling always affine in its own voltage, ``h_p = K_p v − R_p``):

.. math::
    dv_i = \big(F_p(v_i, w_i) - \gamma (K_p v_i - R_p)\big)\,dt + \sigma_p\,dW_i,\qquad
    dw_i = \varepsilon_p (v_i + a_p - b_p w_i)\,dt ,

``F_p = v − v³/3 − w + I_p``; ``K, R`` come from the empirical coupling moments ``m_q`` (mean
voltage for electrical coupling, mean ``S_q(v)`` for chemical coupling).

Schemes (moments frozen over each step, the state-dependent part ``F`` explicit):

* ``"exponential"`` (default, Lie splitting): first the intrinsic drift,
  ``v' = v + F_p(v, w) Δt`` (and ``w`` advanced exactly with ``v`` frozen), then the coupling and
  the noise exactly, with the moments of ``v'`` frozen:
  ``v⁺ = e^{−λΔt} v' + γ R_p φ₁(λ) + σ √φ₁(2λ) ξ``, ``λ = γK_p``, ``φ₁(λ) = (1 − e^{−λΔt})/λ``.
  Stable for every ``γΔt``; the Ornstein–Uhlenbeck part has the exact stationary variance
  ``D/λ`` whatever the step, and for electrical coupling the relaxation leaves the population
  mean exactly unchanged, so the mean moves only by the intrinsic drift (no lag of the frozen
  moments at large γ); weak order 1.
* ``"euler"``: Euler–Maruyama (for comparison; unstable once ``γ K Δt > 2``).
"""

from __future__ import annotations

import time as _time
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number, check_int
from meanfield.fhn import FhnModel, GaussianStart
from solvers.fhn.network_kernels import StepConstants, numba_available, step_numba, step_numpy

SCHEMES = ("exponential", "euler")


@dataclass(frozen=True, eq=False)
class FhnNetworkResult:
    """Observables of an n-agent FitzHugh–Nagumo network at the saved times ``t`` (nt,).

    ``mean_v``, ``var_v``, ``mean_w``, ``var_w``, ``m`` (coupling moments) and
    ``balance_residual`` (``⟨|h_p(v)|⟩_p``, the distance to the balance manifold) have shape
    (nt, P). ``v``, ``w`` and ``population`` are the final agent states (n,).
    """

    model: FhnModel
    gamma: float
    scheme: str
    t: np.ndarray
    mean_v: np.ndarray
    var_v: np.ndarray
    mean_w: np.ndarray
    var_w: np.ndarray
    m: np.ndarray
    balance_residual: np.ndarray
    v: np.ndarray
    w: np.ndarray
    population: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def sizes(self) -> np.ndarray:
        """Agents per population (P,)."""
        return np.bincount(self.population, minlength=self.model.P)

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with dims (t, population) and (agent,), CF metadata."""
        from solvers.datasets import FHN_VARIABLES, RECOVERY, VOLT, build_dataset

        data = {name: (("t", "population"), getattr(self, name)) for name in OBSERVABLES}
        data.update(n=(("population",), self.sizes), v=(("agent",), self.v),
                    w=(("agent",), self.w), agent_population=(("agent",), self.population))
        coords = {"t": (("t",), self.t), "population": (("population",), list(self.model.names))}
        extra = FHN_VARIABLES | {
            "v": ("final voltage", VOLT, "voltage of every agent at the last step"),
            "w": ("final recovery variable", RECOVERY, "w of every agent at the last step")}
        return build_dataset("FhnNetworkResult", data=data, coords=coords, model=self.model,
                             gamma=self.gamma, solver="simulate_fhn_network",
                             options={"scheme": self.scheme}, info=self.info,
                             attrs={"scheme": self.scheme, "kind": self.model.kind}, extra=extra)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> FhnNetworkResult:
        """The run of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        from solvers.datasets import Reader
        from solvers.io import read_times

        r = Reader(ds, path, "FhnNetworkResult")
        model = r.model()
        r.size("population", model.P)
        population = r.array("agent_population", ("agent",), dtype=int)
        if population.size and (population.min() < 0 or population.max() >= model.P):
            r.fail(f"agent_population has indices outside 0..{model.P - 1}")
        n = r.array("n", ("population",), dtype=int)
        if not np.array_equal(n, np.bincount(population, minlength=model.P)):
            r.fail("n does not count the agents of each population")
        obs = {name: r.array(name, ("t", "population")) for name in OBSERVABLES}
        return cls(model=model, gamma=r.number("gamma", minimum=0), scheme=r.text("scheme"),
                   t=read_times(r), v=r.array("v", ("agent",)), w=r.array("w", ("agent",)),
                   population=population, info=r.mapping("info"), **obs)


OBSERVABLES = ("mean_v", "var_v", "mean_w", "var_w", "m", "balance_residual")


def _sizes(n: Any, P: int) -> np.ndarray:
    if isinstance(n, (list, tuple, np.ndarray)):
        if len(n) != P:
            bad_value("n", n, f"{P} agent counts (one per population) or one count per population")
        return np.array([check_int("n", k, minimum=2) for k in n])
    return np.full(P, check_int("n", n, minimum=2))


def _save_indices(save_at: Any, steps: int, dt: float, t_final: float) -> np.ndarray:
    if save_at is None:
        return np.arange(steps + 1)
    times = np.atleast_1d(np.asarray(save_at, dtype=float))
    if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)):
        bad_value("save_at", save_at, "a non-empty 1-D sequence of finite times")
    if np.any(times < -1e-12) or np.any(times > t_final * (1 + 1e-12)):
        bad_value("save_at", save_at, f"times in [0, t_final={t_final}]")
    return np.unique(np.clip(np.rint(times / dt).astype(int), 0, steps))


def coupling_moments(model: FhnModel, v: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Empirical ``m_q``: mean voltage (electrical) or mean ``S_q(v)`` (chemical) of each population."""
    out = np.empty(model.P)
    for q in range(model.P):
        out[q] = np.mean(model.coupling.readout(q, v[population == q]))
    return out


def simulate_fhn_network(model: FhnModel, *, gamma: float, n: Any, t_final: float, dt: float,
                         seed: int, scheme: str = "exponential", save_at: Any = None,
                         initial: GaussianStart | None = None,
                         fast: bool | None = None) -> FhnNetworkResult:
    """Simulate ``n`` agents per population of ``model`` up to ``t_final`` with step ``dt``.

    ``initial`` (default :class:`~meanfield.fhn.GaussianStart`) draws the initial states;
    ``save_at`` (default every step) picks the recorded times, snapped to the step grid
    ``dt_eff = t_final/round(t_final/dt)``. ``fast`` picks the numba kernel of the exponential
    scheme (None: when numba imports; it takes the same random draws as the numpy path, so both
    agree to round-off). Returns a :class:`FhnNetworkResult`.
    """
    if not isinstance(model, FhnModel):
        bad_type("model", model, "a meanfield.fhn.FhnModel (fhn_electrical(...), fhn_chemical(...))")
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    t_final = check_finite_number("t_final", t_final, positive=True)
    dt = check_finite_number("dt", dt, positive=True)
    seed = check_int("seed", seed, minimum=0)
    if scheme not in SCHEMES:
        bad_value("scheme", scheme, f"one of {SCHEMES}")
    if initial is None:
        initial = GaussianStart()
    if not isinstance(initial, GaussianStart):
        bad_type("initial", initial, "a meanfield.fhn.GaussianStart")
    sizes = _sizes(n, model.P)
    steps = max(1, round(t_final / dt))
    dt_eff = t_final / steps
    saved = _save_indices(save_at, steps, dt_eff, t_final)

    use_numba = (scheme == "exponential" and numba_available()) if fast is None else bool(fast)
    if use_numba and not numba_available():
        bad_value("fast", fast, "False or None: numba is not installed (the 'fast' extra)")
    if use_numba and scheme != "exponential":
        bad_value("fast", fast, "False or None with scheme='euler' (the numba kernel is the "
                  "exponential scheme)")
    step = step_numba if use_numba else step_numpy

    rng = np.random.default_rng(seed)
    population = np.repeat(np.arange(model.P), sizes)
    start = initial.per_population(model.P)
    v = start["v"][population] + start["v_std"][population] * rng.standard_normal(population.size)
    w = start["w"][population] + start["w_std"][population] * rng.standard_normal(population.size)
    constants = StepConstants.build(model, sizes, dt_eff)
    parts = [slice(constants.offsets[p], constants.offsets[p + 1]) for p in range(model.P)]
    a, b, eps, current, sigma = (model.param(k)[population] for k in
                                 ("a", "b", "epsilon", "current", "sigma"))

    P = model.P
    shape = (saved.size, P)
    records = {k: np.empty(shape) for k in ("mean_v", "var_v", "mean_w", "var_w", "m",
                                            "balance_residual")}

    def record(row: int) -> None:
        m = coupling_moments(model, v, population)
        K, R = model.coefficients(m)
        for p, part in enumerate(parts):
            vp, wp = v[part], w[part]
            records["mean_v"][row, p] = vp.mean()
            records["var_v"][row, p] = vp.var()
            records["mean_w"][row, p] = wp.mean()
            records["var_w"][row, p] = wp.var()
            records["balance_residual"][row, p] = np.mean(np.abs(K[p] * vp - R[p]))
        records["m"][row] = m

    started = _time.perf_counter()
    row = 0
    for k in range(steps + 1):
        if row < saved.size and saved[row] == k:
            record(row)
            row += 1
        if k == steps:
            break
        noise = rng.standard_normal(population.size)
        if scheme == "exponential":
            v, w = step(v, w, noise, constants, gamma, dt_eff)
        else:
            K, R = model.coefficients(coupling_moments(model, v, population))
            v_new = (v + (v - v**3 / 3 - w + current - gamma * (K[population] * v - R[population]))
                     * dt_eff + sigma * np.sqrt(dt_eff) * noise)
            w = w + eps * (v + a - b * w) * dt_eff
            v = v_new
    elapsed = _time.perf_counter() - started
    info = {"steps": steps, "dt": dt_eff, "seed": seed, "wall_time": elapsed, "fast": use_numba,
            "agent_steps_per_second": float(population.size * steps / max(elapsed, 1e-12)),
            "finite": bool(np.all(np.isfinite(v)) and np.all(np.isfinite(w)))}
    return FhnNetworkResult(model=model, gamma=gamma, scheme=scheme, t=saved * dt_eff,
                            v=v, w=w, population=population, info=info, **records)


__all__ = ["SCHEMES", "FhnNetworkResult", "coupling_moments", "simulate_fhn_network"]
