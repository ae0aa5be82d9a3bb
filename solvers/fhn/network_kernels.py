r"""One step of the FitzHugh–Nagumo network (exponential splitting): a numpy path and a numba twin.

Agents are stored population by population (``offsets[p]:offsets[p+1]``). One step of length
``Δt`` (see :mod:`solvers.fhn.network`):

1. intrinsic drift, ``v' = v + (v − v³/3 − w + I_p) Δt``, and ``w`` exactly with ``v`` frozen,
   ``w ← e^{−ε_p b_p Δt} w + ε_p φ₁(ε_p b_p)(v + a_p)``;
2. moments ``m_q`` of ``v'`` (mean of ``Ψ_q``), ``h_p(v) = K_p v − R_p`` from them;
3. coupling and noise exactly, ``v⁺ = e^{−λ_pΔt} v' + γ R_p φ₁(λ_p) + σ_p √φ₁(2λ_p) ξ``,
   ``λ_p = γ K_p``, ``φ₁(λ) = (1 − e^{−λΔt})/λ``.

Both paths take the same normal draws ``ξ`` (drawn by the caller from a
``numpy.random.Generator``), so they agree to round-off. The numba path fuses the passes and
works in place; the package works without numba.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from meanfield.fhn import ChemicalCoupling, FhnModel

ELECTRICAL, CHEMICAL = 0, 1


def phi1(rate: Any, dt: float) -> Any:
    """``(1 − e^{−rate·dt})/rate`` with the limit ``dt`` at ``rate = 0`` (arrays or scalars)."""
    rate = np.asarray(rate, dtype=float)
    safe = np.where(rate > 0, rate, 1.0)
    return np.where(rate > 0, -np.expm1(-safe * dt) / safe, dt)


@dataclass(frozen=True, eq=False)
class StepConstants:
    """Per-population constants of one step (arrays of shape (P,); ``g`` is (P, P))."""

    offsets: np.ndarray
    a: np.ndarray
    current: np.ndarray
    w_decay: np.ndarray
    w_gain: np.ndarray
    sigma: np.ndarray
    g: np.ndarray
    reversal: np.ndarray
    threshold: np.ndarray
    slope: np.ndarray
    kind: int

    @classmethod
    def build(cls, model: FhnModel, sizes: np.ndarray, dt: float) -> StepConstants:
        P = model.P
        rate = model.param("epsilon") * model.param("b")
        chemical = isinstance(model.coupling, ChemicalCoupling)
        zeros = np.zeros(P)
        return cls(offsets=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                   a=model.param("a"), current=model.param("current"),
                   w_decay=np.exp(-rate * dt), w_gain=model.param("epsilon") * phi1(rate, dt),
                   sigma=model.param("sigma"), g=np.array(model.coupling.g, dtype=float),
                   reversal=np.array(model.coupling.reversal) if chemical else zeros,
                   threshold=np.array(model.coupling.threshold) if chemical else zeros,
                   slope=np.array(model.coupling.slope) if chemical else zeros,
                   kind=CHEMICAL if chemical else ELECTRICAL)

    def arrays(self) -> tuple[Any, ...]:
        return (self.offsets, self.a, self.current, self.w_decay, self.w_gain, self.sigma, self.g,
                self.reversal, self.threshold, self.slope, self.kind)


def _coefficients(m: np.ndarray, g: np.ndarray, reversal: np.ndarray,
                  kind: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == ELECTRICAL:
        return g.sum(axis=1), g @ m
    return g @ m, g @ (reversal * m)


def step_numpy(v: np.ndarray, w: np.ndarray, xi: np.ndarray, c: StepConstants, gamma: float,
               dt: float) -> tuple[np.ndarray, np.ndarray]:
    """One exponential-splitting step; returns new ``(v, w)`` (the inputs are not modified)."""
    P = c.a.size
    v_half = np.empty_like(v)
    w_new = np.empty_like(w)
    m = np.empty(P)
    for p in range(P):
        part = slice(c.offsets[p], c.offsets[p + 1])
        vp, wp = v[part], w[part]
        v_half[part] = vp + (vp - vp**3 / 3 - wp + c.current[p]) * dt
        w_new[part] = c.w_decay[p] * wp + c.w_gain[p] * (vp + c.a[p])
        if c.kind == ELECTRICAL:
            m[p] = v_half[part].mean()
        else:
            m[p] = np.mean(0.5 * (1.0 + np.tanh(0.5 * c.slope[p] * (v_half[part] - c.threshold[p]))))
    K, R = _coefficients(m, c.g, c.reversal, c.kind)
    v_new = np.empty_like(v)
    for p in range(P):
        part = slice(c.offsets[p], c.offsets[p + 1])
        lam = gamma * K[p]
        v_new[part] = (np.exp(-lam * dt) * v_half[part] + gamma * R[p] * phi1(lam, dt)
                       + c.sigma[p] * np.sqrt(phi1(2 * lam, dt)) * xi[part])
    return v_new, w_new


def _step_loops(v, w, xi, offsets, a, current, w_decay, w_gain, sigma, g, reversal, threshold,
                slope, kind, gamma, dt):  # pragma: no cover - compiled by numba
    """The numba body of :func:`step_numpy` (in place)."""
    P = a.size
    m = np.zeros(P)
    for p in range(P):
        total = 0.0
        for i in range(offsets[p], offsets[p + 1]):
            vi = v[i]
            vh = vi + (vi - vi * vi * vi / 3.0 - w[i] + current[p]) * dt
            w[i] = w_decay[p] * w[i] + w_gain[p] * (vi + a[p])
            v[i] = vh
            if kind == 0:
                total += vh
            else:
                total += 0.5 * (1.0 + np.tanh(0.5 * slope[p] * (vh - threshold[p])))
        m[p] = total / (offsets[p + 1] - offsets[p])
    for p in range(P):
        K = 0.0
        R = 0.0
        for q in range(P):
            if kind == 0:
                K += g[p, q]
                R += g[p, q] * m[q]
            else:
                K += g[p, q] * m[q]
                R += g[p, q] * reversal[q] * m[q]
        lam = gamma * K
        if lam > 0:
            decay = np.exp(-lam * dt)
            drive = gamma * R * (-np.expm1(-lam * dt) / lam)
            scale = sigma[p] * np.sqrt(-np.expm1(-2.0 * lam * dt) / (2.0 * lam))
        else:
            decay = 1.0
            drive = gamma * R * dt
            scale = sigma[p] * np.sqrt(dt)
        for i in range(offsets[p], offsets[p + 1]):
            v[i] = decay * v[i] + drive + scale * xi[i]


def numba_available() -> bool:
    """Whether numba imports (the optional ``fast`` extra)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _compiled() -> Any:
    import numba

    return numba.njit(cache=True, fastmath=False)(_step_loops)


def step_numba(v: np.ndarray, w: np.ndarray, xi: np.ndarray, c: StepConstants, gamma: float,
               dt: float) -> tuple[np.ndarray, np.ndarray]:
    """The numba twin of :func:`step_numpy`: works in place on ``v`` and ``w`` and returns them."""
    _compiled()(v, w, xi, *c.arrays(), float(gamma), float(dt))
    return v, w


__all__ = ["StepConstants", "numba_available", "phi1", "step_numba", "step_numpy"]
