"""Named models with documented defaults (docs/mathematics.md §1, §4, §7).

Every function returns a :class:`meanfield.Model`. What happens as γ → ∞ is stated in each
docstring; the tests check those statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp

from meanfield.errors import bad_value, check_finite_number
from meanfield.expressions import as_expression, sigmoid, x
from meanfield.model import ExternalInput, Model, Population


def _per_population(name: str, value: Any, P: int) -> list[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value] * P
    if len(value) != P:
        bad_value(name, value, f"{P} entries (one per population) or a single value")
    return list(value)


def chemical(*, names: Sequence[str] = ("E", "I"),
             reversal: Sequence[float] = (2.0, -1.5),
             g: Sequence[Sequence[float]] = ((1.0, 2.0), (1.5, 1.0)),
             drift: Any = x - x**3 / 3,
             sigma: Any = (0.8, 0.6),
             threshold: Any = 0.0, slope: Any = 2.0,
             domain: tuple[float, float] = (-5.0, 5.0)) -> Model:
    r"""Reversal-potential ("chemical") coupling: ``Φ_pq(x) = x − E_q``, ``Ψ_q = S_q`` a sigmoid.

    Defaults: the excitatory/inhibitory pair of docs/mathematics.md §7 with the cubic drift ``x − x³/3``,
    ``E = (2, −1.5)``, ``g = [[1, 2], [1.5, 1]]``, ``σ = (0.8, 0.6)``, ``S(v) = 1/(1+e^{−2v})``.

    As γ → ∞ every population collapses onto its balance voltage
    ``v_p* = Σ_q g_pq E_q S_q(v_q*) / Σ_q g_pq S_q(v_q*)``; the mean moves as ``v* + μ/γ`` and
    the variance as ``D_p/(γ A_p)``, ``A_p = Σ_q g_pq S_q(v_q*)``.

    Parameters
    ----------
    names : population names (their number sets the number of populations)
    reversal : reversal potential E_q of each presynaptic population
    g : coupling weights g_pq (row p: input to population p from each q)
    drift : intrinsic drift f(x), one for all populations or one per population
    sigma : noise intensity σ_p (diffusion D_p = σ_p²/2)
    threshold : voltage θ at which the readout sigmoid S_q is 1/2
    slope : steepness s of the readout sigmoid S_q(x) = 1/(1 + exp(−s(x − θ)))
    domain : voltage interval (lower, upper) the densities live on
    """
    P = len(names)
    if P < 1:
        bad_value("names", names, "at least one population name")
    E = [check_finite_number("reversal", e) for e in _per_population("reversal", reversal, P)]
    drifts = _per_population("drift", drift, P)
    sigmas = _per_population("sigma", sigma, P)
    thresholds = _per_population("threshold", threshold, P)
    slopes = _per_population("slope", slope, P)
    pops = [Population(n, d, s) for n, d, s in zip(names, drifts, sigmas, strict=True)]
    reversal_expr = [as_expression(e, "reversal") for e in E]
    phi = [[x - reversal_expr[q] for q in range(P)] for _ in range(P)]
    psi = [sigmoid(x, th, sl) for th, sl in zip(thresholds, slopes, strict=True)]
    return Model(pops, g, phi, psi, domain)


def chemical_single(*, reversal: float = 2.0, g: float = 1.0, leak: float = 1.0,
                    sigma: float = 0.5, threshold: float = 1.0, slope: float = 6.0,
                    domain: tuple[float, float] = (-3.0, 5.0)) -> Model:
    r"""One self-exciting population with reversal-potential coupling and a linear leak.

    ``dX = [−leak·X − γ g (X − E) m] dt + σ dW``, ``m = ∫ S ρ`` with a steep sigmoid ``S``.
    Stationary states are Gaussians of mean ``γ g m E/(leak + γ g m)``. With the defaults the
    model is bistable for γ between about 1.9 and 3.1 (a quiet state with ``m ≈ S(0)`` and an
    active one near ``E``); beyond the fold only the active state remains, and as γ → ∞ it
    collapses onto the balance voltage ``v* = E`` with variance ``D/(γ g S(E))``.

    Parameters
    ----------
    reversal : reversal potential E of the self-coupling
    g : coupling weight
    leak : leak rate (intrinsic drift −leak·x)
    sigma : noise intensity σ (diffusion D = σ²/2)
    threshold : voltage θ at which the readout sigmoid S is 1/2
    slope : steepness s of the readout sigmoid S(x) = 1/(1 + exp(−s(x − θ)))
    domain : voltage interval (lower, upper) the density lives on
    """
    pop = Population("E", -as_expression(leak, "leak") * x, sigma)
    return Model([pop], [[g]], [[x - as_expression(reversal, "reversal")]],
                 [sigmoid(x, threshold, slope)], domain)


def current_balanced(*, names: Sequence[str] = ("E", "I"),
                     g: Sequence[Sequence[float]] = ((1.0, 2.0), (2.0, 2.0)),
                     sign: Sequence[float] = (-1.0, 1.0),
                     drive: Sequence[float] = (1.0, 0.5), m_drive: Any = 0.4,
                     leak: Any = 1.0, sigma: Any = (0.5, 0.5),
                     threshold: Any = 0.0, slope: Any = 1.0,
                     domain: tuple[float, float] = (-6.0, 6.0)) -> Model:
    r"""Current-based coupling (``Φ_pq ≡ sign_q``: −1 excitatory, +1 inhibitory) with an external drive.

    ``dX_p = [−leak·X_p − γ(Σ_q g_pq sign_q m_q − drive_p m_drive)] dt + σ_p dW``. The coupling
    does not depend on ``x``: nothing concentrates. As γ → ∞ the inputs balance,
    ``Σ_q g_pq sign_q m_q = drive_p m_drive`` (with the defaults ``m = (0.2, 0.3)``), and
    ``γ h_p`` tends to a finite multiplier ``λ_p`` (docs/mathematics.md §4): the γ = ∞ limit is a constrained
    Fokker–Planck equation. ``m_drive`` may depend on ``t`` (a time-dependent drive).

    Parameters
    ----------
    names : population names (their number sets the number of populations)
    g : coupling weights g_pq (row p: input to population p from each q)
    sign : sign of each presynaptic population's current (−1 excitatory, +1 inhibitory)
    drive : weight of the external drive on each population
    m_drive : level of the external drive (a number or an expression in t)
    leak : leak rate (intrinsic drift −leak·x), one value or one per population
    sigma : noise intensity σ_p (diffusion D_p = σ_p²/2)
    threshold : voltage θ at which the readout sigmoid S_q is 1/2
    slope : steepness s of the readout sigmoid S_q(x) = 1/(1 + exp(−s(x − θ)))
    domain : voltage interval (lower, upper) the densities live on
    """
    P = len(names)
    signs = [check_finite_number("sign", s) for s in _per_population("sign", sign, P)]
    pops = [Population(n, -as_expression(lk, "leak") * x, s) for n, lk, s in
            zip(names, _per_population("leak", leak, P), _per_population("sigma", sigma, P),
                strict=True)]
    phi = [[sp.Integer(int(s)) if float(s).is_integer() else s for s in signs] for _ in range(P)]
    psi = [sigmoid(x, th, sl) for th, sl in zip(_per_population("threshold", threshold, P),
                                               _per_population("slope", slope, P), strict=True)]
    drive_input = ExternalInput("X", m_drive, [float(d) for d in _per_population("drive", drive, P)],
                                [-1] * P)
    return Model(pops, g, phi, psi, domain, inputs=[drive_input])


def linear_ou(*, names: Sequence[str] = ("E", "I"), alpha: Any = (1.0, 2.0),
              mu: Any = (0.5, -0.5), sigma: Any = (0.6, 0.4),
              g: Sequence[Sequence[float]] = ((0.5, 1.0), (1.0, 0.5)),
              reversal: Any = (1.5, -1.0), readout_slope: Any = 0.1,
              domain: tuple[float, float] = (-6.0, 6.0)) -> Model:
    r"""Linear drift, reversal-potential coupling and affine readout: every stationary state is Gaussian.

    ``f_p = −α_p (x − μ_p)``, ``Φ_pq = x − E_q``, ``Ψ_q = 1 + k_q x``. The stationary states are
    exactly ``N(mean_p, var_p)`` (up to truncation to the domain) with
    ``mean_p = (α_p μ_p + γ Σ_q g_pq m_q E_q)/(α_p + γ A_p)``, ``var_p = D_p/(α_p + γ A_p)``,
    ``A_p = Σ_q g_pq m_q`` and ``m_q = 1 + k_q mean_q``. As γ → ∞ the means tend to the balance
    voltages and the variances vanish like ``1/γ``.

    Parameters
    ----------
    names : population names (their number sets the number of populations)
    alpha : relaxation rate α_p of the linear drift −α_p(x − μ_p)
    mu : rest voltage μ_p of the linear drift
    sigma : noise intensity σ_p (diffusion D_p = σ_p²/2)
    g : coupling weights g_pq (row p: input to population p from each q)
    reversal : reversal potential E_q of each presynaptic population
    readout_slope : slope k_q of the affine readout Ψ_q(x) = 1 + k_q x
    domain : voltage interval (lower, upper) the densities live on
    """
    P = len(names)
    alphas = _per_population("alpha", alpha, P)
    mus = _per_population("mu", mu, P)
    E = _per_population("reversal", reversal, P)
    ks = _per_population("readout_slope", readout_slope, P)
    pops = [Population(n, -as_expression(a, "alpha") * (x - as_expression(m, "mu")), s)
            for n, a, m, s in zip(names, alphas, mus, _per_population("sigma", sigma, P),
                                  strict=True)]
    phi = [[x - as_expression(E[q], "reversal") for q in range(P)] for _ in range(P)]
    psi = [1 + as_expression(k, "readout_slope") * x for k in ks]
    return Model(pops, g, phi, psi, domain)


CATALOGUE = {"chemical": chemical, "chemical_single": chemical_single,
             "current_balanced": current_balanced, "linear_ou": linear_ou}
"""Named models by name (used by the command line and configuration files)."""
