r"""The n-agent network (docs/mathematics.md §1): exact O(n) mean-field coupling at every step.

Agent ``i`` of population ``p``:

.. math::
    dX_i = \Big[f_p(X_i) - \gamma \sum_j g_{pj}\, \Phi_{pj}(X_i)\, m_j\Big] dt + \sigma_p\, dW_i,
    \qquad m_q = \frac{1}{n_q}\sum_{k \in q} \Psi_q(X_k),

``j`` over the populations, then the external inputs (frozen moments ``m_j(t)``). The coupling is
separable, so each step costs O(n): the moments are summed while the agents move (for
``"em"`` those of the new states, for ``"ou"`` those of the agents after its intrinsic-drift
sub-step). The moments (and the external inputs' ``m_j(t)``, taken at the start of the step) are
frozen over a step. Schemes and their orders: :mod:`solvers.network_kernels`. Agents are
processed in fixed chunks, each with its own noise stream, so memory is the state vector plus a
few MiB (n = 10⁷ per population fits in 2 GiB) and a run is bit-identical for any thread count.
"""

from __future__ import annotations

import time as _time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from meanfield.errors import ResolutionWarning, bad_type, bad_value, check_finite_number, check_int
from meanfield.model import Model
from meanfield.numeric import NumericModel, numeric
from solvers.grid import Grid
from solvers.network_kernels import (
    CHUNK,
    NumpyPopulation,
    drift_fraction,
    noise_streams,
    numba_advance,
    numba_available,
    numba_drift,
    numba_kernel,
    numba_relax,
    numba_streams,
    numpy_advance,
    numpy_drift,
    numpy_population,
    numpy_relax,
    population_expressions,
)
from solvers.network_statistics import readout_sum, snapshot

SCHEMES = ("em", "ou")
BOUNDARIES = ("reflect", "none")
DEFAULT_BINS = 200
DEFAULT_SAVES = 101
INITIAL_CELLS = 4000
PARALLEL_MIN = 200_000
"""Agents per population from which the numba kernel runs on threads (below, start-up costs win)."""
EM_STABILITY = 2.0
"""Euler–Maruyama on ``dx = −κ x dt + σ dW`` is stable iff ``κΔt < 2`` (factor ``1 − κΔt``)."""
EM_REFUSE = 1.0
"""``κΔt`` above which ``scheme="em"`` is refused (the factor ``1 − κΔt`` turns negative and
the stationary variance ``σ²/(κ(2 − κΔt))`` is more than twice the exact ``σ²/(2κ)``)."""
EM_CHECK_EVERY = 64
"""Steps between the checks of ``κΔt`` of ``scheme="em"`` when the coupling is not affine (the
rate then needs a pass over the agents); affine couplings are checked at every step (a moment
or an external input rising between saved times can push the scheme past its stability
limit, and reflection at the walls would keep the wrong states finite)."""
EM_WARN = 0.2
"""``κΔt`` above which ``scheme="em"`` warns: variance bias ``κΔt/(2 − κΔt)`` above 11 %."""


def _numba_threads(threads: int | None) -> int:
    """Threads the numba kernels will use: numba's current count, or ``threads`` capped by it."""
    import numba

    if threads is None:
        return int(numba.get_num_threads())
    return min(threads, int(numba.config.NUMBA_NUM_THREADS))


@dataclass(frozen=True, eq=False)
class NetworkResult:
    """A network run: per saved time ``t`` (ns,) and population, ``m``, ``mean``, ``var``,
    ``balance_residual`` (ns, P) — ``∫|h_p| dμ_n``, the distance to the balance manifold — and
    ``rho`` (ns, P, B), empirical densities (histograms) on the cells ``edges`` (B+1,). ``states`` holds
    the final agent states (one array per population); ``info`` the run's diagnostics.
    """

    model: Model
    gamma: float
    n: tuple[int, ...]
    dt: float
    scheme: str
    seed: int
    t: np.ndarray
    m: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    balance_residual: np.ndarray
    edges: np.ndarray
    rho: np.ndarray
    states: tuple[np.ndarray, ...]
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return self.model.names

    @property
    def x(self) -> np.ndarray:
        """Centres of the histogram cells."""
        return (self.edges[1:] + self.edges[:-1]) / 2

    steps = property(lambda self: int(self.info["steps"]), doc="Time steps taken.")

    @property
    def histogram(self) -> np.ndarray:
        """Deprecated name of ``rho``."""
        warnings.warn("NetworkResult.histogram is deprecated; use rho", DeprecationWarning, 2)
        return self.rho

    def to_xarray(self) -> Any:
        """An ``xarray.Dataset`` (dims t, population, x; final states padded with NaN)."""
        from solvers.datasets import build_dataset

        per_t = ("t", "population")
        final = np.full((len(self.n), max(self.n)), np.nan)
        for p, s in enumerate(self.states):
            final[p, : s.size] = s
        data = {"m": (per_t, self.m), "mean": (per_t, self.mean), "var": (per_t, self.var),
                "balance_residual": (per_t, self.balance_residual),
                "rho": (("t", "population", "x"), self.rho), "edges": (("edge",), self.edges),
                "n": (("population",), np.array(self.n)), "final_states": (("population", "agent"), final)}
        coords = {"t": (("t",), self.t), "population": (("population",), list(self.names)),
                  "x": (("x",), self.x)}
        options = {"n": list(self.n), "dt": self.dt, "scheme": self.scheme, "seed": self.seed}
        return build_dataset("NetworkResult", data=data, coords=coords, model=self.model,
                             gamma=self.gamma, solver="simulate_network", options=options,
                             info=self.info, attrs=options)

    def save(self, path: str | PathLike[str]) -> None:
        """Write :meth:`to_xarray` as NetCDF (read back with :func:`solvers.load`)."""
        self.to_xarray().to_netcdf(path)

    @classmethod
    def from_xarray(cls, ds: Any, path: Any = "<dataset>") -> NetworkResult:
        """The run of :meth:`to_xarray` (every array checked; errors name ``path``)."""
        from solvers.io import read_network

        return read_network(ds, path)

    def __repr__(self) -> str:
        return (f"NetworkResult(gamma={self.gamma:g}, n={list(self.n)}, dt={self.dt:g}, "
                f"scheme={self.scheme!r}, steps={self.info.get('steps')}, "
                f"final mean={np.round(self.mean[-1], 5).tolist()}, "
                f"var={np.round(self.var[-1], 6).tolist()})")


# ------------------------------------------------------------------------------ checks
def _counts(n: Any, P: int) -> tuple[int, ...]:
    if isinstance(n, (str, bytes)):
        bad_type("n", n, "an int or one int per population")
    if isinstance(n, Sequence) or isinstance(n, np.ndarray):
        values = list(n)
        if len(values) != P:
            bad_value("n", n, f"an int or {P} ints (one per population)")
        return tuple(check_int("n", v, minimum=1) for v in values)
    return (check_int("n", n, minimum=1),) * P


def _edges(bins: Any, domain: tuple[float, float]) -> np.ndarray:
    if bins is None:
        bins = DEFAULT_BINS
    if isinstance(bins, Grid):
        return np.array(bins.edges, dtype=float)
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        cells = check_int("bins", bins, minimum=1)
        return np.linspace(domain[0], domain[1], cells + 1)
    try:
        edges = np.asarray(bins, dtype=float)
    except (TypeError, ValueError):
        bad_type("bins", bins, "an int, a solvers.Grid or increasing edges")
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.isfinite(edges)) or np.any(
            np.diff(edges) <= 0):
        bad_value("bins", bins, "an int >= 1, a Grid, or >= 2 finite increasing edges")
    return edges


def _save_steps(save_at: Any, t_final: float, steps: int, dt: float) -> np.ndarray:
    if save_at is None:
        times = np.linspace(0.0, t_final, DEFAULT_SAVES)
    else:
        try:
            times = np.atleast_1d(np.asarray(save_at, dtype=float))
        except (TypeError, ValueError):
            bad_type("save_at", save_at, "a sequence of times")
        if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)):
            bad_value("save_at", save_at, "a non-empty 1-D sequence of finite times")
        if np.any(times < 0) or np.any(times > t_final * (1 + 1e-12)):
            bad_value("save_at", save_at, f"times in [0, t_final={t_final:g}]")
    return np.unique(np.clip(np.rint(times / dt).astype(np.int64), 0, steps))


def sample_density(edges: np.ndarray, density: np.ndarray, count: int,
                   rng: np.random.Generator) -> np.ndarray:
    """``count`` exact draws from the cell-wise constant density ``density`` on ``edges``."""
    weights = np.maximum(np.asarray(density, dtype=float), 0.0) * np.diff(edges)
    total = weights.sum()
    if not np.isfinite(total) or total <= 0:
        bad_value("initial", density, "densities with a positive, finite mass")
    cdf = np.concatenate([[0.0], np.cumsum(weights) / total])
    return np.interp(rng.random(count), cdf, edges)


def _initial_states(model: Model, nm: NumericModel, initial: Any, counts: tuple[int, ...],
                    rng: np.random.Generator) -> list[np.ndarray]:
    P = model.P
    if initial is None:
        a, b = model.domain
        edges = np.linspace(a, b, INITIAL_CELLS + 1)
        centres = (edges[1:] + edges[:-1]) / 2
        return [sample_density(edges, nm.initial[p](centres), counts[p], rng) for p in range(P)]
    if hasattr(initial, "rho") and hasattr(initial, "edges") and not isinstance(initial,
                                                                               NetworkResult):
        rho = np.asarray(initial.rho, dtype=float)
        if rho.shape != (P, np.asarray(initial.edges).size - 1):
            bad_value("initial", initial, f"densities of shape (P={P}, cells) such as a "
                      "StationaryState")
        return [sample_density(np.asarray(initial.edges, float), rho[p], counts[p], rng)
                for p in range(P)]
    if isinstance(initial, NetworkResult):
        initial = initial.states
    if isinstance(initial, (str, bytes)) or not isinstance(initial, (Sequence, np.ndarray)):
        bad_type("initial", initial, "None, a StationaryState, a NetworkResult, or P arrays of "
                 "agent states")
    if len(initial) != P:
        bad_value("initial", initial, f"{P} arrays of agent states (one per population)")
    out = []
    for p, values in enumerate(initial):
        arr = np.array(values, dtype=float).ravel()
        if arr.size != counts[p]:
            bad_value("initial", f"{arr.size} states for population {p}",
                      f"n[{p}]={counts[p]} states")
        if not np.all(np.isfinite(arr)):
            bad_value("initial", f"population {p}", "finite agent states")
        out.append(arr)
    return out


def _em_stiffness(pop: NumpyPopulation, values: np.ndarray, c: np.ndarray) -> float:
    """``max(0, max_i κ(x_i))``, ``κ = Σ_j c_j Φ_pj'``, the coupling's rate (``c`` with ``γ``)."""
    if pop.expressions.affine:
        return max(0.0, float(pop.stiffness(np.zeros(1), c)[0]))
    return max([0.0, *(float(np.max(pop.stiffness(values[s:s + CHUNK], c)))
                       for s in range(0, values.size, CHUNK))])


def _check_em_step(kappa: np.ndarray, dt: float, now: float, *, refuse_only: bool = False
                   ) -> None:
    """Refuse (``κΔt > EM_REFUSE``) or warn about (``κΔt > EM_WARN``; not when ``refuse_only``)
    an Euler–Maruyama step.

    ``κ``: the largest coupling rate over the populations (docs/mathematics.md §11). The
    stationary variance of EM on a linear drift of rate ``κ`` is ``σ²/(κ(2 − κΔt))``: relative
    bias ``κΔt/(2 − κΔt)``, unstable for ``κΔt ≥ 2``.
    """
    rate = float(np.max(kappa))
    if not rate * dt > (EM_REFUSE if refuse_only else EM_WARN):
        return
    u = rate * dt
    where = (f"scheme='em' at t={now:g} (coupling rate kappa = {rate:.4g}, kappa*dt = {u:.4g})")
    if u > EM_REFUSE:
        bad_value("dt", dt, f"dt <= {EM_REFUSE / rate:.4g} = 1/kappa for {where}: "
                  f"Euler-Maruyama is unstable for kappa*dt >= {EM_STABILITY:g} (largest stable "
                  f"dt {EM_STABILITY / rate:.4g}) and beyond kappa*dt = 1 overshoots the balance "
                  "point every step (variance more than doubled); or use scheme='ou', exact for "
                  "this stiff linear part at any dt")
    warnings.warn(f"{where}: the stationary variance of Euler-Maruyama is biased by "
                  f"kappa*dt/(2 - kappa*dt) = {u / (2 - u):.1%}; use dt <= {0.02 / rate:.3g} "
                  "for 1 % or scheme='ou'", ResolutionWarning, stacklevel=3)


def _check_finite(values: np.ndarray, dt: float, now: float) -> None:
    if not np.all(np.isfinite(values)):
        bad_value("dt", dt, f"a smaller step: the agents diverged (non-finite states) by t={now:g}")


# ------------------------------------------------------------------------------ front door
def simulate_network(model: Model, *, gamma: float, n: int | Sequence[int], t_final: float,
                     dt: float, seed: int, initial: Any = None, scheme: str = "em",
                     save_at: Sequence[float] | None = None, bins: Any = None,
                     boundary: str = "reflect", fast: bool | None = None,
                     threads: int | None = None) -> NetworkResult:
    """Simulate ``n`` agents per population up to ``t_final`` with steps of (at most) ``dt``.

    Parameters
    ----------
    gamma : coupling strength ``γ >= 0``
    n : agents per population (an int, or one int per population)
    t_final, dt : horizon and step; the step used is ``t_final / ceil(t_final/dt)``
    seed : int seeding every random draw (same seed → identical result, whatever the path's
        thread count): ``SeedSequence(seed)`` spawns the initial sampling and, per population,
        one noise stream per chunk of agents (:func:`solvers.network_kernels.noise_streams`)
    initial : None (sample the model's initial densities), a ``StationaryState`` (sample its
        densities), a ``NetworkResult`` (continue from its final states) or P arrays of states
    scheme : ``"em"`` (Euler–Maruyama; refused with ``ValueError`` when ``κΔt > 1`` (checked at
        every step for affine couplings, every ``EM_CHECK_EVERY`` steps otherwise) and warned
        about (``ResolutionWarning``) when ``κΔt > 0.2`` at the start or a saved time, ``κ`` the
        coupling's rate; stable only for ``κΔt < 2``) or ``"ou"`` (splitting: the
        intrinsic drift explicitly, then the coupling and the noise by the exact
        Ornstein–Uhlenbeck transition of the part linear in x, moments of the drifted agents
        frozen; no stiff variance bias); both weak order 1 (:mod:`solvers.network_kernels`)
    save_at : times at which statistics are recorded (snapped to the step grid; default 101
        evenly spaced times)
    bins : histogram cells (an int on the domain, edges, or a Grid; default 200 cells)
    boundary : ``"reflect"`` at the domain ends (zero flux, as the PDE) or ``"none"``
    fast : use the numba kernels (None: when numba imports; True: require them; False: numpy)
    threads : numba threads for populations of at least ``PARALLEL_MIN`` agents (default:
        numba's default; 1 runs serially)
    """
    if not isinstance(model, Model):
        bad_type("model", model, "a meanfield.Model")
    gamma = check_finite_number("gamma", gamma, nonnegative=True)
    counts = _counts(n, model.P)
    t_final = check_finite_number("t_final", t_final, positive=True)
    dt = check_finite_number("dt", dt, positive=True)
    if dt > t_final:
        bad_value("dt", dt, f"a step <= t_final={t_final:g}")
    seed = check_int("seed", seed, minimum=0)
    if scheme not in SCHEMES:
        bad_value("scheme", scheme, f"one of {SCHEMES}")
    if boundary not in BOUNDARIES:
        bad_value("boundary", boundary, f"one of {BOUNDARIES}")
    if fast is not None and not isinstance(fast, bool):
        bad_type("fast", fast, "None, True or False")
    if threads is not None:
        threads = check_int("threads", threads, minimum=1)
    use_numba = numba_available() if fast is None else fast
    if use_numba and not numba_available():
        bad_value("fast", fast, "False or None: numba is not installed (the 'fast' extra)")
    steps = int(np.ceil(t_final / dt * (1 - 1e-12)))
    step = t_final / steps
    saves = _save_steps(save_at, t_final, steps, step)
    edges = _edges(bins, model.domain)

    started = _time.perf_counter()
    root = np.random.SeedSequence(seed)
    initial_seed, *population_seeds = root.spawn(1 + model.P)
    rng = np.random.default_rng(initial_seed)
    nm = numeric(model)
    states = _initial_states(model, nm, initial, counts, rng)
    streams = [noise_streams(population_seeds[p], counts[p]) for p in range(model.P)]
    expressions = population_expressions(model)
    pops = [numpy_population(e) for e in expressions]
    bounds = model.domain if boundary == "reflect" else None
    if bounds is not None:
        states = [np.clip(s, *bounds) for s in states]
    kernels, used_threads, previous_threads = None, 1, None
    if use_numba:
        wanted = _numba_threads(threads)
        kernels = [numba_kernel(e, wanted > 1 and counts[p] >= PARALLEL_MIN)
                   for p, e in enumerate(expressions)]
        used_threads = wanted if max(counts) >= PARALLEL_MIN else 1
        if threads is not None:
            import numba

            previous_threads = numba.get_num_threads()
            numba.set_num_threads(wanted)
        streams = [numba_streams(s) for s in streams]

    records: list[tuple[np.ndarray, ...]] = []
    save_set = {int(s) for s in saves}
    affine = all(pop.expressions.affine for pop in pops)  # κ independent of x: cheap to check
    P = model.P
    m = np.array([readout_sum(pops[p], states[p]) / counts[p] for p in range(P)])
    stepping = cpu = 0.0

    def drift_all(cs: list[np.ndarray], part: str) -> np.ndarray:
        """The ``"ou"`` drift pass of every population (``part``: see ``drift_fraction``)."""
        out = np.empty(P)
        for p in range(P):
            fraction = drift_fraction(pops[p], cs[p], step, part)
            out[p] = (numba_drift(kernels[p], states[p], cs[p], step, fraction, bounds)
                      if kernels is not None else
                      numpy_drift(pops[p], states[p], step, bounds, cs[p], fraction))
        return out

    # "ou": the states are read out (x) at saved times; in between they are the drifted agents y,
    # each relaxation being fused with the drift that follows it (solvers.network_kernels)
    readable = True
    cs = [gamma * nm.g[p] * np.concatenate([m, nm.external_m(0.0)]) for p in range(P)]
    sums = np.empty(P)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(steps + 1):
                now = k * step
                external = nm.external_m(now)
                if k in save_set:
                    records.append(snapshot(pops, states, nm.g, external, edges))
                    _check_finite(records[-1][1], dt, now)
                if scheme == "em" and (k == 0 or k in save_set or k % EM_CHECK_EVERY == 0
                                       or affine):
                    c_now = gamma * nm.g * np.concatenate([m, external])[None, :]
                    _check_em_step(np.array([_em_stiffness(pops[p], states[p], c_now[p])
                                             for p in range(P)]), step, now,
                                   refuse_only=not (k == 0 or k in save_set))
                if k == steps:
                    break
                tick, tock = _time.perf_counter(), _time.process_time()
                if scheme == "ou":
                    if readable:  # x → y: the part 1 − θ of the drift left at the read-out
                        sums = drift_all(cs, "lead")
                    # relaxation (coupling + noise) with the moments of y frozen, then the drift
                    # of the next step (full) or up to the read-out point (a fraction θ)
                    mj = np.concatenate([sums / np.array(counts), external])
                    cs = [gamma * nm.g[p] * mj for p in range(P)]
                    readable = k + 1 in save_set or k + 1 == steps
                    for p in range(P):
                        fraction = drift_fraction(pops[p], cs[p], step,
                                                  "tail" if readable else "full")
                        if kernels is not None:
                            sums[p] = numba_relax(pops[p], kernels[p], states[p], cs[p], step,
                                                  bounds, streams[p], fraction)
                        else:
                            sums[p] = numpy_relax(pops[p], states[p], cs[p], step, bounds,
                                                  streams[p], fraction)
                else:
                    mj = np.concatenate([m, external])
                    sums = np.empty(P)
                    for p in range(P):
                        c = gamma * nm.g[p] * mj
                        if kernels is not None:
                            sums[p] = numba_advance(pops[p], kernels[p], states[p], c, step,
                                                    bounds, streams[p])
                        else:
                            sums[p] = numpy_advance(pops[p], states[p], c, step, bounds,
                                                    streams[p])
                m = sums / np.array(counts)
                stepping += _time.perf_counter() - tick
                cpu += _time.process_time() - tock
                _check_finite(m, dt, now + step)
    finally:
        if previous_threads is not None:
            import numba

            numba.set_num_threads(previous_threads)
    _check_finite(np.array([np.sum(s) for s in states]), dt, t_final)
    fields = [np.array(v) for v in zip(*records, strict=True)]
    info = {"steps": steps, "fast": bool(use_numba), "threads": used_threads, "boundary": boundary,
            "wall_time": _time.perf_counter() - started, "stepping_time": stepping,
            "stepping_cpu_time": cpu,
            "agent_steps": int(steps * sum(counts))}
    return NetworkResult(model=model, gamma=gamma, n=counts, dt=step, scheme=scheme, seed=seed,
                         t=saves * step, m=fields[0], mean=fields[1], var=fields[2],
                         balance_residual=fields[3], edges=edges, rho=fields[4],
                         states=tuple(states), info=info)
