"""solvers: numerical methods for the mean-field PDE of a :class:`meanfield.Model`.

Finite volumes (Scharfetter–Gummel), exact stationary states, time stepping, the FiPy back end,
the n-agent network simulator, the solver of the rescaled (desingularized) equation and the
γ → ∞ limits (:mod:`solvers.limits`). Every result has ``to_xarray()`` and ``save(path)``, and
:func:`load` reads any saved result back as its type.
"""

from meanfield.errors import ResolutionWarning
from solvers.fhn import FhnNativeResult, solve_fhn_native
from solvers.fhn.fipy2d import FhnPdeResult, solve_fhn_pde
from solvers.fhn.network import FhnNetworkResult, simulate_fhn_network
from solvers.fipy_backend import SweepDivergenceError, sweep_contraction
from solvers.fluctuations import Fluctuations, TransientFluctuations, fluctuations, transient_fluctuations
from solvers.grid import Grid
from solvers.io import load
from solvers.limits import BalanceTrajectory, ConstrainedSolution, EarlyBehaviour
from solvers.network import NetworkResult, simulate_network
from solvers.rescaled import Gaussian, RescaledSolution, solve_rescaled
from solvers.resolution import ResolutionReport
from solvers.solution import Solution
from solvers.solve import solve
from solvers.stationary import Branch, StationaryState, continuation, stationary_states

__all__ = [
           "BalanceTrajectory",
           "Branch",
           "ConstrainedSolution",
           "EarlyBehaviour",
           "FhnNativeResult",
           "FhnNetworkResult",
           "FhnPdeResult",
           "Fluctuations",
           "Gaussian",
           "Grid",
           "NetworkResult",
           "RescaledSolution",
           "ResolutionReport",
           "ResolutionWarning",
           "Solution",
           "StationaryState",
           "SweepDivergenceError",
           "TransientFluctuations",
           "continuation",
           "fluctuations",
           "load",
           "simulate_fhn_network",
           "simulate_network",
           "solve",
           "solve_fhn_native",
           "solve_fhn_pde",
           "solve_rescaled",
           "stationary_states",
           "sweep_contraction",
           "transient_fluctuations",
]
