"""solvers: numerical methods for the mean-field PDE of a :class:`meanfield.Model`.

Finite volumes (Scharfetter–Gummel), exact stationary states, time stepping, the FiPy back end,
the n-agent network simulator and the solver of the rescaled (desingularized) equation.
"""

from solvers.grid import Grid
from solvers.solution import Solution, load
from solvers.stationary import Branch, StationaryState, continuation, stationary_states

__all__ = ["Grid", "Solution", "load", "StationaryState", "Branch", "stationary_states",
           "continuation"]
