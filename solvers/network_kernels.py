r"""Per-step kernels of the n-agent network: a plain numpy path and a numba twin.

An agent of population ``p`` moves by one step of length ``Δt`` with the coefficients
``c_j = γ g_pj m_j`` (``j`` over the populations, then the external inputs) frozen over the step:

.. math::
    h(x) = \sum_j c_j \Phi_{pj}(x), \qquad \kappa(x) = h'(x) = \sum_j c_j \Phi_{pj}'(x).

* ``"em"`` (Euler–Maruyama, one pass, moments of ``x_n``):
  ``x ← x + Δt (f_p(x) − h(x)) + σ_p \sqrt{Δt}\, ξ``. Weak order 1; the stationary variance of a
  stiff linear part of rate ``κ`` is biased by ``≈ κΔt/2`` (relative); unstable once ``κΔt > 2``.
* ``"ou"`` (splitting; moments of the drifted agents):

  1. intrinsic drift, explicit: ``y = z + Δt f_p(z)``, and the moments ``m_q`` of ``y``;
  2. coupling and noise with the coefficients ``c`` of those moments frozen: the part of ``h``
     linear about ``y`` and the noise exactly (an Ornstein–Uhlenbeck transition), the rest of
     ``h`` frozen at ``y`` (exponential Euler):
     ``z⁺ = y − φ_1(κ(y))\, h(y) + σ_p \sqrt{φ_1(2κ(y))}\, ξ``, ``φ_1(κ) = (1 − e^{−κΔt})/κ``
     (``κ`` clipped at 0). For affine ``Φ`` (``κ`` constant, ``h = κy − a``) this is the exact
     transition ``z⁺ = e^{−κΔt} y + φ_1(κ)\, a + …`` of the frozen linear SDE.

  The state reported (saved statistics, final states) is read a fraction ``θ`` into the next
  drift, ``x = z + θ(κΔt)\, Δt f_p(z)`` with ``θ(u) = 1/u − 1/(e^u − 1)`` (:func:`output_fraction`),
  so one step from reported state to reported state is ``F_{(1−θ)Δt} ∘ O_{Δt} ∘ F_{θΔt}``: Strang
  (``θ = 1/2``) as ``κΔt → 0``, Lie (``θ → 0``) as ``κΔt → ∞``. ``θ`` is the value that makes
  the fixed point of a constant drift ``f`` against a frozen linear coupling exact,
  ``x − c = f/κ``, for every ``κΔt`` (plain Lie gives ``Δt f/(e^{κΔt} − 1)``). Between saves the
  two partial drifts are one drift of ``Δt``, and each relaxation is fused with the drift that
  follows it (agent by agent), so a step is one pass over the agents, plus one per saved time.

  Weak order 1 (the frozen moments are first order; measured ≈ 1), with error constants that do
  not grow with ``κ``. The Ornstein–Uhlenbeck part has the exact transition variance
  ``σ²φ_1(2κ)`` for every ``κΔt``: the stationary variance of a linear drift is biased by
  ``O(Δt·|f'|)`` at most (``5e-6`` relative on ``linear_ou`` at ``γ = 1000, Δt = 1e-4``, where
  Euler–Maruyama is off by ``κΔt/2 ≈ 8 %``). Because the moments are those of the drifted
  agents, a coupling that leaves the population mean invariant (``h`` vanishing at the mean,
  e.g. ``h = κ(x − ⟨x⟩)``) does not slow the intrinsic drift of the mean. The unsplit
  exponential Euler step ``x + φ_1(κ)(f − h) + …`` (moments of ``x_n``, the scheme used before)
  moves such a mean by ``φ_1(κ) f`` instead of ``Δt f``, a relative error ``1 − φ_1/Δt``
  (≈ ``κΔt/2`` for small ``κΔt``, 37 % at ``κΔt = 1``, 90 % at ``κΔt = 10``). What stays first
  order with a model-dependent constant is the moments' own feedback (how ``c`` moves with the
  agents within a step): the lag behind a moving balance point is ``O(Δt)``, in both schemes.
  Also, with frozen moments the noise of a neutral mode (the mean, for ``h = κ(x − ⟨x⟩)``) has
  per-step variance ``σ²φ_1(2κ)/n`` instead of ``σ²Δt/n``: the O(n^{-1/2}) fluctuations of such
  a mean are under-resolved once ``κΔt ≳ 1``.

After each move (each pass of ``"ou"``), reflection at the domain ends
(``boundary="reflect"``) gives the zero-flux condition of the PDE. The passes that produce the
next moments return ``Σ_i Ψ_p(x_i)`` over the moved agents, so the moments cost no extra pass.
Both paths evaluate the same SymPy expressions (lambdified once) and draw ``ξ`` from the same
numpy generators: the agents are cut into fixed chunks of :data:`CHUNK`, and chunk ``k`` of a
population has its own stream (``numpy.random.PCG64DXSM`` spawned from one
``numpy.random.SeedSequence``, :func:`noise_streams`), consumed agent by agent in index order
(the numba kernels receive the ``Generator`` objects). Each pass returns the chunk sums of
``Ψ`` added in chunk order. So a run is bit-identical whatever the number of threads, and the
two paths take the same normals (they differ by the round-off of their compiled functions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from meanfield.numeric import PopulationExpressions
from meanfield.numeric import population_expressions as population_expressions  # re-exported

CHUNK = 1 << 16
"""Agents per numpy chunk (bounds the temporaries: a few MiB whatever n)."""


def _numpy_fn(expressions: PopulationExpressions, part: str) -> Callable[..., np.ndarray]:
    fn = expressions.compiled(part)

    def call(values: np.ndarray, *c: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", under="ignore"):
            out = fn(values, *c)
        return np.broadcast_to(np.asarray(out, dtype=float), values.shape)

    return call


@dataclass(frozen=True, eq=False)
class NumpyPopulation:
    """Vectorised callables of one population for the numpy path."""

    expressions: PopulationExpressions
    drift: Callable[..., np.ndarray]
    coupling: Callable[..., np.ndarray]
    stiffness: Callable[..., np.ndarray]
    readout: Callable[..., np.ndarray]


def numpy_population(expressions: PopulationExpressions) -> NumpyPopulation:
    return NumpyPopulation(expressions, _numpy_fn(expressions, "drift"),
                           _numpy_fn(expressions, "coupling"),
                           _numpy_fn(expressions, "stiffness"),
                           _numpy_fn(expressions, "readout"))


def step_coefficients(kappa: np.ndarray | float, dt: float) -> tuple[Any, Any]:
    """``(φ_1, s)`` of the exponential step: ``φ_1 = (1−e^{−κΔt})/κ``, ``s² = (1−e^{−2κΔt})/(2κ)``.

    Both tend to ``Δt`` as ``κ → 0`` (``κ`` is clipped at 0: no anti-damping is integrated).
    """
    kappa = np.maximum(np.asarray(kappa, dtype=float), 0.0)
    small = kappa * dt < 1e-12
    safe = np.where(small, 1.0, kappa)
    phi1 = np.where(small, dt, -np.expm1(-safe * dt) / safe)
    var = np.where(small, dt, -np.expm1(-2.0 * safe * dt) / (2.0 * safe))
    return phi1, np.sqrt(var)


def output_fraction(kappa: np.ndarray | float, dt: float) -> Any:
    """``θ(u) = 1/u − 1/(e^u − 1)``, ``u = κΔt``: where in the drift the ``"ou"`` output is read.

    ``θ → 1/2`` as ``u → 0`` (Strang), ``θ ≈ 1/u → 0`` as ``u → ∞`` (Lie); ``κ`` clipped at 0.
    With it, a constant drift ``f`` against a frozen linear coupling of rate ``κ`` has the
    exact offset ``f/κ`` at the scheme's fixed point, whatever ``κΔt``.
    """
    u = np.maximum(np.asarray(kappa, dtype=float), 0.0) * dt
    small = u < 1e-4
    safe = np.where(small, 1.0, u)
    return np.where(small, 0.5 - u / 12.0, 1.0 / safe - 1.0 / np.expm1(safe))


LEAD, TAIL = -1.0, -2.0
"""Flags of :func:`numpy_drift`: the drift fraction ``1 − θ(κ(x)Δt)`` or ``θ(κ(x)Δt)`` per agent."""


def drift_fraction(pop: NumpyPopulation, c: np.ndarray, dt: float, part: str) -> float:
    """The fraction of ``Δt`` of a partial drift pass: ``"full"`` 1, ``"lead"`` ``1 − θ``,
    ``"tail"`` ``θ`` (:func:`output_fraction`); a flag (``LEAD``/``TAIL``) when ``κ`` depends
    on ``x`` (``θ`` then per agent)."""
    if part == "full":
        return 1.0
    if not pop.expressions.affine:
        return LEAD if part == "lead" else TAIL
    theta = float(output_fraction(float(pop.stiffness(np.zeros(1), c)[0]), dt))
    return 1.0 - theta if part == "lead" else theta


def reflect(values: np.ndarray, lo: float, hi: float) -> None:
    """Reflect ``values`` in place at ``lo`` and ``hi`` (then clip what overshot twice)."""
    np.copyto(values, 2.0 * lo - values, where=values < lo)
    np.copyto(values, 2.0 * hi - values, where=values > hi)
    np.clip(values, lo, hi, out=values)


def step_constants(pop: NumpyPopulation, c: np.ndarray, dt: float,
                   scheme: str) -> tuple[float, float]:
    """``(φ, s)`` of the coupling move ``x ← x + φ b(x) + s ξ`` when they do not depend on ``x``.

    ``"em"``: ``(Δt, σ√Δt)`` with ``b = f − h``; ``"ou"`` (its second sub-step, ``b = −h``) with
    affine ``Φ``: ``(φ_1(κ), σ√φ_1(2κ))``; ``"ou"`` otherwise: ``(−1, 0)``, a flag that ``κ(x)``
    is evaluated per agent.
    """
    sigma = pop.expressions.sigma
    if scheme == "em":
        return float(dt), float(sigma * np.sqrt(dt))
    if not pop.expressions.affine:
        return -1.0, 0.0
    kappa = float(pop.stiffness(np.zeros(1), c)[0])
    phi1, s = step_coefficients(kappa, dt)
    return float(phi1), float(sigma * s)


def numpy_advance(pop: NumpyPopulation, states: np.ndarray, c: np.ndarray, dt: float,
                  bounds: tuple[float, float] | None,
                  streams: list[np.random.Generator]) -> float:
    """One Euler–Maruyama step of ``states`` (in place); return ``Σ Ψ(x)`` over the moved agents.

    ``streams``: one generator per chunk (:func:`noise_streams`)."""
    _, sd = step_constants(pop, c, dt, "em")
    total = 0.0
    noise = np.empty(min(CHUNK, states.size))
    for k, start in enumerate(range(0, states.size, CHUNK)):
        xs = states[start:start + CHUNK]
        xi = noise[: xs.size]
        streams[k].standard_normal(out=xi)
        xs += dt * (pop.drift(xs) - pop.coupling(xs, c)) + sd * xi
        if bounds is not None:
            reflect(xs, *bounds)
        total += float(np.sum(pop.readout(xs)))
    return total


def _drift_chunk(pop: NumpyPopulation, xs: np.ndarray, c: np.ndarray | None, dt: float,
                 fraction: float, bounds: tuple[float, float] | None) -> float:
    if fraction >= 0.0:
        length: Any = fraction * dt
    else:
        theta = output_fraction(pop.stiffness(xs, c), dt)
        length = (1.0 - theta if fraction == LEAD else theta) * dt
    xs += length * pop.drift(xs)
    if bounds is not None:
        reflect(xs, *bounds)
    return float(np.sum(pop.readout(xs)))


def numpy_drift(pop: NumpyPopulation, states: np.ndarray, dt: float,
                bounds: tuple[float, float] | None, c: np.ndarray | None = None,
                fraction: float = 1.0) -> float:
    """Sub-step 1 of ``"ou"``: ``x ← x + λΔt f(x)`` in place; return ``Σ Ψ`` of the moved agents.

    ``λ = fraction`` (:func:`drift_fraction`), or per agent from ``κ(x)`` (coefficients ``c``)
    when ``fraction`` is the flag ``LEAD`` or ``TAIL``.
    """
    return sum(_drift_chunk(pop, states[s:s + CHUNK], c, dt, fraction, bounds)
               for s in range(0, states.size, CHUNK))


def numpy_relax(pop: NumpyPopulation, states: np.ndarray, c: np.ndarray, dt: float,
                bounds: tuple[float, float] | None, streams: list[np.random.Generator],
                fraction: float = 1.0) -> float:
    """Sub-step 2 of ``"ou"``, ``x ← x − φ_1(κ) h(x) + σ√φ_1(2κ) ξ`` (``c`` frozen), fused with
    the next drift pass (:func:`numpy_drift` with ``fraction``) agent by agent; in place.
    Returns ``Σ Ψ`` after the drift."""
    phi1, sd = step_constants(pop, c, dt, "ou")
    noise = np.empty(min(CHUNK, states.size))
    total = 0.0
    for k, start in enumerate(range(0, states.size, CHUNK)):
        xs = states[start:start + CHUNK]
        xi = noise[: xs.size]
        streams[k].standard_normal(out=xi)
        if phi1 >= 0.0:
            xs += sd * xi - phi1 * pop.coupling(xs, c)
        else:
            phi, s = step_coefficients(pop.stiffness(xs, c), dt)
            xs += pop.expressions.sigma * s * xi - phi * pop.coupling(xs, c)
        if bounds is not None:
            reflect(xs, *bounds)
        total += _drift_chunk(pop, xs, c, dt, fraction, bounds)
    return total


# ----------------------------------------------------------------------------- numba path
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


NOISE_BIT_GENERATOR = np.random.PCG64DXSM
"""numpy's bit generator of the noise streams (one stream per chunk of agents)."""


def chunk_count(n: int) -> int:
    """The number of chunks of :data:`CHUNK` agents covering ``n`` agents (at least 1)."""
    return max(1, -(-int(n) // CHUNK))


def noise_streams(seed: np.random.SeedSequence, n: int) -> list[np.random.Generator]:
    """One ``numpy.random.Generator`` per chunk of ``n`` agents, spawned from ``seed``.

    Chunk ``k`` (agents ``k·CHUNK … (k+1)·CHUNK − 1``) draws its normals, agent by agent and step
    by step, from stream ``k`` only, whichever path or thread processes it: the numbers do not
    depend on the thread count, and the numpy and numba paths draw the same ones.
    """
    return [np.random.Generator(NOISE_BIT_GENERATOR(child))
            for child in seed.spawn(chunk_count(n))]


def numba_streams(streams: list[np.random.Generator]) -> Any:
    """``streams`` as a ``numba.typed.List`` (numba draws from numpy Generators it is passed)."""
    from numba.typed import List

    return List(streams)


@lru_cache(maxsize=1)
def numba_math() -> dict[str, Any]:
    """Compiled replacements for slow scalar libm calls (``tanh``: ~4× faster than libm's).

    ``tanh v = 2/(1 + e^{−2v}) − 1``: absolute error below 3e-16 (what a moment sum needs),
    no overflow trouble (``e^{−2v} = ∞`` gives −1).
    """
    from numba import njit

    @njit(inline="always")
    def tanh(v: float) -> float:
        return 2.0 / (1.0 + np.exp(-2.0 * v)) - 1.0

    return {"tanh": tanh}


@dataclass(frozen=True, eq=False)
class NumbaKernels:
    """The compiled passes of one population (numba compiles each at its first call).

    ``em(states, c, dt, refl, lo, hi, streams, sd) -> Σ Ψ``: one Euler–Maruyama step;
    ``drift(states, c, dt, fraction, refl, lo, hi) -> Σ Ψ``: sub-step 1 of ``"ou"``;
    ``relax(states, c, dt, refl, lo, hi, streams, phi1, sd, fraction) -> Σ Ψ``: sub-step 2 of
    ``"ou"`` (``phi1 < 0``: ``κ(x)`` per agent) fused with the next drift pass. Every pass runs
    over the chunks of :data:`CHUNK` agents (threads take whole chunks); chunk ``k`` draws from
    ``streams[k]`` (:func:`numba_streams`); the chunk sums are added in chunk order.
    """

    em: Callable[..., float]
    drift: Callable[..., float]
    relax: Callable[..., float]


@lru_cache(maxsize=64)
def numba_kernel(expressions: PopulationExpressions, parallel: bool = False) -> NumbaKernels:
    """The compiled passes for one population (cached per expressions; threaded when ``parallel``)."""
    from numba import njit, prange

    replacements = numba_math()

    def jit(part: str) -> Any:
        return njit(expressions.compiled(part, modules=[replacements, "math"]), inline="always")

    drift = jit("drift")
    coupling = jit("coupling")
    stiffness = jit("stiffness")
    readout = jit("readout")
    sigma = float(expressions.sigma)
    lead = LEAD
    affine = expressions.affine  # a compile-time constant: the per-agent κ(x) branches vanish
    chunk = CHUNK

    @njit(inline="always")
    def ordered_sum(partial: Any) -> float:
        total = 0.0
        for k in range(partial.size):
            total += partial[k]
        return total

    @njit(inline="always")
    def bounce(v: float, refl: bool, lo: float, hi: float) -> float:
        if refl and (v < lo or v > hi):  # one well-predicted test in the common case
            if v < lo:
                v = 2.0 * lo - v
            if v > hi:
                v = 2.0 * hi - v
            v = min(max(v, lo), hi)
        return v

    @njit(inline="always")
    def relax_move(v: float, xi: float, c: Any, dt: float, phi1: float, sd: float) -> float:
        h = coupling(v, c)
        if affine or phi1 >= 0.0:
            return v - phi1 * h + sd * xi
        kappa = max(stiffness(v, c), 0.0)
        if kappa * dt < 1e-12:
            return v - dt * h + sigma * np.sqrt(dt) * xi
        return v + (np.expm1(-kappa * dt) / kappa) * h + sigma * np.sqrt(
            -np.expm1(-2.0 * kappa * dt) / (2.0 * kappa)) * xi

    @njit(parallel=parallel)
    def em(states: Any, c: Any, dt: float, refl: bool, lo: float, hi: float, streams: Any,
           sd: float) -> float:
        partial = np.empty(len(streams))
        for k in prange(len(streams)):
            start = np.int64(k) * chunk
            xi = streams[np.int64(k)].standard_normal(min(chunk, states.size - start))
            total = 0.0
            for i in range(start, start + xi.size):
                v = states[i]
                v = bounce(v + dt * (drift(v) - coupling(v, c)) + sd * xi[i - start], refl, lo, hi)
                states[i] = v
                total += readout(v)
            partial[k] = total
        return ordered_sum(partial)

    @njit(inline="always")
    def theta(v: float, c: Any, dt: float) -> float:
        u = max(stiffness(v, c), 0.0) * dt
        if u < 1e-4:
            return 0.5 - u / 12.0
        return 1.0 / u - 1.0 / np.expm1(u)

    @njit(inline="always")
    def drift_move(v: float, c: Any, dt: float, fraction: float, refl: bool, lo: float,
                   hi: float) -> float:
        if affine or fraction >= 0.0:
            length = fraction * dt
        elif fraction == lead:
            length = (1.0 - theta(v, c, dt)) * dt
        else:
            length = theta(v, c, dt) * dt
        return bounce(v + length * drift(v), refl, lo, hi)

    @njit(parallel=parallel)
    def intrinsic(states: Any, c: Any, dt: float, fraction: float, refl: bool, lo: float,
                  hi: float) -> float:
        chunks = max(1, -(-states.size // chunk))
        partial = np.empty(chunks)
        for k in prange(chunks):
            total = 0.0
            for i in range(np.int64(k) * chunk, min((np.int64(k) + 1) * chunk, states.size)):
                v = drift_move(states[i], c, dt, fraction, refl, lo, hi)
                states[i] = v
                total += readout(v)
            partial[k] = total
        return ordered_sum(partial)

    @njit(parallel=parallel)
    def relax(states: Any, c: Any, dt: float, refl: bool, lo: float, hi: float, streams: Any,
              phi1: float, sd: float, fraction: float) -> float:
        partial = np.empty(len(streams))
        for k in prange(len(streams)):
            start = np.int64(k) * chunk
            xi = streams[np.int64(k)].standard_normal(min(chunk, states.size - start))
            total = 0.0
            for i in range(start, start + xi.size):
                v = bounce(relax_move(states[i], xi[i - start], c, dt, phi1, sd), refl, lo, hi)
                v = drift_move(v, c, dt, fraction, refl, lo, hi)
                states[i] = v
                total += readout(v)
            partial[k] = total
        return ordered_sum(partial)

    return NumbaKernels(em, intrinsic, relax)


def _bounds(bounds: tuple[float, float] | None) -> tuple[bool, float, float]:
    lo, hi = bounds if bounds is not None else (-np.inf, np.inf)
    return bounds is not None, float(lo), float(hi)


def numba_advance(pop: NumpyPopulation, kernels: NumbaKernels, states: np.ndarray,
                  c: np.ndarray, dt: float, bounds: tuple[float, float] | None,
                  streams: Any) -> float:
    """The numba twin of :func:`numpy_advance` (``streams`` from :func:`numba_streams`)."""
    _, sd = step_constants(pop, c, dt, "em")
    return float(kernels.em(states, np.ascontiguousarray(c, dtype=float), float(dt),
                            *_bounds(bounds), streams, sd))


def numba_drift(kernels: NumbaKernels, states: np.ndarray, c: np.ndarray, dt: float,
                fraction: float, bounds: tuple[float, float] | None) -> float:
    """The numba twin of :func:`numpy_drift`."""
    return float(kernels.drift(states, np.ascontiguousarray(c, dtype=float), float(dt),
                               float(fraction), *_bounds(bounds)))


def numba_relax(pop: NumpyPopulation, kernels: NumbaKernels, states: np.ndarray,
                c: np.ndarray, dt: float, bounds: tuple[float, float] | None, streams: Any,
                fraction: float = 1.0) -> float:
    """The numba twin of :func:`numpy_relax` (``streams`` from :func:`numba_streams`)."""
    phi1, sd = step_constants(pop, c, dt, "ou")
    return float(kernels.relax(states, np.ascontiguousarray(c, dtype=float), float(dt),
                               *_bounds(bounds), streams, phi1, sd, float(fraction)))
