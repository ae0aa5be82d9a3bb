"""FitzHugh–Nagumo in two dimensions (docs/mathematics.md §12): the native finite-volume solver
(:mod:`~solvers.fhn.native`), the FiPy cross-check (:mod:`~solvers.fhn.fipy2d`) and the network of
``(v, w)`` agents (:mod:`~solvers.fhn.network`, kernels in :mod:`~solvers.fhn.network_kernels`)."""

from solvers.fhn.native import solve_fhn_native
from solvers.fhn.result import FhnNativeResult

__all__ = ["FhnNativeResult", "solve_fhn_native"]
