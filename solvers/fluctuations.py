r"""Finite-size fluctuations around the mean field: the linear-noise (central-limit) theory.

For ``n`` agents per population, ``η = √n (μ_n − ρ)`` tends to a Gaussian field solving the
mean-field equation linearised at ``ρ`` (nonlocal term included), driven by
``∂_x(σ_p √ρ_p ξ_p)`` (docs/mathematics.md §9; derivation in docs/fluctuations.md). On the
Scharfetter–Gummel grid this is ``dη = A η dt + B dW`` (:mod:`solvers.lyapunov`), and

* at a stationary state: ``A C + C Aᵀ + B Bᵀ = 0`` (zero mass per population), the
  autocovariance ``K(τ) = Wᵀ e^{Aτ} C W``, the correlation time ``τ_c = Wᵀ(−A)⁻¹ C W / WᵀCW``
  (the integral of the normalised autocorrelation) and the spectrum
  ``S(ω) = Wᵀ (iω − A)⁻¹ B Bᵀ (−iω − Aᵀ)⁻¹ W``, ``W`` the readout (``Ψ_q`` for ``m``, ``x``
  for the population means): :func:`fluctuations`;
* along a trajectory: ``dC/dt = A(t) C + C A(t)ᵀ + B(t)B(t)ᵀ`` from the iid (multinomial)
  covariance of the initial densities: :func:`transient_fluctuations`.

Every variance is ``n ×`` the variance at ``n`` agents per population (to leading order in 1/n).
"""

from __future__ import annotations

import time as _time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np
import scipy.linalg as sla

from meanfield.errors import (
    ResolutionWarning,
    bad_type,
    bad_value,
    check_finite_number,
    check_int,
)
from meanfield.model import Model
from meanfield.numeric import numeric
from solvers.fluctuations_resolvent import ResolventSystem, resolvent_moments
from solvers.grid import Grid, make_grid
from solvers.lyapunov import (
    DENSE_LIMIT,
    check_size,
    lyapunov_step,
    multinomial,
    noise_bands,
    noise_system,
    project,
    stationary_covariance,
    stationary_covariance_modes,
    zero_mass_basis,
)
from solvers.stationary import GibbsMap, StationaryState, stationary_states

OBSERVABLES = ("m", "mean")
METHODS = ("auto", "dense", "resolvent")
MODES_LIMIT = 4000
"""Largest P²·(M−1) for the reversible-mode solver (its linear system is that size); the
Bartels–Stewart solver is used beyond."""


@dataclass(frozen=True, eq=False)
class Fluctuations:
    """Stationary linear-noise prediction at one stationary state (all variances times ``n``).

    ``covariance`` (P·M, P·M): n·Cov of the cell masses (population-major blocks);
    ``cov[name]`` (P, P) and ``var[name]`` (P,): n·Cov and n·Var of observable ``name``
    (``"m"``, ``"mean"``); ``correlation_time[name]`` (P,); when tabulated, ``tau`` (nτ,) and
    ``autocorrelation[name]`` (nτ, P) the normalised autocorrelations, ``omega`` (nω,) and
    ``spectrum[name]`` (nω, P) the power spectra ``S(ω) = ∫ e^{−iωτ} n·Cov(y(t+τ), y(t)) dτ``.
    With ``info["method"] == "resolvent"`` there is no cell covariance (``covariance`` is
    empty, (0, 0)) and no autocovariance; everything else is the same.
    """

    model: Model
    gamma: float
    x: np.ndarray
    rho: np.ndarray
    m: np.ndarray
    covariance: np.ndarray
    cov: Mapping[str, np.ndarray]
    var: Mapping[str, np.ndarray]
    tau: np.ndarray
    autocorrelation: Mapping[str, np.ndarray]
    correlation_time: Mapping[str, np.ndarray]
    omega: np.ndarray
    spectrum: Mapping[str, np.ndarray]
    edges: np.ndarray = field(repr=False)
    system: Any = field(repr=False)
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def m_var(self) -> np.ndarray:
        """n·Var(m_q) (P,)."""
        return self.var["m"]

    @property
    def m_cov(self) -> np.ndarray:
        """n·Cov(m_p, m_q) (P, P)."""
        return self.cov["m"]

    @property
    def mean_var(self) -> np.ndarray:
        """n·Var of the population means (P,)."""
        return self.var["mean"]

    @property
    def grid(self) -> Grid:
        return Grid(self.edges)

    def _readout(self, name: str) -> np.ndarray:
        if name not in self.cov:
            bad_value("name", name, f"one of {sorted(self.cov)}")
        system = self.system.bands if isinstance(self.system, ResolventSystem) else self.system
        return system.psi if name == "m" else system.x

    def autocovariance(self, name: str, tau: Sequence[float] | np.ndarray) -> np.ndarray:
        """``n·Cov(y(t+τ), y(t)) = Wᵀ e^{Aτ} C W`` (nτ, P, P) at the lags ``tau >= 0``."""
        lags = np.asarray(tau, dtype=float)
        if lags.ndim != 1 or np.any(lags < 0) or not np.all(np.isfinite(lags)):
            bad_value("tau", tau, "a 1-D array of finite lags >= 0")
        W = self._readout(name)
        if isinstance(self.system, ResolventSystem):
            bad_value("method", "resolvent", "method='dense' for autocovariances (the resolvent "
                      "method gives variances, correlation times and spectra)")
        return _autocovariance(self.system, self.covariance, W, lags)

    def power_spectrum(self, name: str, omega: Sequence[float] | np.ndarray) -> np.ndarray:
        """Cross-spectra ``S(ω)`` (nω, P, P), complex Hermitian for each ω (see the class)."""
        freqs = np.asarray(omega, dtype=float)
        if isinstance(self.system, ResolventSystem):
            if freqs.ndim != 1 or not np.all(np.isfinite(freqs)) or np.any(freqs <= 0):
                bad_value("omega", omega, "a 1-D array of angular frequencies > 0 (the "
                          "resolvent method; S(0) = 2 τ_c n·Var)")
            return self.system.spectrum(self._readout(name), freqs)
        return _spectrum(self.system, self._readout(name), freqs)

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with CF metadata (:mod:`solvers.fluctuations_io`)."""
        from solvers.fluctuations_io import fluctuations_dataset

        return fluctuations_dataset(self)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> Fluctuations:
        """The prediction of :meth:`to_xarray` (checked; errors name ``path``)."""
        from solvers.fluctuations_io import read_fluctuations

        return read_fluctuations(ds, path)

    def __repr__(self) -> str:
        parts = ", ".join(f"n·Var({k})={np.round(v, 8).tolist()}" for k, v in self.var.items())
        return f"Fluctuations(gamma={self.gamma:g}, cells={self.x.size}, {parts})"


def _autocovariance(system: Any, C: np.ndarray, W: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """``Wᵀ e^{Aτ} C W`` on the zero-mass subspace: one ``expm`` of ``A Δτ`` then repeated
    products for evenly spaced lags (from 0), one ``expm`` per lag otherwise."""
    Ar, _ = system.reduced()
    V = system.basis
    X = V.T @ C @ W
    Wr = V.T @ W
    out = np.empty((lags.size, W.shape[1], W.shape[1]))
    steps = np.diff(lags)
    if lags.size > 2 and lags[0] == 0 and np.allclose(steps, steps[0], rtol=1e-12):
        E = sla.expm(Ar * steps[0])
        for k in range(lags.size):
            out[k] = Wr.T @ X
            X = E @ X
        return out
    for k, lag in enumerate(lags):
        out[k] = Wr.T @ (sla.expm(Ar * lag) @ X)
    return out


def _spectrum(system: Any, W: np.ndarray, omega: np.ndarray) -> np.ndarray:
    if omega.ndim != 1 or not np.all(np.isfinite(omega)):
        bad_value("omega", omega, "a 1-D array of finite angular frequencies")
    Ar, Qr = system.reduced()
    Wr = system.basis.T @ W
    out = np.empty((omega.size, W.shape[1], W.shape[1]), dtype=complex)
    eye = np.eye(Ar.shape[0])
    for k, w in enumerate(omega):
        Z = np.linalg.solve(-1j * w * eye - Ar.T, Wr)  # Z = (iω − A)⁻ᴴ W
        out[k] = Z.conj().T @ Qr @ Z
    return out


RESOLVED_CELLS = 4
"""Cells per standard deviation of the state below which the dynamics (correlation times,
spectra) carry a visible grid error; the covariance itself is exact for the discrete Gibbs state."""


def _check_resolution(state: StationaryState) -> None:
    h = np.diff(state.edges)
    for p, name in enumerate(state.model.names):
        mass = state.rho[p] * h
        support = mass > 1e-8 * mass.max()
        cells = float(np.sqrt(state.var[p]) / h[support].max())
        if cells < RESOLVED_CELLS:
            warnings.warn(f"the grid resolves population {name}'s standard deviation "
                          f"{np.sqrt(state.var[p]):.3g} by {cells:.1f} cells (< {RESOLVED_CELLS}):"
                          " correlation times and spectra carry an O(h²) error above about "
                          "1 %; use more cells or a grid= concentrated where the mass is",
                          ResolutionWarning, stacklevel=3)


def _observables(observables: Any) -> tuple[str, ...]:
    if isinstance(observables, str):
        observables = (observables,)
    if not isinstance(observables, (Sequence, np.ndarray)) or len(observables) == 0 or any(
            o not in OBSERVABLES for o in observables):
        bad_value("observables", observables, f"a non-empty subset of {OBSERVABLES}")
    return tuple(dict.fromkeys(observables))


def _pick_state(model: Model, gamma: float, state: Any, grid: Grid) -> StationaryState:
    if state is not None:
        if not isinstance(state, StationaryState):
            bad_type("state", state, "a solvers.StationaryState (or None)")
        if state.gamma != gamma or (state.model is not model
                                    and state.model.to_json() != model.to_json()):
            bad_value("state", state, f"a stationary state of this model at gamma={gamma:g}")
        stable = state.stable
        if stable is None:  # stability not computed: decide it now
            from solvers.stationary import linearised_spectrum

            eig = linearised_spectrum(GibbsMap(numeric(model), state.grid, gamma), state.m)
            stable = bool(eig.size == 0 or eig.real.max() < 0)
        if not stable:
            bad_value("state", state, "a linearly stable stationary state")
        return state
    states = stationary_states(model, gamma=gamma, grid=grid)
    stable = [s for s in states if s.stable]
    if len(stable) != 1:
        bad_value("state", None, f"a StationaryState: {len(states)} stationary states at "
                  f"gamma={gamma:g}, {len(stable)} of them stable; pass one of "
                  "solvers.stationary_states(...) as state=")
    return stable[0]


def fluctuations(model: Model, gamma: float, *, state: StationaryState | None = None,
                 cells: int | None = None, grid: Grid | None = None,
                 observables: Sequence[str] = OBSERVABLES, tau: Sequence[float] | None = None,
                 omega: Sequence[float] | None = None, method: str = "auto") -> Fluctuations:
    """The stationary linear-noise prediction of the network's fluctuations at coupling ``gamma``.

    ``state``: the stationary state (default: the unique stable one of
    :func:`solvers.stationary_states` on the grid; ValueError if there is none or several).
    ``cells``/``grid``: the discretisation when ``state`` is not given (default 400 cells).
    ``observables``: readouts among ``"m"`` and ``"mean"``. ``tau``: lags at which the
    normalised autocorrelations are tabulated, ``omega``: angular frequencies of the tabulated
    spectra (both optional; :meth:`Fluctuations.autocovariance` and
    :meth:`Fluctuations.power_spectrum` evaluate them anywhere). The dense solvers take
    O((P·M)³) time and need P·M ≤ ``solvers.lyapunov.DENSE_LIMIT`` (``method="dense"`` raises
    ValueError beyond; ``"auto"`` switches to the resolvent method). A state that is not linearly stable
    raises ValueError. The stationary covariance uses the reversibility of the scheme at a
    stationary state (:func:`solvers.lyapunov.stationary_covariance_modes`: a symmetric
    tridiagonal eigenproblem per population and one linear system of size P²·(M−1), up to
    ``MODES_LIMIT``; Bartels–Stewart beyond).

    ``method``: ``"dense"`` (the above), ``"resolvent"`` (only the observables: n·Cov as the
    integral of the spectrum, one banded solve per frequency, O(P²·M) memory, any number of
    cells; no cell covariance and no ``tau``; :mod:`solvers.fluctuations_resolvent`) or
    ``"auto"`` (dense up to ``P·M = DENSE_LIMIT``, resolvent beyond).
    """
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    names = _observables(observables)
    if method not in METHODS:
        bad_value("method", method, f"one of {METHODS}")
    if state is None:
        grid_ = make_grid(model.domain, cells, grid, default_cells=400)
    else:
        if cells is not None or grid is not None:
            bad_value("cells", cells, "no cells=/grid= when state= is given (its grid is used)")
        grid_ = state.grid
    if method == "auto":
        method = "dense" if model.P * grid_.cells <= DENSE_LIMIT else "resolvent"
    if method == "dense":
        check_size(model.P * grid_.cells)
    elif tau is not None:
        bad_value("tau", tau, "None with method='resolvent' (no autocorrelations; use "
                  "method='dense')")
    start = _time.perf_counter()
    st = _pick_state(model, gamma, state, grid_)
    _check_resolution(st)
    gmap = GibbsMap(numeric(model), st.grid, gamma)
    if method == "resolvent":
        return _resolvent(model, gamma, st, gmap, names, omega, start)
    system = noise_system(gmap, st.rho, st.m)
    Ar, _ = system.reduced()
    if model.P**2 * (st.x.size - 1) <= MODES_LIMIT:
        C = stationary_covariance_modes(system)
    else:
        C, _ = stationary_covariance(system)
    Cr = project(C, st.x.size)
    try:
        lu = sla.lu_factor(-Ar, check_finite=True)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise ValueError(f"state: the linearised operator at gamma={gamma:g} is singular "
                         "(a fold); no stationary fluctuations") from exc
    if not np.all(np.isfinite(C)) or np.any(np.diag(C) < -1e-10):
        bad_value("state", st, "a linearly stable stationary state (the stationary covariance "
                  "is not a covariance)")
    V = system.basis
    cov, var, acf, tc, spec = {}, {}, {}, {}, {}
    for name in names:
        W = system.psi if name == "m" else system.x
        K = W.T @ C @ W
        cov[name], var[name] = K, np.diag(K).copy()
        integral = W.T @ V @ sla.lu_solve(lu, Cr @ (V.T @ W))
        tc[name] = np.diag(integral) / np.diag(K)
    lags = np.zeros(0) if tau is None else np.asarray(tau, dtype=float)
    freqs = np.zeros(0) if omega is None else np.asarray(omega, dtype=float)
    for name in names:
        W = system.psi if name == "m" else system.x
        if tau is not None:
            if lags.ndim != 1 or np.any(lags < 0) or not np.all(np.isfinite(lags)):
                bad_value("tau", tau, "a 1-D array of finite lags >= 0")
            auto = _autocovariance(system, C, W, lags)
            acf[name] = np.diagonal(auto, axis1=1, axis2=2) / var[name]
        if omega is not None:
            spec[name] = np.diagonal(_spectrum(system, W, freqs), axis1=1, axis2=2).real
    info = {"size": int(C.shape[0]), "cells": int(st.x.size), "method": "dense",
            "wall_time": _time.perf_counter() - start, "state_residual": float(st.residual)}
    return Fluctuations(model=model, gamma=gamma, x=st.x, rho=st.rho, m=st.m, covariance=C,
                        cov=cov, var=var, tau=lags, autocorrelation=acf, correlation_time=tc,
                        omega=freqs, spectrum=spec, edges=st.edges, system=system, info=info)


def _resolvent(model: Model, gamma: float, st: StationaryState, gmap: GibbsMap,
               names: tuple[str, ...], omega: Sequence[float] | None, start: float) -> Fluctuations:
    system = ResolventSystem(noise_bands(gmap, st.rho, st.m))
    freqs = np.zeros(0) if omega is None else np.asarray(omega, dtype=float)
    if omega is not None and (freqs.ndim != 1 or not np.all(np.isfinite(freqs))
                              or np.any(freqs < 0)):
        bad_value("omega", omega, "a 1-D array of finite angular frequencies >= 0")
    cov, var, tc, spec = {}, {}, {}, {}
    P = model.P
    readouts = {"m": system.bands.psi, "mean": system.bands.x}
    K_all, S0_all = resolvent_moments(system, np.concatenate([readouts[n] for n in names], axis=1))
    for i, name in enumerate(names):
        W = readouts[name]
        block = slice(i * P, (i + 1) * P)
        K, S0 = K_all[block, block], S0_all[block, block]
        cov[name], var[name] = K, np.diag(K).copy()
        tc[name] = np.diag(S0) / (2 * var[name])
        if omega is not None:
            low = freqs == 0
            values = np.empty((freqs.size, model.P))
            values[low] = np.diag(S0)
            if np.any(~low):
                values[~low] = np.diagonal(system.spectrum(W, freqs[~low]).real, axis1=1, axis2=2)
            spec[name] = values
    size = model.P * st.x.size
    info = {"size": int(size), "cells": int(st.x.size), "method": "resolvent",
            "wall_time": _time.perf_counter() - start, "state_residual": float(st.residual)}
    return Fluctuations(model=model, gamma=gamma, x=st.x, rho=st.rho, m=st.m,
                        covariance=np.zeros((0, 0)), cov=cov, var=var, tau=np.zeros(0),
                        autocorrelation={}, correlation_time=tc, omega=freqs, spectrum=spec,
                        edges=st.edges, system=system, info=info)


@dataclass(frozen=True, eq=False)
class TransientFluctuations:
    """n·Cov along a trajectory: ``covariance`` (nt, P·M, P·M) and per observable
    ``cov[name]`` (nt, P, P), ``var[name]`` (nt, P) at the solution's times ``t``."""

    model: Model
    gamma: float
    t: np.ndarray
    x: np.ndarray
    covariance: np.ndarray
    cov: Mapping[str, np.ndarray]
    var: Mapping[str, np.ndarray]
    edges: np.ndarray = field(repr=False)
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def m_var(self) -> np.ndarray:
        return self.var["m"]

    @property
    def mean_var(self) -> np.ndarray:
        return self.var["mean"]

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` with CF metadata (:mod:`solvers.fluctuations_io`)."""
        from solvers.fluctuations_io import transient_dataset

        return transient_dataset(self)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> TransientFluctuations:
        """The covariances of :meth:`to_xarray` (checked; errors name ``path``)."""
        from solvers.fluctuations_io import read_transient

        return read_transient(ds, path)


def transient_fluctuations(solution: Any, *, substeps: int = 1,
                           observables: Sequence[str] = OBSERVABLES) -> TransientFluctuations:
    """n·Cov of the empirical measure along ``solution`` (a :class:`solvers.Solution`).

    Integrates ``dC/dt = A(t) C + C A(t)ᵀ + Q(t)`` by Crank–Nicolson (second order, like the
    BDF2 solver) from ``C(t_0) = diag(p_0) − p_0 p_0ᵀ`` per population (iid initial agents),
    with ``A, Q`` linearised at the saved frames and linearly interpolated in time between them
    for ``substeps`` steps per interval. Save frames densely enough to resolve ``A(t)``.
    """
    from solvers.solution import Solution

    if not isinstance(solution, Solution):
        bad_type("solution", solution, "a solvers.Solution (from solvers.solve)")
    substeps = check_int("substeps", substeps, minimum=1)
    names = _observables(observables)
    model, grid = solution.model, solution.grid
    P, M = model.P, grid.cells
    check_size(P * M)
    start = _time.perf_counter()
    gmap = GibbsMap(numeric(model), grid, solution.gamma)
    V = zero_mass_basis(P, M)
    t, rho, m = solution.t, solution.rho, solution.m
    systems = [noise_system(gmap, rho[0], m[0], float(t[0]), V)]
    C = multinomial(systems[0].masses, P)
    covs = np.empty((t.size, P * M, P * M))
    covs[0] = C
    for k in range(1, t.size):
        end = noise_system(gmap, rho[k], m[k], float(t[k]), V)
        begin = systems[-1]
        dt = (t[k] - t[k - 1]) / substeps
        prev = begin
        for s in range(1, substeps + 1):
            w = s / substeps
            nxt = end if s == substeps else _blend(begin, end, w)
            C = lyapunov_step(C, prev, nxt, dt)
            prev = nxt
        covs[k] = C
        systems = [end]
    cov, var = {}, {}
    for name in names:
        W = systems[0].psi if name == "m" else systems[0].x
        cov[name] = np.einsum("ia,tij,jb->tab", W, covs, W)
        var[name] = np.diagonal(cov[name], axis1=1, axis2=2).copy()
    return TransientFluctuations(model=model, gamma=solution.gamma, t=t.copy(), x=grid.x.copy(),
                                 covariance=covs, cov=cov, var=var, edges=grid.edges.copy(),
                                 info={"substeps": substeps,
                                       "wall_time": _time.perf_counter() - start})


def _blend(a: Any, b: Any, w: float) -> Any:
    from solvers.lyapunov import NoiseSystem

    return NoiseSystem(A=(1 - w) * a.A + w * b.A, Q=(1 - w) * a.Q + w * b.Q, basis=a.basis,
                       psi=a.psi, x=a.x, masses=(1 - w) * a.masses + w * b.masses)
