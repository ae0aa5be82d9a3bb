r"""The exact mean-field PDE on windows that follow the profiles, on cells independent of γ.

Modules, one job each: :mod:`~solvers.rescaled.initial` (initial data), :mod:`~solvers.rescaled.frame`
(the moving windows and a conservative remap), :mod:`~solvers.rescaled.stage` (the stage problem
in the moving frame), :mod:`~solvers.rescaled.fields` (coupling fields and balance points),
:mod:`~solvers.rescaled.solver` (the front doors) and :mod:`~solvers.rescaled.result` (the result).
"""

from solvers.rescaled.fields import Fields, zero_candidates
from solvers.rescaled.frame import Frame, ZoomGrid, remap
from solvers.rescaled.initial import Gaussian, initial_profiles
from solvers.rescaled.result import RescaledSolution
from solvers.rescaled.solver import GAMMA_MAX, solve_rescaled, solve_zoomed

__all__ = ["GAMMA_MAX", "Fields", "Frame", "Gaussian", "RescaledSolution", "ZoomGrid",
           "initial_profiles", "remap", "solve_rescaled", "solve_zoomed", "zero_candidates"]
