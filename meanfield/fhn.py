r"""FitzHugh–Nagumo populations of two-dimensional agents ``(v, w)`` (docs/mathematics.md §8).

Agent ``i`` of population ``p``:

.. math::
    dv_i &= \big(v_i - v_i^3/3 - w_i + I_p - \gamma\, h_p(v_i, t)\big)\,dt + \sigma_p\, dW_i,\\
    dw_i &= \varepsilon_p\,(v_i + a_p - b_p w_i)\,dt ,

with the coupling acting on ``v`` only, always affine in the postsynaptic voltage,
``h_p(v) = K_p v - R_p``:

* electrical (gap junctions), ``b(x, y) = x_v - y_v``: ``h_p(v) = Σ_q g_pq (v - \bar v_q)``, so
  ``K_p = Σ_q g_pq`` and ``R_p = Σ_q g_pq m_q`` with ``m_q = \bar v_q`` (the mean voltage).
  Balance means synchrony; as γ → ∞ one population concentrates on a Dirac mass that follows the
  FitzHugh–Nagumo ODE itself.
* chemical (reversal potentials), ``b(x, y) = (x_v - E_q) S_q(y_v)``: ``m_q = ⟨S_q(v)⟩_q``,
  ``K_p = Σ_q g_pq m_q``, ``R_p = Σ_q g_pq E_q m_q``. As γ → ∞ every ``v`` is clamped at the
  balance voltage ``v_p* = Σ_q g_pq E_q S_q(v_q*)/Σ_q g_pq S_q(v_q*)`` and ``w`` relaxes slowly,
  ``w_p' = ε_p(v_p* + a_p - b_p w_p)``; the variance of ``v`` is ``D_p/(γ A_p)``,
  ``A_p = Σ_q g_pq S_q(v_q*)``.

Everything here is plain floats and numpy: the agents are two-dimensional, so the symbolic
one-dimensional :class:`meanfield.Model` does not apply.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from meanfield.errors import bad_type, bad_value, check_finite_number

EXCITABLE_CURRENT = 0.0
"""Applied current ``I`` of the excitable regime: a stable rest state at ``(v, w) ≈ (−1.199, −0.624)``
(with ``a = 0.7, b = 0.8``); a kick above threshold fires one spike."""

OSCILLATORY_CURRENT = 0.5
"""Applied current ``I`` of the oscillatory regime: the rest state is unstable and the ODE has a
relaxation limit cycle (period ≈ 37 for ``ε = 0.08``)."""

REGIMES = {"excitable": EXCITABLE_CURRENT, "oscillatory": OSCILLATORY_CURRENT}


def _regime_current(regime: str, current: Any) -> Any:
    """``current`` as given (one number or one per population, checked by :func:`_populations`),
    else the current of ``regime``."""
    if current is not None:
        return current
    if regime not in REGIMES:
        bad_value("regime", regime, f"one of {sorted(REGIMES)} (or pass current=...)")
    return REGIMES[regime]


@dataclass(frozen=True)
class FhnPopulation:
    """One population of FitzHugh–Nagumo agents.

    Defaults are the classical values ``a = 0.7``, ``b = 0.8``, ``ε = 0.08`` with ``I = 0``
    (excitable), noise ``σ = 0.3`` on ``v``.
    """

    name: str = "V"
    a: float = 0.7
    b: float = 0.8
    epsilon: float = 0.08
    current: float = EXCITABLE_CURRENT
    sigma: float = 0.3

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            bad_type("name", self.name, "a string")
        if not self.name.strip():
            bad_value("name", self.name, "a non-empty population name")
        object.__setattr__(self, "a", check_finite_number("a", self.a))
        object.__setattr__(self, "b", check_finite_number("b", self.b, nonnegative=True))
        object.__setattr__(self, "epsilon", check_finite_number("epsilon", self.epsilon,
                                                                positive=True))
        object.__setattr__(self, "current", check_finite_number("current", self.current))
        object.__setattr__(self, "sigma", check_finite_number("sigma", self.sigma,
                                                              nonnegative=True))

    @property
    def diffusion(self) -> float:
        """``D = σ²/2``."""
        return self.sigma**2 / 2

    def drift_v(self, v: Any, w: Any) -> Any:
        """Intrinsic voltage drift ``v − v³/3 − w + I``."""
        return v - v**3 / 3 - w + self.current

    def drift_w(self, v: Any, w: Any) -> Any:
        """Recovery drift ``ε(v + a − b w)``."""
        return self.epsilon * (v + self.a - self.b * w)

    def ode(self) -> Callable[[float, np.ndarray], np.ndarray]:
        """Right-hand side ``(t, [v, w]) -> [v', w']`` of the noiseless, uncoupled ODE (for solve_ivp)."""
        def rhs(_t: float, y: np.ndarray) -> np.ndarray:
            return np.array([self.drift_v(y[0], y[1]), self.drift_w(y[0], y[1])])
        return rhs

    def rest_state(self) -> tuple[float, float]:
        """The real equilibrium ``(v, w)`` of the uncoupled ODE (unique when ``b < 1``)."""
        if self.b == 0:
            v = -self.a
            return v, float(self.drift_v(v, 0.0))
        # w = (v + a)/b on the w-nullcline; v − v³/3 − (v + a)/b + I = 0
        roots = np.roots([-1 / 3, 0.0, 1 - 1 / self.b, self.current - self.a / self.b])
        real = np.sort(roots[np.abs(roots.imag) < 1e-9].real)
        v = float(real[0])
        return v, (v + self.a) / self.b


def _vector(name: str, value: Any, P: int) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)):
        bad_type(name, value, f"a number or a sequence of {P} numbers")
    if not isinstance(value, Sequence) and not isinstance(value, np.ndarray):
        return (check_finite_number(name, value),) * P
    if len(value) != P:
        bad_value(name, value, f"{P} entries (one per population) or a single number")
    return tuple(check_finite_number(name, v) for v in value)


def _square(name: str, value: Any, P: int) -> tuple[tuple[float, ...], ...]:
    if isinstance(value, (str, bytes)):
        bad_type(name, value, f"a {P}×{P} nested sequence of numbers")
    if not isinstance(value, Sequence) and not isinstance(value, np.ndarray):
        if P != 1:
            bad_value(name, value, f"a {P}×{P} nested sequence (a single number only when P = 1)")
        return ((check_finite_number(name, value, nonnegative=True),),)
    if len(value) != P:
        bad_value(name, value, f"shape {P}×{P} (one row per population)")
    rows = []
    for i, row in enumerate(value):
        if isinstance(row, (str, bytes)) or not isinstance(row, (Sequence, np.ndarray)) or \
                len(row) != P:
            bad_value(name, value, f"shape {P}×{P} (row {i} is not a sequence of {P} numbers)")
        rows.append(tuple(check_finite_number(name, v, nonnegative=True) for v in row))
    return tuple(rows)


@dataclass(frozen=True)
class ElectricalCoupling:
    """Gap junctions ``b(x, y) = x_v − y_v`` with weights ``g[p][q] ≥ 0``."""

    g: tuple[tuple[float, ...], ...]

    kind = "electrical"

    def __post_init__(self) -> None:
        size = len(self.g) if isinstance(self.g, (Sequence, np.ndarray)) else 1
        object.__setattr__(self, "g", _square("g", self.g, size))

    def readout(self, q: int, v: Any) -> Any:
        """``Ψ_q(v) = v``: the transmitted quantity is the voltage itself."""
        return v


@dataclass(frozen=True)
class ChemicalCoupling:
    """Synapses ``b(x, y) = (x_v − E_q) S_q(y_v)``, ``S_q(v) = 1/(1 + e^{−slope_q (v − threshold_q)})``."""

    g: tuple[tuple[float, ...], ...]
    reversal: tuple[float, ...]
    threshold: tuple[float, ...]
    slope: tuple[float, ...]

    kind = "chemical"

    def __post_init__(self) -> None:
        size = len(self.g) if isinstance(self.g, (Sequence, np.ndarray)) else 1
        object.__setattr__(self, "g", _square("g", self.g, size))
        for name in ("reversal", "threshold", "slope"):
            object.__setattr__(self, name, _vector(name, getattr(self, name), size))
        if any(s <= 0 for s in self.slope):
            bad_value("slope", self.slope, "sigmoid slopes > 0")

    def readout(self, q: int, v: Any) -> Any:
        """``Ψ_q(v) = S_q(v)`` written with ``tanh`` (never overflows)."""
        return 0.5 * (1.0 + np.tanh(0.5 * self.slope[q] * (v - self.threshold[q])))


Coupling = ElectricalCoupling | ChemicalCoupling


@dataclass(frozen=True)
class FhnModel:
    """P FitzHugh–Nagumo populations and their coupling (electrical or chemical)."""

    populations: tuple[FhnPopulation, ...]
    coupling: Coupling

    def __post_init__(self) -> None:
        pops = self.populations
        if isinstance(pops, FhnPopulation):
            pops = (pops,)
        if isinstance(pops, (str, bytes)) or not isinstance(pops, Sequence) or len(pops) == 0:
            bad_type("populations", self.populations, "a non-empty sequence of FhnPopulation")
        for pop in pops:
            if not isinstance(pop, FhnPopulation):
                bad_type("populations", pop, "FhnPopulation entries")
        names = [pop.name for pop in pops]
        if len(set(names)) != len(names):
            bad_value("populations", names, "distinct population names")
        object.__setattr__(self, "populations", tuple(pops))
        if not isinstance(self.coupling, (ElectricalCoupling, ChemicalCoupling)):
            bad_type("coupling", self.coupling, "ElectricalCoupling or ChemicalCoupling")
        P = len(pops)
        if len(self.coupling.g) != P or any(len(row) != P for row in self.coupling.g):
            bad_value("coupling", self.coupling, f"a {P}×{P} weight matrix g")
        if isinstance(self.coupling, ChemicalCoupling):
            for field_name in ("reversal", "threshold", "slope"):
                if len(getattr(self.coupling, field_name)) != P:
                    bad_value(field_name, getattr(self.coupling, field_name),
                              f"{P} entries (one per population)")

    @property
    def P(self) -> int:
        return len(self.populations)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(pop.name for pop in self.populations)

    @property
    def kind(self) -> str:
        """``"electrical"`` or ``"chemical"``."""
        return self.coupling.kind

    def param(self, field_name: str) -> np.ndarray:
        """One population parameter (``a``, ``b``, ``epsilon``, ``current``, ``sigma``) as an array (P,)."""
        return np.array([getattr(pop, field_name) for pop in self.populations], dtype=float)

    def readouts(self, values: Sequence[np.ndarray]) -> list[np.ndarray]:
        """``Ψ_q`` applied to the voltages ``values[q]`` of each population."""
        return [self.coupling.readout(q, np.asarray(v, dtype=float)) for q, v in enumerate(values)]

    def coefficients(self, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(K, R)`` with ``h_p(v) = K_p v − R_p`` for coupling moments ``m`` (P,)."""
        g = np.array(self.coupling.g, dtype=float)
        m = np.asarray(m, dtype=float)
        if isinstance(self.coupling, ElectricalCoupling):
            return g.sum(axis=1), g @ m
        reversal = np.array(self.coupling.reversal, dtype=float)
        return g @ m, g @ (reversal * m)

    def balance_voltages(self, *, tol: float = 1e-13, max_iter: int = 500) -> np.ndarray:
        """Chemical coupling: the balance voltages ``v*`` (docs/mathematics.md §4), damped fixed point."""
        if not isinstance(self.coupling, ChemicalCoupling):
            bad_value("coupling", self.kind, "chemical coupling (electrical balance is synchrony, "
                      "not a fixed voltage)")
        v = np.array(self.coupling.reversal, dtype=float).mean() * np.ones(self.P)
        for _ in range(max_iter):
            s = np.array(self.readouts(list(v)), dtype=float)
            K, R = self.coefficients(s)
            new = R / K
            if np.max(np.abs(new - v)) < tol:
                return new
            v = 0.5 * (v + new)
        raise RuntimeError(f"balance voltages did not converge in {max_iter} iterations (last {v})")

    def balance_slopes(self) -> np.ndarray:
        """Chemical coupling: ``A_p = Σ_q g_pq S_q(v_q*)`` (the variance of v is ≈ ``D_p/(γ A_p)``)."""
        v = self.balance_voltages()
        K, _ = self.coefficients(np.array(self.readouts(list(v)), dtype=float))
        return K

    def chemical_limit(self, t: np.ndarray, w0: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """γ = ∞ limit of chemical coupling: ``v ≡ v*``, ``w_p(t) = w_p* + (w0_p − w_p*) e^{−ε_p b_p t}``.

        Returns ``(v, w)`` of shape (nt, P). ``w_p* = (v_p* + a_p)/b_p`` (linear growth if ``b_p = 0``).
        """
        t = np.asarray(t, dtype=float)[:, None]
        v = self.balance_voltages()
        a, b, eps = self.param("a"), self.param("b"), self.param("epsilon")
        w0 = np.asarray(_vector("w0", w0, self.P))
        rate = eps * b
        phi1 = np.where(rate > 0, -np.expm1(-rate * t) / np.where(rate > 0, rate, 1.0), t)
        w = w0 * np.exp(-rate * t) + eps * (v + a) * phi1
        return np.broadcast_to(v, w.shape).copy(), w

    def to_json(self) -> str:
        """The model as a JSON string (stored in result attributes)."""
        return json.dumps({"kind": self.kind, "populations": [asdict(p) for p in self.populations],
                           "coupling": {k: v for k, v in asdict(self.coupling).items()}})


@dataclass(frozen=True)
class GaussianStart:
    """Initial law: independent Gaussians ``v ~ N(v, v_std²)``, ``w ~ N(w, w_std²)`` per population.

    Scalars apply to every population. A zero standard deviation (a Dirac mass) is allowed for
    the network; the PDE needs spreads that its grid resolves.
    """

    v: Any = -1.0
    w: Any = -0.5
    v_std: Any = 0.3
    w_std: Any = 0.2

    def __post_init__(self) -> None:
        for name in ("v", "w", "v_std", "w_std"):
            value = getattr(self, name)
            values = value if isinstance(value, (Sequence, np.ndarray)) and \
                not isinstance(value, (str, bytes)) else [value]
            if len(values) == 0:
                bad_value(name, value, "a number or a non-empty sequence of numbers")
            for entry in values:
                check_finite_number(name, entry, nonnegative=name.endswith("_std"))

    def per_population(self, P: int) -> dict[str, np.ndarray]:
        """The four parameters as arrays of shape (P,)."""
        return {name: np.asarray(_vector(name, getattr(self, name), P))
                for name in ("v", "w", "v_std", "w_std")}


def _populations(names: Sequence[str], P: int, *, a: Any, b: Any, epsilon: Any, current: Any,
                 sigma: Any) -> tuple[FhnPopulation, ...]:
    columns = [_vector(label, value, P) for label, value in
               (("a", a), ("b", b), ("epsilon", epsilon), ("current", current), ("sigma", sigma))]
    return tuple(FhnPopulation(name, *params) for name, params in zip(names, zip(*columns, strict=True),
                                                                     strict=True))


def _names(names: Any) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, Sequence) or len(names) == 0:
        bad_type("names", names, "a non-empty sequence of population names")
    return tuple(names)


def fhn_electrical(*, names: Sequence[str] = ("V",), regime: str = "oscillatory",
                   current: Any = None, g: Any = 1.0, a: Any = 0.7, b: Any = 0.8,
                   epsilon: Any = 0.08, sigma: Any = 0.3) -> FhnModel:
    """Electrically coupled FitzHugh–Nagumo agents, ``h_p(v) = Σ_q g_pq (v − v̄_q)``.

    Defaults: one population in the oscillatory regime (``I = 0.5``), ``g = 1``, ``σ = 0.3``.
    ``regime`` is ``"excitable"`` (``I = 0``) or ``"oscillatory"``; ``current`` (one number or
    one per population, like ``a``, ``b``, ``ε``, ``σ``) overrides it.
    As γ → ∞ the voltages synchronise: the population concentrates on a Dirac mass that follows
    the FitzHugh–Nagumo ODE, with ``var v ≈ D/(γ Σ_q g_pq)``.
    """
    names = _names(names)
    P = len(names)
    I = _regime_current(regime, current)
    pops = _populations(names, P, a=a, b=b, epsilon=epsilon, current=I, sigma=sigma)
    return FhnModel(pops, ElectricalCoupling(_square("g", g, P)))


def fhn_chemical(*, names: Sequence[str] = ("E", "I"), regime: str = "excitable",
                 current: Any = None, reversal: Any = (2.0, -2.0),
                 g: Any = ((1.0, 2.0), (1.5, 1.0)), threshold: Any = 0.0, slope: Any = 2.0,
                 a: Any = 0.7, b: Any = 0.8, epsilon: Any = 0.08, sigma: Any = 0.3) -> FhnModel:
    """Chemically coupled excitatory/inhibitory FitzHugh–Nagumo populations.

    ``h_p(v) = Σ_q g_pq (v − E_q) ⟨S_q⟩_q`` with reversal potentials ``E = (2, −2)``, weights
    ``g = [[1, 2], [1.5, 1]]`` and sigmoids ``S(v) = 1/(1 + e^{−2v})``; excitable intrinsic
    dynamics (``I = 0``), ``σ = 0.3``. As γ → ∞ each ``v`` is clamped at its balance voltage
    (:meth:`FhnModel.balance_voltages`) while ``w`` relaxes on the slow time scale ``1/(ε b)``.
    ``current`` (one number or one per population) overrides the current of ``regime``.
    """
    names = _names(names)
    P = len(names)
    I = _regime_current(regime, current)
    pops = _populations(names, P, a=a, b=b, epsilon=epsilon, current=I, sigma=sigma)
    coupling = ChemicalCoupling(_square("g", g, P), _vector("reversal", reversal, P),
                                _vector("threshold", threshold, P), _vector("slope", slope, P))
    return FhnModel(pops, coupling)


__all__ = [
    "EXCITABLE_CURRENT",
    "OSCILLATORY_CURRENT",
    "REGIMES",
    "ChemicalCoupling",
    "ElectricalCoupling",
    "FhnModel",
    "FhnPopulation",
    "GaussianStart",
    "fhn_chemical",
    "fhn_electrical",
]
