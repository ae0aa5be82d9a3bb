"""asymptotics: symbolic strong-coupling asymptotics of a :class:`meanfield.Model` (SymPy).

Mean-field PDE, Hopf–Cole transform, balance manifold and balance points, rescaled
(desingularized) equations, stationary expansions in ``1/γ`` and their substitute-back
verification (docs/mathematics.md §4–7). Numbers come out of one explicit lambdify step
(:mod:`asymptotics.bridge`). Never imports :mod:`solvers`.

    import asymptotics as asy
    bal = asy.balance_points(model)                  # h_p, balance manifold, v, stability
    exp = asy.stationary_expansion(model, order=2)   # mean ≈ v + μ/γ + ..., var ≈ D/(γ A) + ...
    eqs = asy.rescaled_equation(model, order=1)      # q_t = -∂_y(V q) + ε^-2 D q_yy, V by powers of ε
    asy.verify(exp).orders                           # residual orders, substituted back
"""

from asymptotics.balance import BalancePoint, BalancePoints, balance_points
from asymptotics.bridge import Coefficient
from asymptotics.equations import MeanFieldEquation, mean_field_equation
from asymptotics.expansion import StationaryExpansion, stationary_expansion
from asymptotics.fluctuations import FluctuationScaling, fluctuation_scaling
from asymptotics.hopf_cole import HopfCole, hopf_cole, tau
from asymptotics.rescaled import RescaledEquation, rescaled_equation
from asymptotics.symbols import epsilon, gamma, y
from asymptotics.verify import Verification, verify

__all__ = [
    "BalancePoint",
    "BalancePoints",
    "Coefficient",
    "FluctuationScaling",
    "HopfCole",
    "MeanFieldEquation",
    "RescaledEquation",
    "StationaryExpansion",
    "Verification",
    "balance_points",
    "epsilon",
    "fluctuation_scaling",
    "gamma",
    "hopf_cole",
    "mean_field_equation",
    "rescaled_equation",
    "stationary_expansion",
    "tau",
    "verify",
    "y",
]
